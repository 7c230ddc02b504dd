"""Hot swap: attach the store's active adapters to a running :class:`~learner.model.runtime.ModelRuntime`.

The LSP server calls :meth:`HotSwap.load_active` between requests (at start and whenever the
learner may have promoted a version); the learner's gate uses :func:`active_selection` to
evaluate "what the user has now". Only versions the registry marks *active* are ever
attached: unlike :func:`learner.model.adapters.route_adapters` there is no fallback to the
newest folder on disk, because that could serve a candidate the gate rejected.

The swap is all-or-nothing: the new sets are loaded (hooked into the model, inactive) first;
if any fails to load they are unhooked again and the previous adapters stay attached and in
use; only then are the runtime pointed at the new ones and the old sets unhooked.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.model.adapters import AdapterSelection, RoutedAdapters, load_adapter_set, route_adapters
from learner.records import NAIVE_LORA_ROUTE

if TYPE_CHECKING:
    from learner.model.runtime import ModelRuntime
    from learner.store import Store


class HotSwapError(SleepyCoderError):
    """The active adapters could not be attached; the previous ones are still in use."""


@dataclass
class _Attached:
    runtime: weakref.ReferenceType[Any]
    key: tuple[tuple[str, str], ...]
    sets: list[Any]
    label: str | None


def active_selection(settings: Settings, store: Store) -> AdapterSelection | None:
    """The registry's active per-route adapters, or None when every route uses the base model."""
    if not any(route != NAIVE_LORA_ROUTE for route in store.active_versions(settings.model)):
        return None
    return route_adapters(settings, store)


def version_label(selection: AdapterSelection) -> str:
    """One string naming the attached versions (the Share set's version when there is one set)."""
    return ",".join(sorted(set(selection.versions.values())))


class HotSwap:
    """What one process attached to its runtime, and the lock that keeps two swaps from interleaving.

    One per server (or per test); it remembers the runtime it last attached to, so a reloaded
    runtime starts from the base model instead of inheriting another model's bookkeeping.
    """

    def __init__(self) -> None:
        self._attached: _Attached | None = None
        self._guard = threading.Lock()

    def _current(self, runtime: ModelRuntime) -> _Attached | None:
        current = self._attached
        return current if current is not None and current.runtime() is runtime else None

    def attached_version(self, runtime: ModelRuntime) -> str | None:
        """What :meth:`load_active` last attached to ``runtime`` (None: the base model)."""
        current = self._current(runtime)
        return current.label if current else None

    def load_active(self, settings: Settings, store: Store, runtime: ModelRuntime) -> str | None:
        """Attach the active adapters to ``runtime``; return the attached version label (None: base model).

        Cheap when nothing changed (the registry is read, nothing is loaded). On any failure the
        previous adapters stay attached and :class:`HotSwapError` says why.
        """
        with self._guard:
            try:
                selection = active_selection(settings, store)
            except SleepyCoderError as exc:
                raise HotSwapError(f"cannot read the active adapters ({exc}); keeping the current ones") from exc
            key = tuple(sorted(selection.versions.items())) if selection else ()
            current = self._current(runtime)
            if current is not None and current.key == key:
                return current.label
            if current is None and not key:
                return None
            new_sets: list[Any] = []
            try:
                for path in selection.paths if selection else ():
                    new_sets.append(load_adapter_set(runtime.model, Path(path)))
            except BaseException as exc:
                for adapter_set in new_sets:
                    adapter_set.detach()
                keeping = current.label if current else "the base model"
                raise HotSwapError(f"cannot load the active adapters ({exc}); keeping {keeping}") from exc
            runtime.attach_adapters(RoutedAdapters(new_sets) if new_sets else None)
            for old in current.sets if current else ():
                old.detach()
            label = version_label(selection) if selection else None
            self._attached = _Attached(weakref.ref(runtime), key, new_sets, label)
            return label
