"""Evaluation strategies: named components that decide which fix sources answer a case.

A strategy is registered by name with :func:`register_strategy` (one new class plus one
registration line), never chosen by an if-chain. Every strategy hands the runner ordinary
:mod:`learner.fix.sources` sources, so a case goes through exactly the pipeline the editor uses.
Model strategies sample with ``temperature > 0`` and a seed per sample when asked to
(``--seeds N``); with one seed they decode greedily like the editor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.fix.sources import FixSource, ModelFixSource, RustcSuggestionSource
from learner.model import adapters as adapter_files
from learner.model.handle import ModelUnavailable, RuntimeHandle
from learner.records import NAIVE_LORA_ROUTE

if TYPE_CHECKING:
    from learner.store import Store


class StrategyUnavailable(SleepyCoderError):
    """The strategy cannot run here (unknown name, no model, no adapters); the message says what to do."""


@dataclass
class StrategyContext:
    settings: Settings
    store: Store | None = None
    #: Shared by every case of a run so the model loads once.
    runtime: RuntimeHandle | None = None
    #: Used when a strategy is sampled with seeds (more than one sample per case).
    temperature: float = 0.7
    #: Adapters to use instead of the active ones (the continual protocol's per-step snapshots).
    adapters: adapter_files.AdapterSelection | None = None


@dataclass(frozen=True)
class StrategyInfo:
    """What the run records about the strategy: the model and the adapter versions it used."""

    model: str = ""
    adapter_versions: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


class Strategy(Protocol):
    name: str
    #: Deterministic strategies run once per case whatever ``--seeds`` says.
    deterministic: bool

    def prepare(self) -> StrategyInfo:
        """Load what the strategy needs (model, adapters) or raise :class:`StrategyUnavailable`."""
        ...

    def sources(self, seed: int | None) -> list[FixSource]:
        """Fresh fix sources for one sample; ``seed`` None means greedy decoding."""
        ...

    def close(self) -> None:
        """Undo what :meth:`prepare` attached (adapters), so the next strategy starts from the base model."""
        ...


StrategyFactory = Callable[[StrategyContext], Strategy]
_REGISTRY: dict[str, StrategyFactory] = {}


def register_strategy(name: str, factory: StrategyFactory) -> None:
    _REGISTRY[name] = factory


def strategy_names() -> list[str]:
    return list(_REGISTRY)


def build_strategy(name: str, ctx: StrategyContext) -> Strategy:
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise StrategyUnavailable(f"unknown strategy {name!r}; known: {', '.join(_REGISTRY)}") from None
    return factory(ctx)


class _SampledRuntime:
    """A view of a :class:`ModelRuntime` whose ``generate`` samples with a fixed temperature and seed."""

    def __init__(self, runtime: Any, temperature: float, seed: int) -> None:
        self._runtime = runtime
        self._temperature = temperature
        self._seed = seed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)

    def generate(self, messages: list[dict[str, str]], **options: Any) -> Any:
        options.setdefault("temperature", self._temperature)
        options.setdefault("seed", self._seed)
        return self._runtime.generate(messages, **options)

    def generate_batch(self, messages: list[dict[str, str]], n: int, **options: Any) -> Any:
        """The extra candidates of a sample: the caller's seed (the attempt) mixed with the sample's,
        so each ``--seeds`` sample draws its own candidates."""
        options["seed"] = self._seed * 1_000 + int(options.get("seed") or 0)
        return self._runtime.generate_batch(messages, n, **options)


class SampledHandle:
    """Looks like a :class:`RuntimeHandle` to :class:`ModelFixSource`; shares the loaded model."""

    def __init__(self, inner: RuntimeHandle, temperature: float, seed: int) -> None:
        self.inner = inner
        self.temperature = temperature
        self.seed = seed

    def get(self) -> Any:
        return _SampledRuntime(self.inner.get(), self.temperature, self.seed)


class RustcStrategy:
    """rustc's own suggestions only: the deterministic baseline a model must beat."""

    name = "rustc"
    deterministic = True

    def __init__(self, ctx: StrategyContext) -> None:
        self.ctx = ctx

    def prepare(self) -> StrategyInfo:
        return StrategyInfo(model="rustc")

    def sources(self, seed: int | None) -> list[FixSource]:
        return [RustcSuggestionSource()]

    def close(self) -> None:
        return None


