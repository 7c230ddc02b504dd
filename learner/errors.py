"""The product's one exception tree: every error it raises derives from :class:`SleepyCoderError`.

Each carries a one-line message the CLI and the server show as is. Layers catch the tree (an
expected failure: no crate, no cargo, a model that will not load) and let anything else, a
bug, travel up. Only three kinds of place catch ``Exception`` itself: the edge of third-party
code that raises arbitrary types (transformers loading a folder, converting the GGUF), which
turns it into one of ours; and the two process boundaries that must outlive a bug, the
server's background check task and the learner daemon's cycle, which log the traceback and
report the failure. Layer-specific errors live beside their layer (``StoreError``,
``ModelUnavailable``, ``ShareError``, ...) and derive from here. ``tests/test_errors.py``
walks every module to keep it so.
"""

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
