"""Errors a user can act on. Each carries a one-line message the CLI and server show as is."""

from __future__ import annotations


class SleepyCoderError(Exception):
    """Base class: an expected failure with a human message (no traceback shown)."""


class NotACrate(SleepyCoderError):
    """The path is neither inside a cargo crate nor a single Rust file."""


class ToolchainMissing(SleepyCoderError):
    """cargo or rustc is not installed or not on PATH."""


class CheckFailed(SleepyCoderError):
    """cargo could not even start compiling (bad manifest, dependencies that cannot be fetched, ...)."""


class SourceUnreadable(SleepyCoderError):
    """A source file is not valid UTF-8 or cannot be read."""
