"""The hot-swap seam: notice when the learner promotes adapters, and attach them to the model.

The learner runs in another process; the only thing the two share is the store (and the
adapter files it names). The server polls ``store.active_versions()`` and, when the active set
changes, reloads the adapters into the loaded model between generations (the caller runs
:func:`attach_active`, a wrapper of :meth:`learner.model.hotswap.HotSwap.load_active`, on the model
thread) and tells the editor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from learner.config import Settings
from learner.model.handle import RuntimeHandle
from learner.model.hotswap import HotSwap, HotSwapError
from learner.store import AdapterVersion, Store


@dataclass(frozen=True)
class AdapterChange:
    """Routes whose active adapter changed (new, replaced or removed), and the newest version."""

    routes: list[str]
    version: str
    message: str

    def as_params(self) -> dict[str, Any]:
        return {"routes": self.routes, "version": self.version, "message": self.message}


def active_map(versions: dict[str, AdapterVersion]) -> dict[str, str]:
    return {route: v.version for route, v in versions.items()}


def change_between(before: dict[str, str], after: dict[str, str]) -> AdapterChange | None:
    routes = sorted(r for r in set(before) | set(after) if before.get(r) != after.get(r))
    if not routes:
        return None
    added = [r for r in routes if r in after]
    version = max((after[r] for r in added), default="")
    if added:
        message = f"learned from your fixes: new adapters for {', '.join(added)}"
    else:
        message = f"adapters for {', '.join(routes)} were rolled back; the base model answers there"
    return AdapterChange(routes, version, message)


def attach_active(settings: Settings, store: Store | None, runtime: RuntimeHandle, swap: HotSwap) -> str | None:
    """Attach the store's active adapters to the loaded model (never loads the model itself).

    Returns a problem sentence when they could not be loaded; the previous adapters (or the
    base model) keep serving. Call it on the model thread so it never runs mid-generation.
    """
    model = runtime.loaded
    if model is None or store is None or runtime.remote:  # a server holds its own adapters (adapters publish)
        return None
    try:
        swap.load_active(settings, store, model)
    except HotSwapError as exc:  # any failure to read or load them; the previous adapters keep serving
        return str(exc)
    return None
