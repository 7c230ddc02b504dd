"""Fix sources, registered by name and tried in order: rustc's suggestions, then the model.

Adding a source is one new module plus one :func:`register_fix_source` call, the way peft
registers tuner methods. Each source yields verified candidates (the verifier is handed in
through :class:`~learner.fix.sources.base.FixContext`), because the model source feeds the
compiler's verdict back into its next attempt.
"""

from __future__ import annotations

from learner.fix.sources.base import FixContext, FixSource, fix_source_names, get_fix_source, register_fix_source
from learner.fix.sources.model import ModelFixSource
from learner.fix.sources.rustc import RustcSuggestionSource

register_fix_source("rustc", RustcSuggestionSource)
register_fix_source("model", ModelFixSource)

DEFAULT_ORDER = ("rustc", "model")

__all__ = [
    "DEFAULT_ORDER",
    "FixContext",
    "FixSource",
    "ModelFixSource",
    "RustcSuggestionSource",
    "fix_source_names",
    "get_fix_source",
    "register_fix_source",
]
