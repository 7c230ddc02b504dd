"""Running cases: each one through the editor's pipeline in its sandbox crate, graded, recorded.

Per case: the broken program is materialised, :func:`learner.fix.pipeline.check_path` finds its
errors, and the strategy's sources fix them: rustc's suggestions for all of them together first
(as ``fix --all`` does, when the strategy uses rustc), else one at a time through
:func:`learner.fix.pipeline.fix_diagnostic` (the first verified fix is applied with
:func:`learner.fix.pipeline.apply_fix`, the crate re-checked, up to :data:`MAX_STEPS` errors).
The final program is then graded from scratch (:mod:`learner.eval.grader`). Cases run in a
thread pool (``jobs``, default 2): compiling one case overlaps generating for another, the
model is loaded once and its generation is serialised by the runtime itself.
"""

from __future__ import annotations

import functools
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import learner
from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.eval.cases import CaseSet, EvalCase, SkippedCase
from learner.eval.grader import Grade, grade
from learner.eval.leakage import LeakageReport, check_cases, training_index
from learner.eval.sandbox import case_lock, materialise, program_path
from learner.eval.strategies import Strategy, StrategyContext, StrategyInfo, build_strategy
from learner.files import advance_mtime
from learner.fix.pipeline import apply_fix, check_path, fix_diagnostic
from learner.fix.router import route_for, route_for_code
from learner.fix.whole_crate import combined_fix
from learner.model.adapters import AdapterSelection
from learner.model.handle import RuntimeHandle
from learner.progress import Progress, no_progress
from learner.records import DiagnosticFixes, RustDiagnostic
from learner.rust.source import unified_diff
from learner.rust.toolchain import rustc_version
from learner.stats import CaseSamples
from learner.store import EvalCaseResult, Store

#: At most this many errors are fixed one after another in one case.
MAX_STEPS = 4


@dataclass(frozen=True)
class CaseOutcome:
    case_id: str
    source: str
    route: str
    seed: int
    passed: bool
    attempts_used: int
    reason: str
    latency_s: float
    grade: Grade | None = None
    candidate: str | None = None
    #: Set when the case could not be graded (its broken program compiles as built): not a result.
    not_graded: str | None = None

    @property
    def first_attempt(self) -> bool:
        return self.passed and self.attempts_used <= 1


@dataclass
class EvalRunResult:
    run_id: int
    strategy: str
    info: StrategyInfo
    outcomes: list[CaseOutcome]
    skipped: list[SkippedCase]
    leakage: LeakageReport
    seconds: float


