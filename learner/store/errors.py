"""What can go wrong with the feedback store, as :class:`~learner.errors.SleepyCoderError` subclasses.

Why a module of their own: every other store module raises them, and callers (the CLI, the
LSP server) catch them without needing anything else from the store.
"""

from __future__ import annotations

from pathlib import Path

from learner.errors import SleepyCoderError


class StoreError(SleepyCoderError):
    """A store operation failed in a way the user or caller can act on."""


class StoreCorrupt(StoreError):
    """The file is not a readable SQLite store. It has not been touched."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"The feedback store {path} cannot be read ({reason}). It was left untouched. "
            f"To start a fresh store, move it aside with `sleepy-coder data quarantine` (it renames it to "
            f"{path.name}.corrupt-<timestamp> next to it; nothing is deleted)."
        )


class StoreTooNew(StoreError):
    """The file's schema was written by a newer sleepy-coder."""


class StoreBusy(StoreError):
    """Another process held the write lock for longer than the busy timeout."""


class NotFound(StoreError, LookupError):
    """A referenced record (fix, diagnostic, run, adapter version) does not exist."""


class InvalidRecord(StoreError, ValueError):
    """The values given cannot be stored (unknown kind or status, missing required text)."""
