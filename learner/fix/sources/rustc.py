"""rustc's own suggestions: MachineApplicable first, then MaybeIncorrect, each verified."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

from learner.fix.sources.base import FixContext
from learner.records import Applicability, FixCandidate, VerifiedFix

_ORDER = (Applicability.MACHINE_APPLICABLE, Applicability.MAYBE_INCORRECT)


class RustcSuggestionSource:
    """Turns the diagnostic's suggestions into candidates; placeholders (``/* value */``) are skipped."""

    name = "rustc"

    def propose(self, ctx: FixContext) -> Iterator[VerifiedFix]:
        suggestions = [s for s in ctx.diagnostic.suggestions if s.applicability in _ORDER and s.edits]
        suggestions.sort(key=lambda s: _ORDER.index(s.applicability))
        seen: set[tuple[object, ...]] = set()
        for suggestion in suggestions:
            if ctx.cancel.is_set():
                return
            key = tuple(sorted((e.file, e.byte_start, e.byte_end, e.new_text) for e in suggestion.edits))
            if key in seen:
                continue
            seen.add(key)
            started = time.monotonic()
            candidate = FixCandidate(
                source=self.name,
                title=f"rustc: {suggestion.message}",
                edits=suggestion.edits,
                route=ctx.route.name,
                preferred=suggestion.applicability is Applicability.MACHINE_APPLICABLE,
            )
            verdict = ctx.verifier.verify(candidate, ctx.diagnostic)
            candidate = replace(candidate, latency_s=time.monotonic() - started)
            yield VerifiedFix(candidate, verdict)
