"""The model as a fix source: base model plus the route's adapter, retried with compiler feedback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

from learner.fix.prompt import FixPrompt, build_prompt, collect_regions, parse_answer, retry_feedback
from learner.fix.ranking import Scored, changed_lines, edits_key, rank
from learner.fix.sources.base import FixContext
from learner.model.handle import ModelUnavailable, RuntimeHandle
from learner.model.runtime import Generation
from learner.records import FixCandidate, Verdict, VerifiedFix
from learner.rust.source import SourceUnreadable


class ModelFixSource:
    """Asks the model for a fix of the error's regions, up to ``settings.attempts`` times.

    Each failed attempt's answer and the compiler's verdict go back into the conversation, so
    the next attempt sees the new error. ``use_route_adapter=False`` asks the base model
    (the evaluation's ``model`` strategies); ``use_hint=False`` drops the route hint.
    """

    name = "model"

    def __init__(
        self, runtime: RuntimeHandle | None = None, *, use_route_adapter: bool = True, use_hint: bool = True
    ) -> None:
        self.runtime = runtime
        self.use_route_adapter = use_route_adapter
        self.use_hint = use_hint

    def propose(self, ctx: FixContext) -> Iterator[VerifiedFix]:
        if self.runtime is None:
            return
        try:
            runtime = self.runtime.get()
        except ModelUnavailable as exc:
            ctx.notes.append(f"model fixes unavailable: {exc}")
            return
        try:
            regions = collect_regions(ctx.verifier.crate.root, ctx.diagnostic)
        except SourceUnreadable as exc:
            ctx.notes.append(str(exc))
            return
        if not regions:
            ctx.notes.append("the error has no location in the crate's sources; no model fix attempted")
            return
        route = ctx.route if self.use_hint else ctx.route.__class__(ctx.route.name, "", ctx.route.codes)
        history: list[tuple[str, str]] = []
        n = max(1, ctx.settings.candidates)
        for attempt in range(1, max(1, ctx.settings.attempts) + 1):
            if ctx.cancel.is_set():
                return
            prompt = build_prompt(ctx.diagnostic, route, regions, history)
            what = f"{n} candidates" if n > 1 else "a fix"
            ctx.progress(f"generating {what} for {ctx.diagnostic.code or 'the error'} (attempt {attempt})", None)
            started = time.monotonic()
            adapter_route = ctx.route.name if self.use_route_adapter else None
            if n == 1:
                generations = [
                    runtime.generate(
                        list(prompt.messages),
                        max_new_tokens=ctx.settings.max_new_tokens,
                        route=adapter_route,
                        stop_event=ctx.cancel,
                    )
                ]
            else:
                generations = runtime.generate_batch(
                    list(prompt.messages),
                    n,
                    max_new_tokens=ctx.settings.max_new_tokens,
                    route=adapter_route,
                    temperature=ctx.settings.candidate_temperature,
                    seed=attempt,
                    stop_event=ctx.cancel,
                )
            if ctx.cancel.is_set():
                return
            judged = self._judge(ctx, runtime.model_name, prompt, generations, attempt, started, n)
            verified = [v for v, _ in judged if v.verdict.ok]
            yield from verified
            yield from (v for v, _ in judged if not v.verdict.ok)
            if verified or not judged:
                return
            first, text = judged[0]
            history.append((text, retry_feedback(first.verdict.reason, first.verdict.new_errors)))

    def _judge(
        self,
        ctx: FixContext,
        model_name: str,
        prompt: FixPrompt,
        generations: list[Generation],
        attempt: int,
        started: float,
        n: int,
    ) -> list[tuple[VerifiedFix, str]]:
        """Each distinct answer as a verified (or refused) candidate, the verified ones ranked
        smallest edit first; the greedy answer's result comes first among the refused."""
        seen: set[object] = set()
        judged: list[tuple[VerifiedFix, str, Scored | None]] = []
        for index, generation in enumerate(generations, start=1):
            if ctx.cancel.is_set():
                break
            edits = parse_answer(generation.text, prompt)
            key = edits_key(edits)
            if edits and key in seen:
                continue  # a repeated sample: verified once is enough
            seen.add(key)
            if n > 1:
                ctx.progress(f"verifying candidate {index}/{len(generations)}", None)
            candidate = FixCandidate(
                source=self.name,
                title=f"Fix with sleepy-coder ({ctx.route.name})",
                edits=edits,
                route=ctx.route.name,
                model=model_name,
                adapter_version=generation.adapter_version,
                prompt_hash=prompt.prompt_hash,
                attempt=attempt,
            )
            scored: Scored | None = None
            if edits:
                verdict = ctx.verifier.verify(candidate, ctx.diagnostic)
                if verdict.ok:
                    before, after = ctx.verifier.apply(edits)
                    scored = Scored(candidate, changed_lines(before, after), generation.mean_logprob)
            elif "```" in generation.text:
                verdict = Verdict(False, "the answer repeats the code unchanged")
            else:
                verdict = Verdict(False, "the answer has no code block")
            candidate = replace(candidate, latency_s=time.monotonic() - started)
            judged.append((VerifiedFix(candidate, verdict), generation.text, scored))
        order = {id(s.candidate): i for i, s in enumerate(rank([s for _, _, s in judged if s is not None]))}
        judged.sort(key=lambda j: order.get(id(j[2].candidate), len(order)) if j[2] is not None else len(order))
        return [(v, text) for v, text, _ in judged]
