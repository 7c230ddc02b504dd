"""The progress callback shape shared by long steps (model preparation, generation, training)."""

from __future__ import annotations

from collections.abc import Callable

#: ``progress(message, fraction)``; fraction is None when the total is unknown.
Progress = Callable[[str, float | None], None]


def no_progress(message: str, fraction: float | None) -> None:
    """The default sink: report nothing."""