class ModelStrategy:
    """The model alone (no rustc suggestions), with or without the route hint and adapters."""

    deterministic = False
    use_hint = False
    #: Whether generation asks for the route's adapter (the attached adapter object decides what that means).
    use_route_adapter = False
    #: The answer format asked for (None: ``settings.answer_format``).
    answer_format: str | None = None

    def __init__(self, ctx: StrategyContext, name: str) -> None:
        self.ctx = ctx
        self.name = name
        self.handle = ctx.runtime or RuntimeHandle(ctx.settings)
        #: Share sets hooked into the model by :meth:`load_adapters`; detached by :meth:`close`.
        self.loaded_sets: list[Any] = []

    def load_adapters(self, runtime: Any) -> dict[str, str]:
        """Attach this strategy's adapters to ``runtime``; the base strategies use none."""
        runtime.attach_adapters(None)
        return {}

    def _load_sets(self, runtime: Any, selection: adapter_files.AdapterSelection) -> list[Any]:
        if self.handle.remote:
            raise StrategyUnavailable(
                f"strategy {self.name!r} loads adapter files into a local model; with backend = "
                f"{self.ctx.settings.backend!r} the server routes (strategies model, model+hints, pipeline)"
            )
        for path in selection.paths:
            self.loaded_sets.append(adapter_files.load_adapter_set(runtime.model, path))
        return self.loaded_sets

    def _selection(self) -> adapter_files.AdapterSelection:
        return self.ctx.adapters or adapter_files.route_adapters(self.ctx.settings, self.ctx.store)

    def close(self) -> None:
        runtime = self.handle.loaded
        if runtime is not None:
            runtime.attach_adapters(None)
        for adapter_set in self.loaded_sets:
            adapter_set.detach()
        self.loaded_sets.clear()

    def prepare(self) -> StrategyInfo:
        if not self.ctx.settings.model_enabled:
            raise StrategyUnavailable(f"strategy {self.name!r} needs the model, and the model tier is off")
        try:
            runtime = self.handle.get()
        except ModelUnavailable as exc:
            raise StrategyUnavailable(f"strategy {self.name!r} needs the model: {exc}") from exc
        try:
            versions = self.load_adapters(runtime)
        except adapter_files.NoAdapters as exc:
            raise StrategyUnavailable(f"strategy {self.name!r}: {exc}") from exc
        return StrategyInfo(model=str(runtime.model_name), adapter_versions=versions)

    def sources(self, seed: int | None) -> list[FixSource]:
        handle = self.handle if seed is None else SampledHandle(self.handle, self.ctx.temperature, seed)
        source = ModelFixSource(
            cast(RuntimeHandle, handle),
            use_route_adapter=self.use_route_adapter,
            use_hint=self.use_hint,
            answer_format=self.answer_format,
        )
        return [source]


class ModelHintsStrategy(ModelStrategy):
    use_hint = True


class PipelineStrategy(ModelHintsStrategy):
    """What the editor and ``sleepy-coder fix`` do: rustc's suggestions first, then the model (with the
    route hint) only for errors where no rustc suggestion verified."""

    def sources(self, seed: int | None) -> list[FixSource]:
        return [RustcSuggestionSource(), *super().sources(seed)]


class SearchReplaceHintsStrategy(ModelHintsStrategy):
    """``model+hints`` asking for SEARCH/REPLACE blocks (only the changed lines) instead of whole items."""

    answer_format = "search-replace"


class SearchReplacePipelineStrategy(PipelineStrategy):
    """``pipeline`` with the model asked for SEARCH/REPLACE blocks."""

    answer_format = "search-replace"


class LineRangeHintsStrategy(ModelHintsStrategy):
    """``model+hints`` with the regions numbered and the answer naming the line ranges it replaces."""

    answer_format = "line-range"


class LineRangePipelineStrategy(PipelineStrategy):
    """``pipeline`` with the model asked for line-range replacements."""

    answer_format = "line-range"


class RoutedStrategy(ModelStrategy):
    """The route's own adapter (the product's configuration)."""

    use_hint = True
    use_route_adapter = True

    def load_adapters(self, runtime: Any) -> dict[str, str]:
        selection = self._selection()
        runtime.attach_adapters(adapter_files.RoutedAdapters(self._load_sets(runtime, selection)))
        return selection.versions


class AveragedStrategy(ModelStrategy):
    """All routes' updates averaged (mean of the delta-W products), used for every error."""

    use_hint = True
    use_route_adapter = True

    def load_adapters(self, runtime: Any) -> dict[str, str]:
        selection = self._selection()
        if len(selection.paths) != 1:
            raise adapter_files.NoAdapters(
                f"averaging needs every route in one Share set; the active adapters span {len(selection.paths)}"
            )
        (adapter_set,) = self._load_sets(runtime, selection)
        runtime.attach_adapters(adapter_files.AveragedAdapters(adapter_set))
        return selection.versions


class NaiveLoraStrategy(ModelStrategy):
    """One LoRA trained on every route's data: the baseline Share must beat on forgetting."""

    use_hint = True
    use_route_adapter = True

    def load_adapters(self, runtime: Any) -> dict[str, str]:
        selection = adapter_files.naive_lora(self.ctx.settings, self.ctx.store)
        (adapter_set,) = self._load_sets(runtime, selection)
        routes = list(adapter_set.routes)
        if not routes:
            raise adapter_files.NoAdapters(f"{selection.paths[0]} holds no adapter")
        runtime.attach_adapters(adapter_files.SingleAdapter(adapter_set, routes[0]))
        return selection.versions


register_strategy("rustc", RustcStrategy)
register_strategy("model", lambda ctx: ModelStrategy(ctx, "model"))
register_strategy("model+hints", lambda ctx: ModelHintsStrategy(ctx, "model+hints"))
register_strategy("pipeline", lambda ctx: PipelineStrategy(ctx, "pipeline"))
register_strategy(
    "model+hints+search-replace", lambda ctx: SearchReplaceHintsStrategy(ctx, "model+hints+search-replace")
)
register_strategy("pipeline+search-replace", lambda ctx: SearchReplacePipelineStrategy(ctx, "pipeline+search-replace"))
register_strategy("model+hints+line-range", lambda ctx: LineRangeHintsStrategy(ctx, "model+hints+line-range"))
register_strategy("pipeline+line-range", lambda ctx: LineRangePipelineStrategy(ctx, "pipeline+line-range"))
register_strategy("routed", lambda ctx: RoutedStrategy(ctx, "routed"))
register_strategy("averaged", lambda ctx: AveragedStrategy(ctx, "averaged"))
register_strategy(NAIVE_LORA_ROUTE, lambda ctx: NaiveLoraStrategy(ctx, NAIVE_LORA_ROUTE))
