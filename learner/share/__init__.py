"""Share: one shared LoRA subspace per module, tiny coefficients per route (arXiv 2602.06043).

``config`` (knobs and typed errors) imports without torch; the torch-backed names
(:class:`ShareAdapters`, :func:`lora_factors_from_peft`, ...) load on first access so that
importing this package from the CLI or the server stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from learner.share.config import (
    MergeRefusedError,
    ShareConfig,
    ShareConfigError,
    ShareError,
    ShareFormatError,
)

if TYPE_CHECKING:
    from learner.share.model import FoldReport, LoraFactors, ModuleBasis, ShareAdapters, lora_factors_from_peft

_LAZY = {
    "FoldReport": "learner.share.model",
    "LoraFactors": "learner.share.model",
    "ModuleBasis": "learner.share.model",
    "ShareAdapters": "learner.share.model",
    "lora_factors_from_peft": "learner.share.model",
}

__all__ = [
    "FoldReport",
    "LoraFactors",
    "MergeRefusedError",
    "ModuleBasis",
    "ShareAdapters",
    "ShareConfig",
    "ShareConfigError",
    "ShareError",
    "ShareFormatError",
    "lora_factors_from_peft",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'learner.share' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
