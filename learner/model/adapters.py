"""Finding and loading the learner's adapters for the adapter strategies (routed, averaged, naive-lora).

Adapters are found through the store's registry (active versions; the one-LoRA-on-everything
baseline is registered under the route :data:`NAIVE_LORA_ROUTE`) or, failing that, in
``settings.adapters_dir``. When none exist the strategy fails with :class:`NoAdapters`; it
never silently evaluates the base model under an adapter strategy's name.

A registered path is either a Share set (``share.json``, loaded with
:meth:`ShareAdapters.load`) or a peft LoRA folder (``adapter_config.json``), which is
represented exactly as a one-route Share set (variance threshold 1 keeps every direction).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.records import NAIVE_LORA_ROUTE

if TYPE_CHECKING:
    from learner.store import Store

SHARE_METADATA = "share.json"
PEFT_CONFIG = "adapter_config.json"
NO_ADAPTERS = "no adapters trained yet: run sleepy-coder learn"


class NoAdapters(SleepyCoderError):
    """An adapter strategy was asked for but the learner has not produced its adapters."""


@dataclass(frozen=True)
class AdapterSelection:
    """Which adapter folders a strategy uses and the versions it reports in the run."""

    paths: tuple[Path, ...]
    versions: dict[str, str] = field(default_factory=dict)


def _is_adapter_dir(path: Path) -> bool:
    return (path / SHARE_METADATA).is_file() or (path / PEFT_CONFIG).is_file()


def _newest_in(folder: Path, name_filter: str | None = None) -> Path | None:
    if not folder.is_dir():
        return None
    found = [
        p.parent
        for p in folder.rglob("*.json")
        if p.name in (SHARE_METADATA, PEFT_CONFIG) and (name_filter is None or name_filter in p.parent.parts)
    ]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def route_adapters(settings: Settings, store: Store | None) -> AdapterSelection:
    """The active per-route adapters (registry first, then the newest Share set in adapters_dir)."""
    if store is not None:
        # Only adapters trained on the model in use: another base model's would be noise to this one.
        active = {r: a for r, a in store.active_versions(settings.model).items() if r != NAIVE_LORA_ROUTE}
        paths = sorted({Path(a.path) for a in active.values() if _is_adapter_dir(Path(a.path))})
        if paths:
            return AdapterSelection(tuple(paths), {r: a.version for r, a in sorted(active.items())})
        if active:
            missing = ", ".join(f"{r}: {a.path}" for r, a in sorted(active.items()))
            raise NoAdapters(f"the active adapters' folders are missing or unreadable ({missing})")
    newest = _newest_in(settings.adapters_dir)
    if newest is not None and NAIVE_LORA_ROUTE not in newest.parts:
        return AdapterSelection((newest,), {"*": f"dir:{newest.name}"})
    raise NoAdapters(f"{NO_ADAPTERS} (no active adapter in the store, none in {settings.adapters_dir})")


def naive_lora(settings: Settings, store: Store | None) -> AdapterSelection:
    """The naive baseline adapter: the newest registered ``naive-lora`` version, or one in adapters_dir."""
    if store is not None:
        for version in store.adapters(route=NAIVE_LORA_ROUTE):
            if version.status != "rejected" and _is_adapter_dir(Path(version.path)):
                return AdapterSelection((Path(version.path),), {NAIVE_LORA_ROUTE: version.version})
    newest = _newest_in(settings.adapters_dir, NAIVE_LORA_ROUTE)
    if newest is not None:
        return AdapterSelection((newest,), {NAIVE_LORA_ROUTE: f"dir:{newest.name}"})
    raise NoAdapters(
        f"{NO_ADAPTERS} (no adapter registered under route {NAIVE_LORA_ROUTE!r}, "
        f"none in {settings.adapters_dir / NAIVE_LORA_ROUTE})"
    )


def load_adapter_set(model: Any, path: Path) -> Any:
    """A :class:`ShareAdapters` hooked into ``model`` from a Share folder or a peft LoRA folder."""
    from learner.share import ShareAdapters, ShareConfig, ShareError, lora_factors_from_peft

    try:
        if (path / SHARE_METADATA).is_file():
            return ShareAdapters.load(model, path)
        factors = lora_factors_from_peft(path)
        config = ShareConfig(variance_threshold=1.0, k_max=max(32, *(b.shape[1] for b, _ in factors.values())))
        return ShareAdapters.from_lora(model, {NAIVE_LORA_ROUTE: factors}, config)
    except (ShareError, OSError, ValueError) as exc:
        raise NoAdapters(f"cannot load adapters from {path}: {exc}") from exc


class RoutedAdapters:
    """Each route's own adapter, across one or more Share sets (others stay inactive)."""

    def __init__(self, sets: Sequence[Any]) -> None:
        self.sets = list(sets)

    @property
    def routes(self) -> list[str]:
        return [r for s in self.sets for r in s.routes]

    def activate(self, route: str | None) -> str | None:
        """Activate ``route`` in the newest set that has it (later sets supersede earlier ones)."""
        owner = next((s for s in reversed(self.sets) if route is not None and route in s.routes), None)
        version = None
        for adapter_set in self.sets:
            got = adapter_set.activate(route if adapter_set is owner else None)
            version = version or got
        return version


class AveragedAdapters:
    """Every call uses the mean of all routes' delta-W products (``ShareAdapters.averaged_delta``)."""

    def __init__(self, adapter_set: Any) -> None:
        self.set = adapter_set
        self.routes = [r for r in adapter_set.routes if r != NAIVE_LORA_ROUTE]
        if not self.routes:
            raise NoAdapters(f"{NO_ADAPTERS} (the adapter set has no routes to average)")

    def activate(self, route: str | None) -> str | None:
        if route is None:
            self.set.activate(None)
            return None
        return str(self.set.averaged_delta(self.routes))


class SingleAdapter:
    """One adapter for every route (the naive LoRA baseline)."""

    def __init__(self, adapter_set: Any, route: str) -> None:
        self.set = adapter_set
        self.route = route

    def activate(self, route: str | None) -> str | None:
        return self.set.activate(None if route is None else self.route)