@functools.lru_cache(maxsize=1)
def project_version() -> str:
    """``learner.__version__`` plus ``git describe`` of the checkout when there is one."""
    root = Path(learner.__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        described = out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        described = ""
    return f"{learner.__version__}+{described}" if described else learner.__version__


def ordered_errors(errors: Sequence[RustDiagnostic], codes: Sequence[str]) -> list[RustDiagnostic]:
    """The case's own codes first, in the case's order (primary first), then the rest as reported."""
    rank = {code: i for i, code in enumerate(codes)}
    return sorted(errors, key=lambda d: rank.get(d.code or "", len(rank)))


def _explain(result: DiagnosticFixes) -> str:
    code = result.diagnostic.code or "the error"
    parts = [f"no verified fix for {code}"]
    if result.rejected:
        reasons: dict[str, int] = {}
        for v in result.rejected:
            reasons[v.verdict.reason] = reasons.get(v.verdict.reason, 0) + 1
        listed = "; ".join(f"{r} (x{n})" if n > 1 else r for r, n in reasons.items())
        parts.append(f"{len(result.rejected)} candidate(s) refused: {listed}")
    else:
        parts.append("no candidate proposed")
    parts.extend(result.notes)
    return ": ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if len(parts) > 2 else "")


def run_case(
    settings: Settings, case: EvalCase, strategy: Strategy, seed: int | None, *, max_steps: int = MAX_STEPS
) -> CaseOutcome:
    """One sample of ``strategy`` on ``case``: fix through the pipeline, then grade from scratch."""
    with case_lock(settings, case):
        return _run_case(settings, case, strategy, seed, max_steps=max_steps)


def _run_case(
    settings: Settings, case: EvalCase, strategy: Strategy, seed: int | None, *, max_steps: int
) -> CaseOutcome:
    started = time.monotonic()
    seed_value = seed if seed is not None else 0
    route = route_for_code(case.primary_code).name
    try:
        root = materialise(settings, case, case.broken)
        session = check_path(root, settings)
        errors = ordered_errors(session.errors, case.error_codes)
        if not errors:
            return CaseOutcome(
                case.id, case.source, route, seed_value, False, 0, "", time.monotonic() - started,
                not_graded=f"the broken program compiles as a {case.compile_as}: nothing to fix",
            )  # fmt: skip
        primary = errors[0]
        route = route_for(primary).name
        attempts_used = 0
        explanation = ""
        for _ in range(max_steps):
            sources = strategy.sources(seed)
            # As fix --all does: rustc's suggestions for every error together first (a file with
            # dozens of E0308 is fixed in one step, not MAX_STEPS of them).
            if any(s.name == "rustc" for s in sources) and (combined := combined_fix(session, errors)) is not None:
                before = program_path(root, case).stat().st_mtime_ns
                apply_fix(session, combined)
                advance_mtime(program_path(root, case), before)
                session = check_path(root, settings)
                errors = ordered_errors(session.errors, case.error_codes)
                attempts_used = max(attempts_used, 1)
                if not errors:
                    break
                continue
            result = fix_diagnostic(session, errors[0], sources, settings=settings)
            tried = [v.candidate.attempt for v in (*result.fixes, *result.rejected)]
            if not result.fixes:
                attempts_used = max([attempts_used, *tried])
                explanation = _explain(result)
                break
            chosen = result.fixes[0].candidate
            attempts_used = max(attempts_used, chosen.attempt)
            before = program_path(root, case).stat().st_mtime_ns
            apply_fix(session, chosen)
            advance_mtime(program_path(root, case), before)
            session = check_path(root, settings)
            errors = ordered_errors(session.errors, case.error_codes)
            if not errors:
                break
        final = program_path(root, case).read_text(encoding="utf-8")
        # What the user waits for is the fixing; grading is the harness's own cost.
        fixed_s = time.monotonic() - started
        verdict = grade(settings, case, final, target=primary)
    except (SleepyCoderError, RuntimeError) as exc:
        return CaseOutcome(
            case.id, case.source, route, seed_value, False, 0, f"error: {exc}", time.monotonic() - started
        )
    reason = verdict.reason if verdict.passed or not explanation else f"{verdict.reason}; {explanation}"
    diff = None
    if final != case.broken:
        file = case.program_file
        diff = unified_diff(file, case.broken.encode("utf-8"), final.encode("utf-8"))
    return CaseOutcome(
        case.id,
        case.source,
        route,
        seed_value,
        verdict.passed,
        max(1, attempts_used),
        reason,
        fixed_s,
        verdict,
        diff,
    )


def run_case_samples(
    settings: Settings, case: EvalCase, strategy: Strategy, seeds: Sequence[int | None]
) -> list[CaseOutcome]:
    """Every seed of one case, one after another (they share the case's sandbox crate)."""
    return [run_case(settings, case, strategy, seed) for seed in seeds]


def sample_seeds(strategy: Strategy, seeds: int) -> list[int | None]:
    """Greedy once for deterministic strategies or a single seed; else seeds 0..N-1, sampled."""
    if strategy.deterministic or seeds <= 1:
        return [None]
    return list(range(seeds))


def run_eval(
    case_set: CaseSet,
    strategy_name: str,
    settings: Settings,
    store: Store,
    *,
    attempts: int | None = None,
    seeds: int = 1,
    jobs: int = 2,
    temperature: float = 0.7,
    runtime: RuntimeHandle | None = None,
    adapters: AdapterSelection | None = None,
    progress: Progress = no_progress,
    meta: dict[str, Any] | None = None,
) -> EvalRunResult:
    """Evaluate ``strategy_name`` on ``case_set`` and record the run; returns its outcomes."""
    started = time.monotonic()
    if attempts is not None:
        settings = replace(settings, attempts=attempts)
    cases, leakage = check_cases(case_set.cases, training_index(store))
    ctx = StrategyContext(settings, store, runtime or RuntimeHandle(settings), temperature, adapters)
    strategy = build_strategy(strategy_name, ctx)
    progress(f"preparing strategy {strategy_name}", None)
    try:
        info = strategy.prepare()
        return _run_prepared(
            case_set, cases, leakage, strategy, strategy_name, info, settings, store,
            seeds=seeds, jobs=jobs, temperature=temperature, progress=progress, meta=meta, started=started,
        )  # fmt: skip
    finally:
        strategy.close()


def _run_prepared(
    case_set: CaseSet,
    cases: list[EvalCase],
    leakage: LeakageReport,
    strategy: Strategy,
    strategy_name: str,
    info: StrategyInfo,
    settings: Settings,
    store: Store,
    *,
    seeds: int,
    jobs: int,
    temperature: float,
    progress: Progress,
    meta: dict[str, Any] | None,
    started: float,
) -> EvalRunResult:
    seed_list = sample_seeds(strategy, seeds)
    skipped = [*case_set.skipped, *leakage.refused]
    run_meta = {
        "case_files": list(case_set.files),
        "cases": len(cases),
        "leakage": leakage.as_meta(),
        "jobs": jobs,
        "temperature": 0.0 if seed_list == [None] else temperature,
        "toolchain": rustc_version(),
        **(meta or {}),
    }
    run_id = store.start_eval_run(
        strategy_name,
        model=info.model,
        adapter_versions=info.adapter_versions,
        project_version=project_version(),
        seeds=[s if s is not None else 0 for s in seed_list],
        attempts=settings.attempts if not strategy.deterministic else 1,
        meta=run_meta,
    )
    outcomes: list[CaseOutcome] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="eval") as pool:
        futures = {pool.submit(run_case_samples, settings, case, strategy, seed_list): case for case in cases}
        for done, future in enumerate(as_completed(futures), start=1):
            case = futures[future]
            for outcome in future.result():
                outcomes.append(outcome)
                if outcome.not_graded is not None:
                    continue
                _record(store, run_id, outcome)
            progress(f"{done}/{len(cases)} {case.id}", done / len(cases))
    not_graded = {o.case_id: o.not_graded for o in outcomes if o.not_graded is not None}
    skipped.extend(SkippedCase(cid, why) for cid, why in sorted(not_graded.items()))
    seconds = time.monotonic() - started
    graded = [o for o in outcomes if o.not_graded is None]
    store.finish_eval_run(
        run_id,
        {
            "skipped": [{"id": s.id, "reason": s.reason} for s in skipped],
            "seconds": round(seconds, 2),
            "cases_per_minute": round(60 * len({o.case_id for o in graded}) / seconds, 2) if seconds else None,
        },
    )
    return EvalRunResult(run_id, strategy_name, info, graded, skipped, leakage, seconds)


