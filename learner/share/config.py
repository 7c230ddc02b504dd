"""Knobs of the Share adapter set, and the typed errors it raises.

This module imports nothing heavy on purpose: the CLI and the server can read a
:class:`ShareConfig` and catch a :class:`ShareError` without paying for ``import torch``.

Parameter budget on Qwen2.5-(Coder-)0.5B shapes (hidden 896, kv dim 128, 24 layers, adapters on
``q_proj, k_proj, v_proj, o_proj`` = 96 modules). A rank-8 LoRA route costs
``24 * 8 * (2*896 + 2*(896+128) + 2*896) = 1,081,344`` parameters. A Share route costs
``p * (k_B + k_A)`` per module, where ``k_B``/``k_A`` are the widths of the two frozen bases
(principal components plus at most one mean direction, so at most ``k_max + 1`` each):

====  =====  =====================  =============  ===========
p     k      Share params / route   LoRA r=8       ratio
====  =====  =====================  =============  ===========
4     17     96*4*34  =  13,056     1,081,344      82.8x
4     33     96*4*66  =  25,344     1,081,344      42.7x  (cap)
8     33     96*8*66  =  50,688     1,081,344      21.3x
====  =====  =====================  =============  ===========

The defaults (``p=4``, ``k_max=32``) therefore meet the ">= 20x fewer parameters than LoRA"
target for every basis width the cap allows, with 2x headroom; ``p=8`` would meet it only just,
at the cap. ``tests/test_share_model.py`` measures the ratio on a model with these shapes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from learner.errors import SleepyCoderError

#: The route name that always means "the base model, no adapter" (it can never be trained).


class ShareError(SleepyCoderError):
    """Base of every error the Share adapter set raises; the message is meant for a human."""


class ShareConfigError(ShareError):
    """A knob has a value the method cannot work with."""


class ShareFormatError(ShareError):
    """A saved adapter set or a LoRA adapter is unreadable, inconsistent, or does not fit the model."""


class MergeRefusedError(ShareError):
    """A Phase-3 fold would have damaged earlier routes; the basis and all routes are unchanged.

    ``drift`` maps each earlier route to the relative Frobenius change of its delta-W that the
    fold would have caused; ``errors`` to its cumulative reconstruction error bound after it.
    """

    def __init__(self, message: str, drift: dict[str, float], errors: dict[str, float]) -> None:
        super().__init__(message)
        self.drift = drift
        self.errors = errors


@dataclass(frozen=True)
class ShareConfig:
    """Every knob of Share (arXiv 2602.06043) as this project implements it.

    Phase 0 (``lora_*``, ``target_modules``) is plain peft LoRA, one adapter per route; the
    trainer builds its ``LoraConfig`` from these. Phase 1 (``variance_threshold``, ``k_min``,
    ``k_max``, ``include_mean_direction``) turns the routes' LoRA factors into one frozen basis
    per module. Phase 2 (``p``, ``init_*``, ``scale``) trains small per-route coefficients in
    that basis. Phase 3 (``fold_*``, ``max_forgetting``, ``max_route_error``) folds a route back
    into the basis and refuses folds that would change what earlier routes do.
    """

    #: Suffixes of the Linear modules that carry adapters (Phase 0 LoRA and Share alike).
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    #: Phase-0 LoRA rank r.
    lora_r: int = 8
    #: Phase-0 LoRA alpha. Its scaling ``lora_alpha / lora_r`` is folded into B when factors are
    #: read, so Share never needs it again.
    lora_alpha: int = 16
    #: Fraction of the centred stack's variance the principal components must explain (Phase 1).
    variance_threshold: float = 0.6
    #: Floor on the number of principal components per basis, whatever the variance says.
    k_min: int = 4
    #: Cap on the number of principal components per basis (the mean direction may add one).
    k_max: int = 32
    #: Append the stack's mean column (its part outside the principal span) as one more basis
    #: direction. The update ``(beta eps_B)(alpha eps_A)^T`` has no offset term, so without this
    #: the component every route shares, which centring removes before the SVD, could not be
    #: represented at all. See :func:`learner.share.functional.fit_subspace`.
    include_mean_direction: bool = True
    #: Rank of a new route's update: eps_B and eps_A are (k x p). Small on purpose (see the table).
    p: int = 4
    #: Multiplier of every route's update in the forward pass (LoRA's alpha/r, here 1: the LoRA
    #: scaling is already folded into the factors).
    scale: float = 1.0
    #: Std of a new route's eps_A; ``None`` means ``1/sqrt(k_A)`` so each column of alpha eps_A
    #: has about unit norm, like a LoRA A row.
    init_a_std: float | None = None
    #: Std of a new route's eps_B: small but non-zero, so the initial update is tiny while both
    #: coefficient matrices receive a gradient from the first step (both zero would never move).
    init_b_std: float = 1e-3
    #: Variance threshold used when a fold refits the basis. Higher than Phase 1's: the stack is
    #: made of routes that must keep working, not of raw adapters being compressed.
    fold_variance_threshold: float = 0.999
    #: A fold is refused when it would change an earlier route's delta-W (of all its modules
    #: together) by more than this relative Frobenius norm.
    max_forgetting: float = 0.05
    #: Optionally also refuse when an earlier route's cumulative error bound (vs its original
    #: delta-W) would rise above this; ``None`` disables the absolute check.
    max_route_error: float | None = None
    #: The base model these adapters belong to (saved in metadata and in PEFT exports).
    base_model: str = ""
    #: Seed of new routes' random initialisation (mixed with the route name).
    seed: int = 0
    #: Free-form extra metadata saved with the adapter set.
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ShareConfigError` naming the first knob that is out of range."""
        if not self.target_modules:
            raise ShareConfigError("target_modules is empty: Share needs at least one Linear module")
        if self.lora_r < 1 or self.p < 1:
            raise ShareConfigError(f"ranks must be >= 1 (lora_r={self.lora_r}, p={self.p})")
        for name in ("variance_threshold", "fold_variance_threshold"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ShareConfigError(f"{name} must be in (0, 1], got {value}")
        if not 1 <= self.k_min <= self.k_max:
            raise ShareConfigError(f"need 1 <= k_min <= k_max, got k_min={self.k_min}, k_max={self.k_max}")
        if self.max_forgetting < 0:
            raise ShareConfigError(f"max_forgetting must be >= 0, got {self.max_forgetting}")
        if self.max_route_error is not None and self.max_route_error < 0:
            raise ShareConfigError(f"max_route_error must be >= 0, got {self.max_route_error}")
        if self.init_b_std <= 0 or (self.init_a_std is not None and self.init_a_std <= 0):
            raise ShareConfigError("init_a_std and init_b_std must be > 0: a zero factor never learns")

    @property
    def lora_scaling(self) -> float:
        """LoRA's ``alpha / r`` for the Phase-0 adapters."""
        return self.lora_alpha / self.lora_r

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data

    @classmethod
    def parse_overrides(cls, pairs: list[str]) -> dict[str, Any]:
        """``["variance_threshold=0.9", "p=8"]`` -> typed knob values, checked like a real config.

        Values take the type of the knob's default (``None`` defaults read as floats); an unknown
        knob, a malformed pair or an out-of-range value raises :class:`ShareConfigError`.
        """
        reference = cls()
        defaults = {f.name: getattr(reference, f.name) for f in dataclasses.fields(cls) if f.name != "extra"}
        values: dict[str, Any] = {}
        for pair in pairs:
            key, sep, raw = pair.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in defaults:
                raise ShareConfigError(f"{pair!r}: expected KNOB=VALUE with KNOB one of {', '.join(defaults)}")
            default = defaults[key]
            try:
                if isinstance(default, bool):
                    if raw.lower() not in ("true", "false", "1", "0"):
                        raise ValueError(raw)
                    values[key] = raw.lower() in ("true", "1")
                elif isinstance(default, tuple):
                    values[key] = tuple(part.strip() for part in raw.split(",") if part.strip())
                elif isinstance(default, int):
                    values[key] = int(raw)
                elif isinstance(default, str):
                    values[key] = raw
                else:
                    values[key] = None if raw.lower() == "none" else float(raw)
            except ValueError:
                raise ShareConfigError(f"{pair!r}: {raw!r} is not a valid {key}") from None
        cls(**values)  # validate the combination
        return values

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShareConfig:
        """Inverse of :meth:`to_dict`; unknown keys (from newer versions) are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "target_modules" in values:
            values["target_modules"] = tuple(values["target_modules"])
        return cls(**values)
