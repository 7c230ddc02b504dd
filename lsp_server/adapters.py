"""The hot-swap seam: notice when the learner promotes adapters, and attach them to the model.

The learner runs in another process; the only thing the two share is the store (and the
adapter files it names). The server polls ``store.active_versions()`` and, when the active set
changes, reloads the adapters into the loaded model between generations (the caller runs
:func:`attach` on the model thread) and tells the editor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from learner.model_handle import RuntimeHandle
from learner.store import AdapterVersion

log = logging.getLogger(__name__)


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


class AdapterSlot:
    """The adapter set attached to the model (at most one; a newer one replaces it)."""

    def __init__(self) -> None:
        self.attached: Any = None
        self.versions: dict[str, str] = {}

    def attach(self, runtime: RuntimeHandle, versions: dict[str, AdapterVersion]) -> str | None:
        """Load ``versions`` into the loaded model (never loads the model itself); returns a problem
        sentence if they could not be loaded, after which the base model keeps serving."""
        model = runtime.loaded
        wanted = active_map(versions)
        if model is None or wanted == self.versions:
            return None
        try:
            self._detach(model)
            if versions:
                from learner.share import ShareAdapters

                newest = max(versions.values(), key=lambda v: v.created_at)
                adapters = ShareAdapters.load(model.model, newest.path)
                model.attach_adapters(adapters)
                self.attached = adapters
            self.versions = wanted
        except Exception as exc:  # a bad adapter file must never stop the server
            log.exception("could not load adapters %s", wanted)
            self.versions = {}
            return f"could not load the new adapters ({type(exc).__name__}: {exc}); using the base model"
        return None

    def _detach(self, model: Any) -> None:
        model.attach_adapters(None)
        if self.attached is not None and hasattr(self.attached, "detach"):
            self.attached.detach()
        self.attached = None

    def reset(self) -> None:
        """The model was replaced (settings changed): nothing is attached to the new one."""
        self.attached = None
        self.versions = {}
