"""The fix-source protocol, its context, and the registry."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from learner.config import Settings
from learner.fix.verifier import Verifier
from learner.progress import Progress, no_progress
from learner.records import Route, RustDiagnostic, VerifiedFix


@dataclass
class FixContext:
    """Everything a source needs to propose fixes for one error."""

    settings: Settings
    diagnostic: RustDiagnostic
    route: Route
    verifier: Verifier
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: Progress = no_progress
    #: Why a source produced nothing the user should know about ("model unavailable: ...").
    notes: list[str] = field(default_factory=list)


class FixSource(Protocol):
    name: str

    def propose(self, ctx: FixContext) -> Iterator[VerifiedFix]:
        """Candidates with the verifier's verdict, best first; stop early when ``ctx.cancel`` is set."""
        ...


FixSourceFactory = Callable[..., FixSource]
_REGISTRY: dict[str, FixSourceFactory] = {}


def register_fix_source(name: str, factory: FixSourceFactory) -> None:
    _REGISTRY[name] = factory


def get_fix_source(name: str) -> FixSourceFactory:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown fix source {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def fix_source_names() -> list[str]:
    return list(_REGISTRY)
