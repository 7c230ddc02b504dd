"""One learning run: curriculum -> Phase 0 (LoRA per route) -> 1 (basis) -> 2 (coefficients) -> 3 (fold).

A run lives in ``settings.training_dir/runs/<run id>/`` with its options, the training sets it
uses and a checkpoint per trained unit (a Phase-0 route, a Phase-2 route, a naive-baseline
route), so a run killed mid-way continues where it stopped (:attr:`LearnOptions.resume`).
What it produces is one versioned Share adapter set (``share-<UTC>-<hash>``) written
atomically into ``settings.adapters_dir`` and registered in the store as a *candidate* of the
route :data:`SHARE_ROUTE`; promoting it is the sleep cycle's gate's decision (``promote=True``
does it directly for manual runs). The artifact's ``training.json`` holds every loss per step,
the parameter counts and the fold results, which the report plots.

Which phases run: without an earlier Share set (or with ``rebuild``) every route with enough
examples goes through Phase 0 and Phase 1, except the routes named in ``routes`` when others
exist: those are the *new* routes of Phases 2 and 3. With an earlier set, only the new routes
(``routes``, else the routes it lacks) are trained, as coefficients, and folded into it.
``phase`` stops after that phase.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.files import remove_stale_temp_dirs
from learner.learn.curriculum import CurriculumConfig, Snippet, build_curriculum, load_training_set
from learner.learn.examples import TrainingExample
from learner.learn.train import StepCallback, TrainConfig
from learner.records import NAIVE_LORA_ROUTE, SHARE_ROUTE

if TYPE_CHECKING:
    from learner.model.runtime import ModelRuntime
    from learner.share import ShareAdapters, ShareConfig
    from learner.store import Store


class LearnError(SleepyCoderError):
    """A learning run cannot start or continue (no data, nothing to resume, a bad option)."""


class Reporter(Protocol):
    def message(self, text: str) -> None: ...

    def task(self, label: str, total: int) -> StepCallback: ...


class SilentReporter:
    def message(self, text: str) -> None:
        return None

    def task(self, label: str, total: int) -> StepCallback:
        return lambda *args: None


@dataclass
class LearnOptions:
    """What ``sleepy-coder learn`` was asked to do (saved with the run, so ``resume`` repeats it)."""

    routes: tuple[str, ...] | None = None
    #: Restrict the whole run (curriculum, every phase, the naive baseline) to these routes.
    only: tuple[str, ...] | None = None
    phase: int = 3
    steps: int = 100
    crates: tuple[str, ...] = ()
    per_route: int = 64
    min_examples: int = 4
    use_docs: bool = True
    max_checks: int = 3000
    naive: bool = False
    rebuild: bool = False
    promote: bool = False
    batch_size: int = 4
    max_tokens: int = 256
    grad_accum: int = 1
    lora_lr: float = 2e-4
    coef_lr: float = 1e-3
    seed: int = 0
    checkpoint_every: int = 10
    #: Store fixes held out of training (the gate's evaluation split).
    exclude_fix_ids: tuple[str, ...] = ()
    share: dict[str, Any] = field(default_factory=dict)

    def train_config(self, lr: float) -> TrainConfig:
        return TrainConfig(
            steps=self.steps,
            batch_size=self.batch_size,
            max_tokens=self.max_tokens,
            grad_accum=self.grad_accum,
            lr=lr,
            seed=self.seed,
            checkpoint_every=self.checkpoint_every,
        )

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["routes"] = list(self.routes) if self.routes is not None else None
        data["only"] = list(self.only) if self.only is not None else None
        data["crates"] = list(self.crates)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LearnOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("routes", "only"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        values["crates"] = tuple(values.get("crates", ()))
        values["exclude_fix_ids"] = tuple(values.get("exclude_fix_ids", ()))
        return cls(**values)


@dataclass
class LearnReport:
    run_dir: Path
    finished: bool
    phases_done: list[int] = field(default_factory=list)
    version: str | None = None
    artifact: Path | None = None
    naive_version: str | None = None
    naive_artifact: Path | None = None
    promoted: bool = False
    training_sets: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- runs


def _runs_dir(settings: Settings) -> Path:
    return settings.training_dir / "runs"


def latest_unfinished_run(settings: Settings) -> Path | None:
    runs = sorted(p for p in _runs_dir(settings).glob("run-*") if (p / "run.json").is_file())
    for run in reversed(runs):
        if not json.loads((run / "run.json").read_text()).get("finished"):
            return run
    return None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    from learner.files import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, indent=2, default=str).encode())


def _utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


# ----------------------------------------------------------------------------- the run


def run_learning(
    settings: Settings,
    options: LearnOptions,
    *,
    runtime: ModelRuntime | None = None,
    reporter: Reporter | None = None,
    snippets: tuple[Snippet, ...] = (),
    stop_after: int | None = None,
    resume: bool = False,
) -> LearnReport:
    """Run (or resume) one learning run; see the module docstring for what runs when.

    ``stop_after`` ends the run after that many optimiser steps in total (it can be resumed);
    ``snippets`` add correct code to the curriculum (tests use a small corpus).
    """
    from learner.store import Store

    reporter = reporter or SilentReporter()
    # The caller holds the learner lock, so a hidden temp folder here is a killed run's leftover.
    for leftover in remove_stale_temp_dirs(settings.adapters_dir):
        reporter.message(f"removed {leftover.name}, left by an interrupted run")
    if options.only is not None and options.routes:
        outside = [r for r in options.routes if r not in options.only]
        if outside:
            raise LearnError(f"--route {', '.join(outside)} is outside --only {', '.join(options.only)}")
    settings.ensure_dirs()
    if resume:
        run_dir = latest_unfinished_run(settings)
        if run_dir is None:
            raise LearnError("there is no unfinished learning run to resume; start one without --resume")
        options = LearnOptions.from_json(json.loads((run_dir / "run.json").read_text())["options"])
        reporter.message(f"resuming {run_dir.name}")
    else:
        run_dir = _runs_dir(settings) / f"run-{_utc_stamp()}"
        _write_json(run_dir / "run.json", {"options": options.to_json(), "finished": False})
    report = LearnReport(run_dir=run_dir, finished=False)
    budget = [stop_after]

    with Store.open(settings) as store:
        rows = _training_rows(settings, options, run_dir, snippets, reporter, report)
        if runtime is None:
            from learner.model.runtime import load_runtime

            reporter.message(f"loading {settings.model}")
            runtime = load_runtime(settings)
        run = _Run(settings, options, runtime, run_dir, reporter, budget, report, store)
        run.execute(rows)
    return report


def _training_rows(
    settings: Settings,
    options: LearnOptions,
    run_dir: Path,
    snippets: tuple[Snippet, ...],
    reporter: Reporter,
    report: LearnReport,
) -> dict[str, list[TrainingExample]]:
    """The run's training sets: built once (and registered), then re-read on resume."""
    sets_file = run_dir / "sets.json"
    if not sets_file.is_file():
        reporter.message("building the curriculum (rustc checks are cached)")
        config = CurriculumConfig(
            per_route=options.per_route,
            routes=options.only,
            crates=tuple(Path(c) for c in options.crates),
            use_docs=options.use_docs,
            max_checks=options.max_checks,
            exclude_fix_ids=frozenset(options.exclude_fix_ids),
        )
        result = build_curriculum(settings, config, snippets=snippets)
        _write_json(sets_file, {"files": {r: str(p) for r, p in result.files.items()}, "stats": result.stats})
    sets = json.loads(sets_file.read_text())
    report.training_sets = dict(sets["files"])
    report.metrics["curriculum"] = sets.get("stats", {})
    return {route: load_training_set(Path(path)) for route, path in sets["files"].items()}


