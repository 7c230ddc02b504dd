"""The model as a fix source: base model plus the route's adapter, retried with compiler feedback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

from learner.fix.prompt import build_prompt, collect_regions, parse_answer, retry_feedback
from learner.fix.sources.base import FixContext
from learner.model.handle import ModelUnavailable, RuntimeHandle
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
        for attempt in range(1, max(1, ctx.settings.attempts) + 1):
            if ctx.cancel.is_set():
                return
            prompt = build_prompt(ctx.diagnostic, route, regions, history)
            ctx.progress(f"generating a fix for {ctx.diagnostic.code or 'the error'} (attempt {attempt})", None)
            started = time.monotonic()
            generation = runtime.generate(
                list(prompt.messages),
                max_new_tokens=ctx.settings.max_new_tokens,
                route=ctx.route.name if self.use_route_adapter else None,
                stop_event=ctx.cancel,
            )
            if ctx.cancel.is_set():
                return
            edits = parse_answer(generation.text, prompt)
            candidate = FixCandidate(
                source=self.name,
                title=f"Fix with sleepy-coder ({ctx.route.name})",
                edits=edits,
                route=ctx.route.name,
                model=runtime.model_name,
                adapter_version=generation.adapter_version,
                prompt_hash=prompt.prompt_hash,
                attempt=attempt,
            )
            if edits:
                verdict = ctx.verifier.verify(candidate, ctx.diagnostic)
            elif "```" in generation.text:
                verdict = Verdict(False, "the answer repeats the code unchanged")
            else:
                verdict = Verdict(False, "the answer has no code block")
            candidate = replace(candidate, latency_s=time.monotonic() - started)
            yield VerifiedFix(candidate, verdict)
            if verdict.ok:
                return
            history.append((generation.text, retry_feedback(verdict.reason, verdict.new_errors)))
