"""The promotion gate: a candidate adapter set becomes active only if it helps the user and hurts nothing.

Evidence: the user's own accepted fixes that were *held out* of training (a deterministic
split by fix id hash, :func:`is_held_out`; the learner passes them to the trainer as
``exclude_fix_ids`` so they are never trained on), scored route by route with the current
adapters ("before") and the candidate ("after"); plus, when a :class:`BenchScorer` is configured
(``sleepy-coder learn --daemon`` plugs in the evaluation harness's), a small slice of benchmark
cases of each target route.

A held-out fix counts as fixed when the model's answer, parsed exactly as the editor parses
it, turns the recorded enclosing item into the code the user kept (whitespace aside).

A real user produces few held-out fixes, so the gate also scores the held-out *practice
mutations* of the user's own crates (:mod:`learner.learn.practice`: a fixed split by item,
never trained on), the same examples before and after, as ``practice:<route>`` lines.

Decision (:func:`decide`, pure): a target route with at least ``min_examples`` held-out fixes
is decided on them (the user's own code weighs most); one with fewer on its practice mutations,
where the examples the candidate newly fixes must outnumber those it breaks beyond noise
(one-sided exact sign test at ``alpha`` divided by the number of targets, so several routes
tested at once still make one false gain in twenty at most). The candidate is promoted when at
least one target gained and nothing measured got worse: no target's held-out fixes fell, no
target's practice lost beyond noise, and no other score line (other routes, practice of other
routes, benchmark slices) fell below the lower end of its "before" Wilson interval. A target
without enough evidence neither gains nor blocks (a night often trains routes the day brought
only one fix of); with no gain anywhere there is no promotion, with the reasons. Every
candidate's scores and the decision are written to its registry metrics.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.fix.prompt import FixPrompt, PromptRegion, parse_answer
from learner.learn.curriculum import store_examples
from learner.learn.examples import TrainingExample
from learner.learn.idle import PauseSwitch
from learner.learn.practice import PRACTICE_PREFIX, load_practice
from learner.model.adapters import RoutedAdapters, load_adapter_set
from learner.model.hotswap import active_selection
from learner.rust.items import Region, collapse_ws
from learner.rust.source import apply_edits
from learner.stats import Rate, sign_test_greater

if TYPE_CHECKING:
    from learner.model.runtime import ModelRuntime
    from learner.store import AdapterVersion, Store

#: One held-out fix in this many (by fix id hash).
HELDOUT_BUCKETS = 5
#: Fewer held-out fixes of a target route than this and the gate will not decide in its favour.
MIN_HELDOUT = 3
BENCH_PREFIX = "bench:"
#: How unlikely a practice gain must be under "no difference" for the gate to believe it.
PRACTICE_ALPHA = 0.05


def is_held_out(fix_id: str, buckets: int = HELDOUT_BUCKETS) -> bool:
    """Deterministic split: the same fix is held out on every machine and in every cycle."""
    return int(hashlib.sha256(fix_id.encode()).hexdigest()[:8], 16) % buckets == 0


@dataclass(frozen=True)
class ScoreLine:
    name: str
    before: Rate
    after: Rate

    def as_json(self) -> dict[str, Any]:
        return {
            "before": [self.before.successes, self.before.n],
            "after": [self.after.successes, self.after.n],
            "before_interval": list(self.before.interval),
            "after_interval": list(self.after.interval),
        }


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    lines: tuple[ScoreLine, ...] = ()
    targets: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "reason": self.reason,
            "targets": list(self.targets),
            "scores": {line.name: line.as_json() for line in self.lines},
        }


def decide(
    scores: Mapping[str, tuple[Rate, Rate]],
    targets: Sequence[str],
    *,
    min_examples: int = MIN_HELDOUT,
    paired: Mapping[str, Sequence[tuple[bool, bool]]] | None = None,
    alpha: float = PRACTICE_ALPHA,
) -> GateDecision:
    """The gate's rule on a table ``name -> (before, after)``; see the module docstring.

    ``paired`` holds the per-example ``(before, after)`` outcomes of the practice lines
    (``practice:<route>``): a target route without enough held-out fixes is decided on them,
    by a one-sided exact sign test on the examples that changed.
    """
    lines = tuple(ScoreLine(name, b, a) for name, (b, a) in sorted(scores.items()))
    if not targets:
        return GateDecision(False, "no target route", lines, ())
    problems: list[str] = []  # measured harm: any one refuses the candidate
    unproven: list[str] = []  # why a target is no gain (enough to refuse only when no target gained)
    gains_said: list[str] = []
    each_alpha = alpha / len(targets)  # Bonferroni: k routes tested, one false gain in 20 at most
    for route in targets:
        practice = (paired or {}).get(PRACTICE_PREFIX + route) or ()
        if route in scores and scores[route][1].n >= min_examples:  # the user's own fixes weigh most
            before, after = scores[route]
            said = f"{route} did not improve ({before.format()} -> {after.format()})"
            if after.value > before.value:
                gains_said.append(f"{route} {before.format()} -> {after.format()}")
            elif after.value < before.value:
                problems.append(said)
            else:
                unproven.append(said)
            continue
        n = scores[route][1].n if route in scores else 0
        if not practice:
            unproven.append(f"too few held-out fixes of {route} to decide ({n} < {min_examples})")
            continue
        gained = sum(1 for b, a in practice if a and not b)
        lost = sum(1 for b, a in practice if b and not a)
        p = sign_test_greater(gained, lost)
        said = f"practice {route} +{gained}/-{lost} of {len(practice)} (one-sided p = {p:.3f})"
        if gained > lost and p <= each_alpha:
            gains_said.append(said)
        elif lost > gained and sign_test_greater(lost, gained) <= alpha:
            problems.append(f"{said}: the candidate breaks more than it fixes, beyond noise")
        else:
            unproven.append(
                f"{route}: {n} held-out fixes (< {min_examples}) and the {said} is within noise "
                f"(needs p <= {each_alpha:.3g})"
            )
    for name, (before, after) in sorted(scores.items()):
        if name in targets or before.n == 0:
            continue
        low = before.interval[0]
        if after.value < low:
            problems.append(
                f"{name} regressed beyond its interval ({after.format()} < {100 * low:.1f}%, before {before.format()})"
            )
    if problems or not gains_said:
        return GateDecision(False, "; ".join(problems + unproven), lines, tuple(targets))
    unchanged = f"; no evidence of a gain: {'; '.join(unproven)}" if unproven else ""
    return GateDecision(True, f"improved: {', '.join(gains_said)}; no regression{unchanged}", lines, tuple(targets))


# ----------------------------------------------------------------------------- scoring


def heldout_examples(settings: Settings) -> list[TrainingExample]:
    """The held-out accepted fixes as examples (prompt and target made as for training)."""
    return [ex for ex in store_examples(settings) if ex.fix_id is not None and is_held_out(ex.fix_id)]


def heldout_fix_ids(store: Store) -> tuple[str, ...]:
    """Every held-out fix id (what the trainer must exclude)."""
    return tuple(sorted({ex.fix_id for ex in store.accepted_fixes() if is_held_out(ex.fix_id)}))


def answer_fixes(example: TrainingExample, answer: str) -> bool:
    """Does ``answer`` (the model's text) turn the example's broken item into the user's code?"""
    broken = example.broken
    region = PromptRegion(Region(example.file, 0, len(broken.encode()), ""), broken)
    edits = parse_answer(answer, FixPrompt(example.messages, (region,)))
    if not edits:
        return False
    try:
        fixed = apply_edits(broken.encode(), edits).decode("utf-8", "replace")
    except SleepyCoderError:
        return False
    return collapse_ws(fixed) == collapse_ws(example.fixed)


def score_examples(
    runtime: ModelRuntime,
    examples: Sequence[TrainingExample],
    *,
    max_new_tokens: int,
    switch: PauseSwitch | None = None,
) -> dict[str, Rate]:
    """Per route, the share of ``examples`` the runtime (with whatever adapters are attached) fixes."""
    return rates_by_route(examples, score_outcomes(runtime, examples, max_new_tokens=max_new_tokens, switch=switch))


def score_outcomes(
    runtime: ModelRuntime,
    examples: Sequence[TrainingExample],
    *,
    max_new_tokens: int,
    switch: PauseSwitch | None = None,
) -> list[bool]:
    """Whether the runtime fixes each example, in order (greedy, the route's adapter if attached)."""
    outcomes = []
    for example in examples:
        budget = min(max_new_tokens, runtime.token_count(example.answer) + 32)
        generation = runtime.generate(
            [dict(m) for m in example.messages],
            max_new_tokens=budget,
            route=example.route,
            stop_event=switch.event if switch else None,
        )
        if switch is not None:
            switch.raise_if_tripped()
        outcomes.append(answer_fixes(example, generation.text))
    return outcomes


def rates_by_route(examples: Sequence[TrainingExample], outcomes: Sequence[bool]) -> dict[str, Rate]:
    passed: dict[str, int] = {}
    total: dict[str, int] = {}
    for example, fixed in zip(examples, outcomes, strict=True):
        total[example.route] = total.get(example.route, 0) + 1
        passed[example.route] = passed.get(example.route, 0) + int(fixed)
    return {route: Rate(passed[route], total[route]) for route in total}


class BenchScorer(Protocol):
    """Scores a target route's slice of the benchmark with the adapters at ``paths`` (none: the base model).

    The evaluation harness provides one (``learner.eval.gate_slice.benchmark_slice``) and the
    command line plugs it in; the learner never imports the evaluation itself.
    """

    def __call__(
        self,
        settings: Settings,
        store: Store,
        runtime: ModelRuntime,
        route: str,
        paths: Sequence[Path],
        config: GateConfig,
    ) -> Rate | None: ...


@dataclass
class GateConfig:
    min_examples: int = MIN_HELDOUT
    #: Benchmark cases per target route (0: no benchmark slice).
    bench_limit: int = 4
    bench_dirs: tuple[Path, ...] | None = None
    max_new_tokens: int = 384
    #: Scores the benchmark slices (None: the gate decides on held-out fixes and other routes alone).
    bench_scorer: BenchScorer | None = None
    #: Score the held-out practice mutations of the user's crates (the evidence of the first nights).
    use_practice: bool = True
    practice_alpha: float = PRACTICE_ALPHA


@dataclass
class GateResult:
    decision: GateDecision
    seconds: dict[str, float] = field(default_factory=dict)


def _with_adapters(runtime: ModelRuntime, paths: Sequence[Path], work: Callable[[], Any]) -> Any:
    """Run ``work`` with the Share sets at ``paths`` attached (none: the base model), then unhook them."""
    sets = [load_adapter_set(runtime.model, Path(p)) for p in paths]
    try:
        runtime.attach_adapters(RoutedAdapters(sets) if sets else None)
        return work()
    finally:
        runtime.attach_adapters(None)
        for adapter_set in sets:
            adapter_set.detach()


def evaluate_candidate(
    settings: Settings,
    store: Store,
    runtime: ModelRuntime,
    candidate: AdapterVersion,
    targets: Sequence[str],
    config: GateConfig | None = None,
    *,
    switch: PauseSwitch | None = None,
) -> GateResult:
    """Score "before" (the active adapters, or the base model) and the candidate; decide."""

    config = config or GateConfig()
    held_out = heldout_examples(settings)
    practice = load_practice(settings) if config.use_practice else []
    practice_outcomes: dict[str, list[bool]] = {}
    active = active_selection(settings, store)
    before_paths = [p for p in active.paths] if active else []
    after_paths = [Path(candidate.path)]
    seconds: dict[str, float] = {}
    scores: dict[str, tuple[Rate, Rate]] = {}

    def run(paths: Sequence[Path], label: str) -> dict[str, Rate]:
        started = time.monotonic()

        def score() -> dict[str, Rate]:
            rates = score_examples(runtime, held_out, max_new_tokens=config.max_new_tokens, switch=switch)
            outcomes = score_outcomes(runtime, practice, max_new_tokens=config.max_new_tokens, switch=switch)
            practice_outcomes[label] = outcomes
            rates.update({PRACTICE_PREFIX + r: rate for r, rate in rates_by_route(practice, outcomes).items()})
            return rates

        result: dict[str, Rate] = _with_adapters(runtime, paths, score)
        for route in targets:
            if switch is not None:
                switch.raise_if_tripped()
            if config.bench_scorer is None:
                continue
            bench = config.bench_scorer(settings, store, runtime, route, paths, config)
            if bench is not None:
                result[BENCH_PREFIX + route] = bench
        seconds[label] = round(time.monotonic() - started, 2)
        return result

    before = run(before_paths, "before")
    after = run(after_paths, "after")
    for name in sorted(set(before) | set(after)):
        scores[name] = (before.get(name, Rate(0, 0)), after.get(name, Rate(0, 0)))
    for route in targets:
        scores.setdefault(route, (Rate(0, 0), Rate(0, 0)))
    paired: dict[str, list[tuple[bool, bool]]] = {}
    pairs = zip(practice, practice_outcomes["before"], practice_outcomes["after"], strict=True)
    for example, was, now in pairs:
        paired.setdefault(PRACTICE_PREFIX + example.route, []).append((was, now))
    decision = decide(scores, targets, min_examples=config.min_examples, paired=paired, alpha=config.practice_alpha)
    return GateResult(decision, seconds)


def record_decision(
    store: Store, candidate: AdapterVersion, result: GateResult, base_model: str | None = None
) -> AdapterVersion:
    """Write the scores into the candidate's metrics, then promote or reject it (one transaction each).

    Metrics first: a crash between the two leaves a gated candidate that the next cycle gates
    again, never an active version without its evidence.
    """
    store.set_adapter_metrics(candidate.version, {"gate": {**result.decision.as_json(), "seconds": result.seconds}})
    if result.decision.promote:
        return store.promote(candidate.version, base_model=base_model)
    return store.reject(candidate.version, result.decision.reason)