class _Run:
    def __init__(
        self,
        settings: Settings,
        options: LearnOptions,
        runtime: ModelRuntime,
        run_dir: Path,
        reporter: Reporter,
        budget: list[int | None],
        report: LearnReport,
        store: Store,
    ) -> None:
        self.settings = settings
        self.options = options
        self.runtime = runtime
        self.run_dir = run_dir
        self.reporter = reporter
        self.budget = budget
        self.report = report
        self.store = store
        from learner.learn.train import end_of_turn_id

        tokenizer = runtime.tokenizer
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else end_of_turn_id(tokenizer)

    # ----- helpers

    def share_config(self) -> ShareConfig:
        from learner.share import ShareConfig

        return ShareConfig.from_dict(
            {"base_model": self.settings.model, "seed": self.options.seed, **self.options.share}
        )

    def encoded(self, rows: list[TrainingExample]) -> list[Any]:
        from learner.learn.train import encode_rows

        return encode_rows(self.runtime.tokenizer, self.runtime.render_prompt, rows, self.options.max_tokens)

    def spend(self, steps: int) -> None:
        if self.budget[0] is not None:
            self.budget[0] = max(0, self.budget[0] - steps)

    def stopped(self, finished: bool) -> bool:
        if not finished:
            self.reporter.message(f"stopped; continue with `sleepy-coder learn --resume` ({self.run_dir.name})")
        return not finished

    # ----- phases

    def execute(self, rows: dict[str, list[TrainingExample]]) -> None:
        trainable = {r: v for r, v in rows.items() if len(v) >= self.options.min_examples}
        if not trainable:
            raise LearnError(
                f"no route has {self.options.min_examples} training examples; add crates with --crate "
                "or install the Rust docs (rustup component add rust-docs)"
            )
        base = None if self.options.rebuild else _latest_share(self.store)
        wanted = [r for r in (self.options.routes or ()) if r in trainable]
        missing = [r for r in (self.options.routes or ()) if r not in trainable]
        if missing:
            self.reporter.message(f"not enough examples for {', '.join(missing)}; skipped")
        metrics: dict[str, Any] = self.report.metrics
        metrics.update({"phase0": {}, "phase2": {}, "phase3": {}, "options": self.options.to_json()})
        model = self.runtime.model
        if base is None:
            phase0 = [r for r in trainable if r not in wanted] or list(trainable)
            new = [r for r in wanted if r not in phase0]
            factors = self.phase0(phase0, trainable, metrics)
            if factors is None:
                return
            self.report.phases_done.append(0)
            if self.options.phase == 0:
                self.finish()
                return
            adapters = self.phase1(factors)
        else:
            from learner.share import ShareAdapters

            self.reporter.message(f"continuing from {base.version}")
            adapters = ShareAdapters.load(model, base.path)
            new = wanted or [r for r in trainable if r not in adapters.routes]
        self.report.phases_done.append(1)
        try:
            if self.options.phase >= 2 and new:
                if not self.phase2(adapters, new, trainable, metrics):
                    return
                self.report.phases_done.append(2)
            if self.options.phase >= 3 and new:
                self.phase3(adapters, new, metrics)
                self.report.phases_done.append(3)
            self.publish(adapters, base.version if base is not None else None, metrics)
            if self.options.naive and not self.naive(list(trainable), trainable):
                return
        finally:
            adapters.detach()
        self.finish()

    def phase0(
        self, routes: list[str], rows: dict[str, list[TrainingExample]], metrics: dict[str, Any]
    ) -> dict[str, Any] | None:
        from learner.learn.train import train_lora_route
        from learner.share import lora_factors_from_peft

        factors = {}
        config = self.options.train_config(self.options.lora_lr)
        for route in routes:
            folder = self.run_dir / "phase0" / route
            if (folder / "adapter" / "adapter_config.json").is_file():
                factors[route] = lora_factors_from_peft(folder / "adapter")
                metrics["phase0"][route] = json.loads((folder / "outcome.json").read_text())
                continue
            self.reporter.message(f"Phase 0: LoRA for {route} ({len(rows[route])} examples)")
            model, outcome, route_factors = train_lora_route(
                self.runtime.model,
                self.encoded(rows[route]),
                self.share_config(),
                config,
                pad_id=self.pad_id,
                out_dir=folder / "adapter",
                checkpoint_dir=folder / "checkpoint",
                on_step=self.reporter.task(f"phase 0 {route}", config.steps),
                stop_after=self.budget[0],
            )
            self.runtime.model = model
            self.spend(outcome.steps_this_call)
            if self.stopped(outcome.finished) or route_factors is None:
                return None
            entry = {
                "losses": outcome.losses,
                "seconds": outcome.seconds,
                "parameters": outcome.trainable_parameters,
                "examples": len(rows[route]),
            }
            _write_json(folder / "outcome.json", entry)
            metrics["phase0"][route] = entry
            factors[route] = route_factors
        return factors

    def phase1(self, factors: dict[str, Any]) -> ShareAdapters:
        from learner.share import ShareAdapters

        self.reporter.message(f"Phase 1: shared basis from {len(factors)} LoRA adapters")
        return ShareAdapters.from_lora(self.runtime.model, factors, self.share_config())

    def phase2(
        self,
        adapters: ShareAdapters,
        routes: list[str],
        rows: dict[str, list[TrainingExample]],
        metrics: dict[str, Any],
    ) -> bool:
        from learner.learn.train import train_route_coefficients

        config = self.options.train_config(self.options.coef_lr)
        for route in routes:
            self.reporter.message(f"Phase 2: coefficients for {route} ({len(rows[route])} examples)")
            outcome = train_route_coefficients(
                adapters,
                route,
                self.encoded(rows[route]),
                config,
                pad_id=self.pad_id,
                checkpoint_dir=self.run_dir / "phase2" / route / "checkpoint",
                on_step=self.reporter.task(f"phase 2 {route}", config.steps),
                stop_after=self.budget[0],
            )
            self.spend(outcome.steps_this_call)
            if self.stopped(outcome.finished):
                return False
            metrics["phase2"][route] = {
                "losses": outcome.losses,
                "seconds": outcome.seconds,
                "examples": len(rows[route]),
                **outcome.extra,
            }
            ratio = outcome.extra["parameter_ratio"]
            self.reporter.message(
                f"  {route}: {outcome.extra['trainable_parameters']:,} trainable parameters, "
                f"{ratio:.1f}x fewer than an r={adapters.config.lora_r} LoRA"
            )
        return True

    def phase3(self, adapters: ShareAdapters, routes: list[str], metrics: dict[str, Any]) -> None:
        from learner.share import MergeRefusedError

        for route in routes:
            try:
                fold = adapters.fold(route)
            except MergeRefusedError as exc:
                self.reporter.message(f"Phase 3: fold of {route} refused: {exc}")
                metrics["phase3"][route] = {
                    "folded": False,
                    "reason": str(exc),
                    "drift": exc.drift,
                    "errors": exc.errors,
                }
                continue
            self.reporter.message(f"Phase 3: folded {route} into the basis")
            metrics["phase3"][route] = {"folded": True, "drift": fold.drift, "errors": fold.errors}
        metrics["reconstruction_errors"] = {r: adapters.reconstruction_error(r) for r in adapters.routes}

    def publish(self, adapters: ShareAdapters, parent: str | None, metrics: dict[str, Any]) -> None:
        from learner.files import write_atomic_dir

        digest = hashlib.sha256(json.dumps(adapters.metadata(), sort_keys=True, default=str).encode()).hexdigest()
        version = f"share-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{digest[:8]}"
        target = self.settings.adapters_dir / version
        metrics["routes"] = adapters.routes
        metrics["parameters"] = {r: adapters.trainable_parameters(r) for r in adapters.routes}
        metrics["lora_equivalent_parameters"] = adapters.lora_equivalent_parameters(adapters.config.lora_r)

        def fill(tmp: Path) -> None:
            adapters.save(tmp)
            (tmp / "training.json").write_text(json.dumps(metrics, indent=2, default=str))

        write_atomic_dir(target, fill)
        summary = {
            "kind": SHARE_ROUTE,
            "routes": adapters.routes,
            "phases": self.report.phases_done,
            "parameters": metrics["parameters"],
            "lora_equivalent_parameters": metrics["lora_equivalent_parameters"],
            "reconstruction_errors": metrics.get("reconstruction_errors", {}),
            "folds": {r: v.get("folded") for r, v in metrics["phase3"].items()},
            "final_loss": {r: v["losses"][-1] for r, v in metrics["phase2"].items() if v["losses"]},
            "run": self.run_dir.name,
        }
        self.store.register_candidate(
            version,
            route=SHARE_ROUTE,
            path=target,
            metrics=summary,
            parent_version=parent,
            base_model=self.settings.model,
        )
        if self.options.promote:
            self.store.promote(version, base_model=self.settings.model)
            self.report.promoted = True
        self.report.version, self.report.artifact = version, target
        self.reporter.message(
            f"produced {version} at {target}" + (" (promoted)" if self.report.promoted else " (candidate)")
        )

    def naive(self, routes: list[str], rows: dict[str, list[TrainingExample]]) -> bool:
        """The forgetting baseline: one LoRA trained on the routes one after another."""
        from learner.learn.train import train_lora_sequence

        adapters_active = self.runtime.model
        config = self.options.train_config(self.options.lora_lr)
        version = f"{NAIVE_LORA_ROUTE}-{_utc_stamp()[:16]}Z"
        out = self.settings.adapters_dir / NAIVE_LORA_ROUTE / version
        self.reporter.message(f"naive baseline: one LoRA over {', '.join(routes)} in sequence")
        model, outcomes = train_lora_sequence(
            adapters_active,
            [(r, self.encoded(rows[r])) for r in routes],
            self.share_config(),
            config,
            pad_id=self.pad_id,
            out_dir=out,
            checkpoint_root=self.run_dir / "naive",
            on_step=lambda route: self.reporter.task(f"naive {route}", config.steps),
            stop_after=self.budget[0],
        )
        self.runtime.model = model
        self.spend(sum(o.steps_this_call for o in outcomes.values()))
        if self.stopped(all(o.finished for o in outcomes.values()) and len(outcomes) == len(routes)):
            return False
        losses = {r: o.losses for r, o in outcomes.items()}
        _write_json(out / "training.json", {"order": routes, "losses": losses})
        self.store.register_candidate(
            version,
            route=NAIVE_LORA_ROUTE,
            path=out,
            metrics={"kind": NAIVE_LORA_ROUTE, "order": routes},
            base_model=self.settings.model,
        )
        self.report.naive_version, self.report.naive_artifact = version, out
        return True

    def finish(self) -> None:
        data = json.loads((self.run_dir / "run.json").read_text())
        data.update({"finished": True, "version": self.report.version, "naive_version": self.report.naive_version})
        _write_json(self.run_dir / "run.json", data)
        self.report.finished = True


def _latest_share(store: Store) -> Any:
    """The Share set to continue from: the active one, else the newest candidate; None if none."""
    active = store.active_versions().get(SHARE_ROUTE)
    if active is not None and Path(active.path).is_dir():
        return active
    for version in store.adapters(route=SHARE_ROUTE, status="candidate"):
        if Path(version.path).is_dir():
            return version
    return None


def artifact_metrics(path: Path) -> dict[str, Any]:
    """The ``training.json`` of a produced Share set (losses per step, parameters, folds)."""
    try:
        data = json.loads((Path(path) / "training.json").read_text())
    except (OSError, ValueError) as exc:
        raise LearnError(f"{path} has no readable training.json: {exc}") from exc
    return data if isinstance(data, dict) else {}
