"""Forward hooks that add a route's update to a Linear's output in factored form.

One :class:`ShareHook` is registered per adapted module for the lifetime of the adapter set;
switching routes only repoints its :class:`FactoredTerm` (a few references), which is why a
switch costs microseconds. With no term the hook returns ``None``, which PyTorch treats as
"output unchanged", so the base route gives bit-for-bit the base model's logits. Base weights
are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from learner.share.config import ShareError
from learner.share.functional import factored_update


@dataclass(eq=False)
class FactoredTerm:
    """An update ``delta_W = (left @ left_coef)(right @ right_coef)^T`` for one module.

    For a route: ``left = beta``, ``left_coef = eps_B``, ``right = alpha``, ``right_coef = eps_A``.
    For the averaged strategy: ``left_coef`` is the (k_B x k_A) averaged core and ``right_coef``
    the identity. The products ``up = left @ left_coef`` (out x q) and ``down = right @
    right_coef`` (in x q) are recomputed on every forward while autograd needs them (training),
    and cached otherwise, keyed on the coefficients' in-place version counters so an optimiser
    step invalidates the cache.
    """

    left: Tensor
    left_coef: Tensor
    right: Tensor
    right_coef: Tensor
    _cache_key: tuple[Any, ...] | None = field(default=None, repr=False)
    _cache: tuple[Tensor, Tensor] | None = field(default=None, repr=False)

    def factors(self, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
        """``(down, up)`` in the activation's dtype and device."""
        needs_grad = torch.is_grad_enabled() and (self.left_coef.requires_grad or self.right_coef.requires_grad)
        if needs_grad:
            return self._compute(dtype, device)
        # Inference-mode tensors may not be reused where autograd records, so the mode is part of the key.
        key = (self.left_coef._version, self.right_coef._version, dtype, device, torch.is_inference_mode_enabled())
        if self._cache is None or self._cache_key != key:
            with torch.no_grad():
                self._cache = self._compute(dtype, device)
            self._cache_key = key
        return self._cache

    def _compute(self, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
        down = (self.right @ self.right_coef).to(device=device, dtype=dtype)
        up = (self.left @ self.left_coef).to(device=device, dtype=dtype)
        return down, up


class ShareHook:
    """The forward hook of one adapted Linear: adds ``scale * (x down) up^T`` when a term is set."""

    __slots__ = ("scale", "term")

    def __init__(self, scale: float = 1.0) -> None:
        self.term: FactoredTerm | None = None
        self.scale = scale

    def __call__(self, module: nn.Module, args: tuple[Any, ...], output: Tensor) -> Tensor | None:
        term = self.term
        if term is None:
            return None
        x = args[0]
        down, up = term.factors(x.dtype, x.device)
        return output + factored_update(x, down, up, self.scale)


def attach_hooks(
    model: nn.Module, module_names: list[str], scale: float
) -> tuple[dict[str, ShareHook], list[RemovableHandle]]:
    """Register one :class:`ShareHook` on each named Linear; raise :class:`ShareError` if one is missing."""
    hooks: dict[str, ShareHook] = {}
    handles: list[RemovableHandle] = []
    try:
        for name in module_names:
            module = _linear(model, name)
            hook = ShareHook(scale)
            handles.append(module.register_forward_hook(hook))
            hooks[name] = hook
    except ShareError:
        for handle in handles:
            handle.remove()
        raise
    return hooks, handles


def linear_shape(model: nn.Module, name: str) -> tuple[int, int]:
    """``(out_features, in_features)`` of the named Linear."""
    module = _linear(model, name)
    return int(module.out_features), int(module.in_features)


def _linear(model: nn.Module, name: str) -> nn.Linear:
    try:
        module = model.get_submodule(name)
    except AttributeError as exc:
        raise ShareError(f"the model has no module named {name!r}") from exc
    if not isinstance(module, nn.Linear):
        raise ShareError(f"module {name!r} is a {type(module).__name__}, Share adapts only nn.Linear")
    return module