def _record(store: Store, run_id: int, outcome: CaseOutcome) -> None:
    g = outcome.grade
    store.record_eval_result(
        run_id,
        case_id=outcome.case_id,
        source=outcome.source,
        route=outcome.route,
        passed=outcome.passed,
        seed=outcome.seed,
        attempts_used=outcome.attempts_used,
        reason=outcome.reason,
        exact_match=g.exact_match if g else None,
        edit_size=g.edit_size if g else None,
        ref_edit_size=g.ref_edit_size if g else None,
        latency_s=outcome.latency_s,
        candidate=outcome.candidate,
    )


def samples_from_results(results: Sequence[EvalCaseResult]) -> list[CaseSamples]:
    """Group a run's recorded results per case (one entry per seed) for :func:`stats.summarise`."""
    grouped: dict[str, list[EvalCaseResult]] = {}
    for r in results:
        grouped.setdefault(r.case_id, []).append(r)
    return [
        CaseSamples(
            case_id,
            rows[0].source,
            rows[0].route,
            tuple(r.pass_at_1 for r in rows),
            tuple(r.passed for r in rows),
        )
        for case_id, rows in sorted(grouped.items())
    ]


def run_continual(
    case_set: CaseSet,
    settings: Settings,
    store: Store,
    *,
    attempts: int | None = None,
    jobs: int = 2,
    progress: Progress = no_progress,
) -> list[EvalRunResult]:
    """The continual protocol: after each learned family, evaluate every family's cases with its adapters."""
    from learner.eval.continual import protocol_steps
    from learner.model.adapters import NO_ADAPTERS, NoAdapters

    steps = protocol_steps(store)
    if not steps:
        raise NoAdapters(f"{NO_ADAPTERS} (the continual protocol needs adapters registered route by route)")
    families = [s.family for s in steps]
    cases = tuple(c for c in case_set.cases if route_for_code(c.primary_code).name in families)
    if not cases:
        raise NoAdapters(f"no case belongs to a learned family ({', '.join(families)})")
    protocol = f"continual-{int(time.time())}"
    runtime = RuntimeHandle(settings)
    results = []
    for step in steps:
        progress(f"step {step.index + 1}/{len(steps)}: after learning {step.family}", step.index / len(steps))
        selection = AdapterSelection(tuple(Path(p) for p in step.paths), step.versions)
        results.append(
            run_eval(
                replace(case_set, cases=cases),
                "routed",
                settings,
                store,
                attempts=attempts,
                jobs=jobs,
                runtime=runtime,
                adapters=selection,
                progress=progress,
                meta={"continual": {"protocol": protocol, "step": step.index, "families": families}},
            )
        )
    return results
