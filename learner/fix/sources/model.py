"""The model as a fix source: base model plus the route's adapter, retried with compiler feedback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

from learner.fix.prompt import (
    FixPrompt,
    UnknownAnswerFormat,
    answer_format_named,
    build_prompt,
    collect_regions,
    parse_answer,
    retry_feedback,
)
from learner.fix.ranking import Scored, changed_lines, edits_key, fix_title, rank
from learner.fix.sources.base import FixContext
from learner.model.handle import ModelUnavailable, RuntimeHandle
from learner.model.remote import BackendUnavailable
from learner.model.runtime import Generation
from learner.records import FixCandidate, Verdict, VerifiedFix
from learner.rust.source import SourceUnreadable


class ModelFixSource:
    """Asks the model for a fix of the error's regions, up to ``settings.attempts`` times.

    Each failed attempt's answer and the compiler's verdict go back into the conversation, so
    the next attempt sees the new error. ``use_route_adapter=False`` asks the base model
    (the evaluation's ``model`` strategies); ``use_hint=False`` drops the route hint;
    ``answer_format`` overrides ``settings.answer_format`` (the evaluation's format strategies).
    """

    name = "model"

    def __init__(
        self,
        runtime: RuntimeHandle | None = None,
        *,
        use_route_adapter: bool = True,
        use_hint: bool = True,
        answer_format: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.use_route_adapter = use_route_adapter
        self.use_hint = use_hint
        self.answer_format = answer_format

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
        answer_format = self.answer_format or ctx.settings.answer_format
        try:
            answer_format_named(answer_format)
        except UnknownAnswerFormat as exc:
            ctx.notes.append(f"model fixes unavailable: {exc} (setting answer_format)")
            return
        route = ctx.route if self.use_hint else ctx.route.__class__(ctx.route.name, "", ctx.route.codes)
        history: list[tuple[str, str]] = []
        n = max(1, ctx.settings.candidates)
        for attempt in range(1, max(1, ctx.settings.attempts) + 1):
            if ctx.cancel.is_set():
                return
            prompt = build_prompt(ctx.diagnostic, route, regions, history, answer_format)
            ctx.progress(f"generating a fix for {ctx.diagnostic.code or 'the error'} (attempt {attempt})", None)
            started = time.monotonic()
            adapter_route = ctx.route.name if self.use_route_adapter else None
            # The greedy answer first, with prompt lookup (fast, and often right); only when the
            # compiler refuses it, one batched generation of the other candidates (one prefill).
            try:
                greedy = runtime.generate(
                    list(prompt.messages),
                    max_new_tokens=ctx.settings.max_new_tokens,
                    route=adapter_route,
                    stop_event=ctx.cancel,
                )
            except BackendUnavailable as exc:  # the server is down or refused: rustc's suggestions stand
                ctx.notes.append(f"model fixes unavailable: {exc}")
                return
            if ctx.cancel.is_set():
                return
            if greedy.notice and greedy.notice not in ctx.notes:
                ctx.notes.append(greedy.notice)
            judged = self._judge(ctx, runtime.model_name, prompt, [greedy], attempt, started, 1)
            if n > 1 and judged and not judged[0].fix.verdict.ok and not ctx.cancel.is_set():
                ctx.progress(f"sampling {n - 1} more candidates (attempt {attempt})", None)
                try:
                    samples = runtime.generate_batch(
                        list(prompt.messages),
                        n - 1,
                        max_new_tokens=ctx.settings.max_new_tokens,
                        route=adapter_route,
                        temperature=ctx.settings.candidate_temperature,
                        seed=ctx.settings.candidate_seed * 1_000 + attempt,
                        stop_event=ctx.cancel,
                        greedy_first=False,
                    )
                except BackendUnavailable as exc:
                    ctx.notes.append(f"model fixes unavailable: {exc}")
                    yield from (j.fix for j in judged)
                    return
                judged = ranked(self._judge(ctx, runtime.model_name, prompt, samples, attempt, started, n, judged))
            yield from (j.fix for j in judged)
            if any(j.fix.verdict.ok for j in judged) or not judged or ctx.cancel.is_set():
                return
            first = judged[0]
            history.append((first.text, retry_feedback(first.fix.verdict.reason, first.fix.verdict.new_errors)))

    def _judge(
        self,
        ctx: FixContext,
        model_name: str,
        prompt: FixPrompt,
        generations: list[Generation],
        attempt: int,
        started: float,
        n: int,
        earlier: list[Judged] | None = None,
    ) -> list[Judged]:
        """Each answer not seen before (in ``earlier`` or this batch) as a verified or refused candidate.

        The answers with edits are compiled together (:meth:`Verifier.verify_all`, one scratch copy each).
        """
        seen = {edits_key(j.fix.candidate.edits) for j in earlier or []}
        fresh: list[tuple[Generation, FixCandidate]] = []
        for generation in generations:
            edits = parse_answer(generation.text, prompt)
            key = edits_key(edits)
            if edits and key in seen:
                continue  # a repeated sample: verified once is enough
            seen.add(key)
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
            fresh.append((generation, candidate))
        to_check = [c for _, c in fresh if c.edits]
        if n > 1 and to_check:
            ctx.progress(f"verifying {len(to_check)} candidate(s)", None)
        verdicts = iter(ctx.verifier.verify_all(to_check, ctx.diagnostic, cancel=ctx.cancel))
        judged: list[Judged] = []
        for generation, candidate in fresh:
            size: int | None = None
            if candidate.edits:
                checked = next(verdicts)
                if checked is None:  # cancelled before it was compiled
                    continue
                verdict = checked
                if verdict.ok:
                    before, after = ctx.verifier.apply(candidate.edits)
                    size = changed_lines(before, after)
                    candidate = replace(candidate, title=fix_title(before, after))
            elif "```" in generation.text:
                verdict = Verdict(False, "the answer repeats the code unchanged")
            else:
                verdict = Verdict(False, "the answer has no code block")
            candidate = replace(candidate, latency_s=time.monotonic() - started)
            judged.append(Judged(VerifiedFix(candidate, verdict), generation.text, size, generation.mean_logprob))
        return (earlier or []) + judged


@dataclass(frozen=True)
class Judged:
    """One answer: its verified (or refused) candidate, the text (for feedback), and its ranking keys."""

    fix: VerifiedFix
    text: str
    changed_lines: int | None
    mean_logprob: float | None


def ranked(judged: list[Judged]) -> list[Judged]:
    """The verified candidates smallest edit first (then most confident), then the refused ones in
    the order they were made (the greedy answer first, whose verdict feeds the next attempt)."""
    verified = [j for j in judged if j.fix.verdict.ok and j.changed_lines is not None]
    order = rank([Scored(j.fix.candidate, j.changed_lines or 0, j.mean_logprob) for j in verified])
    position = {id(s.candidate): i for i, s in enumerate(order)}
    best = sorted(verified, key=lambda j: position[id(j.fix.candidate)])
    return best + [j for j in judged if j not in best]
