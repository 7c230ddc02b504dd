"""The Share adapter set attached to one model: a frozen basis per module, small coefficients per route.

Lifecycle (arXiv 2602.06043, as implemented here; the maths is in :mod:`.functional`):

* Phase 0 - the trainer trains one ordinary peft LoRA per route; :func:`lora_factors_from_peft`
  reads its ``(B, A)`` factors with the LoRA scaling folded into ``B``.
* Phase 1 - :meth:`ShareAdapters.from_lora` stacks every route's B columns (out x r*T) and A
  rows transposed (in x r*T) per module, centres them, keeps the principal directions that
  explain ``variance_threshold`` of the variance (plus the mean direction) as ``beta``/``alpha``,
  and projects each route into them: ``eps_B = beta^T B``, ``eps_A = alpha^T A^T``.
* Phase 2 - :meth:`ShareAdapters.new_route` creates trainable ``eps_B, eps_A`` (k x p) for a
  new route; the basis and the base model stay frozen; the trainer optimises
  :meth:`ShareAdapters.route_parameters` with any torch optimiser while the route is active.
* Phase 3 - :meth:`ShareAdapters.fold` rebuilds every route's factors from its coefficients,
  adds the new route, re-stacks, re-fits the basis, re-projects all routes, measures how much
  each earlier route's delta-W moved, and refuses (:class:`MergeRefusedError`, nothing
  changed) a fold that would move one by more than ``max_forgetting``.

Inference: :meth:`ShareAdapters.activate` points the forward hooks at one route's tensors (no
averaging, no weight edits); ``None``, ``"fallback"`` and unknown routes give the base model
exactly. Storage is one safetensors file plus JSON metadata, written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from learner.files import write_atomic
from learner.records import FALLBACK_ROUTE
from learner.share import functional as F
from learner.share.config import (
    MergeRefusedError,
    ShareConfig,
    ShareError,
    ShareFormatError,
)
from learner.share.layer import FactoredTerm, attach_hooks, linear_shape

#: Per module name: ``(B, A)`` with ``B: (out, r)`` already multiplied by the LoRA scaling and
#: ``A: (r, in)``, so that ``delta_W = B @ A``.
LoraFactors = dict[str, tuple[Tensor, Tensor]]

FORMAT_NAME = "sleepy-coder-share"
FORMAT_VERSION = 1
TENSORS_FILE = "share.safetensors"
METADATA_FILE = "share.json"
_PEFT_PREFIX = "base_model.model."


# --------------------------------------------------------------------------- Phase 0: reading LoRA


def lora_factors_from_peft(
    source: nn.Module | Mapping[str, Tensor] | str | os.PathLike[str],
    *,
    adapter_name: str = "default",
    scaling: float | None = None,
) -> LoraFactors:
    """Read the per-module LoRA factors of a peft adapter, scaling folded into B.

    ``source`` is a peft model (its ``LoraLayer`` modules carry the scaling), a saved adapter
    directory (``adapter_config.json`` + ``adapter_model.safetensors``; the scaling comes from
    ``lora_alpha``/``r``/``use_rslora``), or a state dict (keys from ``model.state_dict()`` or
    ``get_peft_model_state_dict``; pass ``scaling=lora_alpha/r`` since a state dict does not
    record it). Module names are those of the *base* model (``model.layers.0.self_attn.q_proj``),
    so the result can be attached to an unwrapped model. Tensors are float32 CPU copies.
    """
    if isinstance(source, nn.Module):
        return _factors_from_module(source, adapter_name)
    if isinstance(source, str | os.PathLike):
        return _factors_from_directory(Path(source))
    if scaling is None:
        raise ShareError("a LoRA state dict does not record its scaling: pass scaling=lora_alpha/r")
    return _factors_from_state_dict(source, adapter_name, lambda _name: scaling)


def _base_name(name: str) -> str:
    return name[len(_PEFT_PREFIX) :] if name.startswith(_PEFT_PREFIX) else name


def _factors_from_module(model: nn.Module, adapter_name: str) -> LoraFactors:
    factors: LoraFactors = {}
    for name, module in model.named_modules():
        lora_a = getattr(module, "lora_A", None)
        lora_b = getattr(module, "lora_B", None)
        if not isinstance(lora_a, nn.ModuleDict) or not isinstance(lora_b, nn.ModuleDict):
            continue
        if adapter_name not in lora_a:
            continue
        magnitude = getattr(module, "lora_magnitude_vector", None)
        if isinstance(magnitude, nn.ModuleDict) and adapter_name in magnitude:
            raise ShareError(f"{name}: DoRA adapters are not plain LoRA and cannot be read into Share")
        scale = float(getattr(module, "scaling")[adapter_name])  # noqa: B009 - peft attribute, untyped
        weight_b = _weight(lora_b[adapter_name]).detach().to("cpu", torch.float32)
        weight_a = _weight(lora_a[adapter_name]).detach().to("cpu", torch.float32)
        factors[_base_name(name)] = (weight_b * scale, weight_a.clone())
    if not factors:
        raise ShareError(f"no LoRA adapter named {adapter_name!r} found in the model")
    return factors


def _weight(module: nn.Module) -> Tensor:
    weight = getattr(module, "weight", None)
    if not isinstance(weight, Tensor):
        raise ShareError(f"{type(module).__name__} has no weight tensor: not a plain LoRA layer")
    return weight


def _factors_from_directory(directory: Path) -> LoraFactors:
    config_path = directory / "adapter_config.json"
    weights_path = directory / "adapter_model.safetensors"
    if not config_path.is_file() or not weights_path.is_file():
        raise ShareFormatError(
            f"{directory} is not a saved peft LoRA adapter (need adapter_config.json and adapter_model.safetensors)"
        )
    try:
        config = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ShareFormatError(f"cannot read {config_path}: {exc}") from exc
    if config.get("peft_type", "LORA") != "LORA" or config.get("use_dora"):
        raise ShareFormatError(f"{directory} holds a {config.get('peft_type')} adapter, not plain LoRA")
    if config.get("rank_pattern") or config.get("alpha_pattern") or config.get("fan_in_fan_out"):
        raise ShareFormatError(f"{directory}: rank/alpha patterns and fan_in_fan_out are not supported")
    r = int(config["r"])
    alpha = float(config["lora_alpha"])
    scaling = alpha / (r**0.5) if config.get("use_rslora") else alpha / r
    from safetensors.torch import load_file

    return _factors_from_state_dict(load_file(str(weights_path)), None, lambda _name: scaling)


def _factors_from_state_dict(state: Mapping[str, Tensor], adapter_name: str | None, scaling_of: Any) -> LoraFactors:
    halves: dict[str, dict[str, Tensor]] = {}
    for key, tensor in state.items():
        if "lora_magnitude_vector" in key:
            raise ShareFormatError(f"{key}: DoRA adapters are not plain LoRA and cannot be read into Share")
        if not key.endswith(".weight"):
            continue
        parts = key[: -len(".weight")].split(".")
        # ...q_proj.lora_A.weight (saved form) or ...q_proj.lora_A.<adapter>.weight (live form)
        if len(parts) >= 2 and parts[-1] in ("lora_A", "lora_B"):
            module, side = ".".join(parts[:-1]), parts[-1]
        elif len(parts) >= 3 and parts[-2] in ("lora_A", "lora_B"):
            if adapter_name is not None and parts[-1] != adapter_name:
                continue
            module, side = ".".join(parts[:-2]), parts[-2]
        else:
            continue
        halves.setdefault(_base_name(module), {})[side] = tensor.detach().to("cpu", torch.float32)
    factors: LoraFactors = {}
    for module, sides in sorted(halves.items()):
        if set(sides) != {"lora_A", "lora_B"}:
            raise ShareFormatError(f"{module}: LoRA state has only {sorted(sides)}")
        factors[module] = (sides["lora_B"] * float(scaling_of(module)), sides["lora_A"].clone())
    if not factors:
        raise ShareFormatError("no lora_A/lora_B weights found in the state dict")
    return factors


# --------------------------------------------------------------------------- state


@dataclass
class ModuleBasis:
    """The frozen shared subspace of one adapted Linear (out x in)."""

    #: (out, k_B) orthonormal: B-side principal directions (+ mean direction).
    beta: Tensor
    #: (in, k_A) orthonormal: A-side principal directions (+ mean direction).
    alpha: Tensor
    mean_b: Tensor
    mean_a: Tensor
    components_b: int
    components_a: int
    explained_b: float
    explained_a: float

    @property
    def k_b(self) -> int:
        return int(self.beta.shape[1])

    @property
    def k_a(self) -> int:
        return int(self.alpha.shape[1])

    @classmethod
    def from_fits(cls, fit_b: F.SubspaceFit, fit_a: F.SubspaceFit, device: torch.device) -> ModuleBasis:
        return cls(
            beta=fit_b.basis.to(device),
            alpha=fit_a.basis.to(device),
            mean_b=fit_b.mean.to(device),
            mean_a=fit_a.mean.to(device),
            components_b=fit_b.n_components,
            components_a=fit_a.n_components,
            explained_b=fit_b.explained_variance,
            explained_a=fit_a.explained_variance,
        )


@dataclass
class RouteState:
    """One route: its coefficients per module and how far it has drifted from its original update."""

    #: module -> (eps_B (k_B x p), eps_A (k_A x p)).
    coefficients: dict[str, tuple[nn.Parameter, nn.Parameter]]
    #: "lora" (projected from a Phase-0 adapter) or "trained" (Phase-2 coefficients).
    origin: str
    #: module -> ||delta_W_original||_F^2; None until the route's update is first pinned
    #: (projection, or the first fold after training).
    reference_sq: dict[str, float] | None = None
    #: module -> upper bound of ||delta_W_original - delta_W_now||_F (exact at projection, grown
    #: by the triangle inequality at each fold).
    error: dict[str, float] | None = None
    terms: dict[str, FactoredTerm] = field(default_factory=dict, repr=False)

    @property
    def rank(self) -> int:
        ranks = {int(b.shape[1]) for b, _ in self.coefficients.values()}
        return ranks.pop() if len(ranks) == 1 else -1

    def relative_error(self) -> float:
        """Route-level relative Frobenius error of its delta-W (all modules together); 0 if unpinned."""
        if self.reference_sq is None or self.error is None:
            return 0.0
        return _relative(sum(e * e for e in self.error.values()), sum(self.reference_sq.values()))


@dataclass(frozen=True)
class FoldReport:
    """What a successful Phase-3 fold did."""

    route: str
    #: module -> (k_B, k_A) after the fold.
    widths: dict[str, tuple[int, int]]
    #: earlier route -> relative change of its delta-W caused by this fold.
    drift: dict[str, float]
    #: route -> cumulative relative error bound after the fold (the folded route included).
    errors: dict[str, float]


def _relative(diff_sq: float, ref_sq: float) -> float:
    if ref_sq <= 0.0:
        return 0.0 if diff_sq <= 1e-24 else float("inf")
    return (max(diff_sq, 0.0) / ref_sq) ** 0.5


# --------------------------------------------------------------------------- the adapter set


class ShareAdapters:
    """A Share adapter set hooked into ``model``; implements the runtime's ``activate`` protocol."""

    def __init__(
        self,
        model: nn.Module,
        config: ShareConfig,
        bases: Mapping[str, ModuleBasis],
        *,
        basis_id: str | None = None,
    ) -> None:
        if not bases:
            raise ShareError("a Share adapter set needs at least one adapted module")
        self.model = model
        self.config = config
        self.device = _device_of(model)
        self.shapes = {name: linear_shape(model, name) for name in bases}
        for name, basis in bases.items():
            out_features, in_features = self.shapes[name]
            if basis.beta.shape[0] != out_features or basis.alpha.shape[0] != in_features:
                raise ShareFormatError(
                    f"{name}: basis is for a ({basis.beta.shape[0]} x {basis.alpha.shape[0]}) Linear, the "
                    f"model's is ({out_features} x {in_features})"
                )
        self.bases: dict[str, ModuleBasis] = {n: _basis_to(b, self.device) for n, b in bases.items()}
        self.basis_id = basis_id or uuid.uuid4().hex
        self._routes: dict[str, RouteState] = {}
        self._active: str | None = None
        self._versions: dict[str, tuple[tuple[int, ...], str]] = {}
        self._hooks, self._handles = attach_hooks(model, list(self.bases), config.scale)

    # ----- construction (Phase 1)

    @classmethod
    def from_lora(
        cls, model: nn.Module, routes: Mapping[str, LoraFactors], config: ShareConfig | None = None
    ) -> ShareAdapters:
        """Phase 1: fit one basis per module to all routes' LoRA factors, then project each route."""
        config = config or ShareConfig()
        if not routes:
            raise ShareError("Phase 1 needs the LoRA factors of at least one route")
        modules = _common_modules(routes)
        bases: dict[str, ModuleBasis] = {}
        for module in modules:
            b_cols = torch.cat([routes[r][module][0].float() for r in routes], dim=1)
            a_cols = torch.cat([routes[r][module][1].float().T for r in routes], dim=1)
            bases[module] = ModuleBasis.from_fits(
                _fit(b_cols, config, fold=False), _fit(a_cols, config, fold=False), torch.device("cpu")
            )
        adapters = cls(model, config, bases)
        for name, factors in routes.items():
            adapters.project_route(name, factors)
        return adapters

    def project_route(self, route: str, factors: LoraFactors, *, rank: int | None = None) -> str:
        """Represent a LoRA-trained route in the current basis, without changing the basis.

        ``eps_B = beta^T B``, ``eps_A = alpha^T A^T`` (exact for in-span factors); with ``rank``
        the update is then truncated to that rank optimally (:func:`.functional.truncate_rank`).
        The route's reconstruction error against the LoRA delta-W is recorded. Also the way to
        warm-start a Phase-2 route from an existing LoRA. Returns the route's version.
        """
        self._check_new_name(route, replace=True)
        missing = set(self.bases) - set(factors)
        if missing:
            raise ShareError(f"route {route!r} has no LoRA factors for {sorted(missing)[:3]}...")
        coefficients: dict[str, tuple[nn.Parameter, nn.Parameter]] = {}
        reference_sq: dict[str, float] = {}
        error: dict[str, float] = {}
        for module, basis in self.bases.items():
            b, a = (t.detach().to(self.device, torch.float32) for t in factors[module])
            out_features, in_features = self.shapes[module]
            if b.shape[0] != out_features or a.shape[1] != in_features or b.shape[1] != a.shape[0]:
                raise ShareFormatError(
                    f"{module}: LoRA factors {tuple(b.shape)}, {tuple(a.shape)} do not fit "
                    f"a ({out_features} x {in_features}) Linear"
                )
            eps_b, eps_a = F.project(basis.beta, b), F.project(basis.alpha, a.T)
            if rank is not None:
                eps_b, eps_a = F.truncate_rank(eps_b, eps_a, rank)
            coefficients[module] = (_param(eps_b), _param(eps_a))
            reference_sq[module] = float(F.lowrank_frobenius_sq(b.double(), a.T.double()))
            error[module] = F.lowrank_difference_norm(b, a.T, basis.beta @ eps_b, basis.alpha @ eps_a)
        self._store(route, RouteState(coefficients, "lora", reference_sq, error))
        return self.route_version(route)

    # ----- Phase 2

    def new_route(
        self, route: str, *, p: int | None = None, init_from: str | None = None, replace: bool = False
    ) -> list[nn.Parameter]:
        """Create trainable coefficients for ``route`` and return them (basis stays frozen).

        Initialisation is non-zero on both sides so both get gradients from the first step:
        ``eps_A ~ N(0, init_a_std^2)`` (default ``1/sqrt(k_A)``) and ``eps_B ~ N(0,
        init_b_std^2)`` (default 1e-3), which makes the initial update tiny. With ``init_from``
        the coefficients start as a copy of that route's (a warm start). Seeded by
        ``config.seed`` and the route name, so a retrain starts from the same point.
        """
        self._check_new_name(route, replace=replace)
        coefficients: dict[str, tuple[nn.Parameter, nn.Parameter]] = {}
        if init_from is not None:
            source = self._state(init_from)
            for module, (eps_b, eps_a) in source.coefficients.items():
                coefficients[module] = (_param(eps_b.detach().clone()), _param(eps_a.detach().clone()))
        else:
            rank = p or self.config.p
            generator = torch.Generator().manual_seed(self.config.seed ^ zlib.crc32(route.encode()))
            for module, basis in self.bases.items():
                std_a = self.config.init_a_std or basis.k_a**-0.5
                init_a = torch.randn(basis.k_a, rank, generator=generator) * std_a
                init_b = torch.randn(basis.k_b, rank, generator=generator) * self.config.init_b_std
                coefficients[module] = (_param(init_b.to(self.device)), _param(init_a.to(self.device)))
        self._store(route, RouteState(coefficients, "trained"))
        return self.route_parameters(route)

    def route_parameters(self, route: str) -> list[nn.Parameter]:
        """The route's coefficients as trainable parameters (requires_grad switched on)."""
        params: list[nn.Parameter] = []
        for eps_b, eps_a in self._state(route).coefficients.values():
            params.extend((eps_b, eps_a))
        for param in params:
            param.requires_grad_(True)
        return params

    # ----- inference

    @property
    def routes(self) -> list[str]:
        return list(self._routes)

    def rank_of(self, route: str) -> int:
        """``route``'s coefficient rank p (its rank as an exported LoRA); -1 if it differs per module."""
        return self._state(route).rank

    @property
    def active_route(self) -> str | None:
        return self._active

    def activate(self, route: str | None) -> str | None:
        """Apply ``route``'s update from now on; return its version, or None for the base model.

        ``None``, ``"fallback"`` and routes this set does not know deactivate every hook, so the
        model computes exactly its base logits. Switching only repoints one small object per
        module; nothing is copied or materialised.
        """
        state = self._routes.get(route) if route is not None else None
        if state is None:
            for hook in self._hooks.values():
                hook.term = None
            self._active = None
            return None
        for module, hook in self._hooks.items():
            hook.term = state.terms[module]
        self._active = route
        return self.route_version(route)  # type: ignore[arg-type]

    def averaged_delta(self, routes: Sequence[str]) -> str:
        """Activate the *average of the routes' updates* (the evaluation's "averaged" strategy).

        Applies ``mean_t (beta eps_B,t)(alpha eps_A,t)^T`` as ``beta C alpha^T`` with the small
        core ``C = mean_t eps_B,t eps_A,t^T``, i.e. the mean of the delta-W products, never the
        product of averaged factors. Stays active until the next :meth:`activate`. Returns a
        label naming the routes and their versions.
        """
        if not routes:
            raise ShareError("averaged_delta needs at least one route")
        states = [self._state(r) for r in routes]
        for module, hook in self._hooks.items():
            basis = self.bases[module]
            core = F.core_average([s.coefficients[module] for s in states])
            identity = torch.eye(basis.k_a, device=self.device)
            hook.term = FactoredTerm(basis.beta, core, basis.alpha, identity)
        self._active = None
        return "average(" + "+".join(self.route_version(r) for r in routes) + ")"

    def route_version(self, route: str) -> str:
        """``share:<route>@<digest>``: changes whenever the basis or the route's coefficients do."""
        state = self._state(route)
        tensors = [t for pair in state.coefficients.values() for t in pair]
        key = (id(state), *(t._version for t in tensors))
        cached = self._versions.get(route)
        if cached is not None and cached[0] == key:
            return cached[1]
        digest = hashlib.sha1(self.basis_id.encode())
        for tensor in tensors:
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        version = f"share:{route}@{digest.hexdigest()[:12]}"
        self._versions[route] = (key, version)
        return version

    def detach(self) -> None:
        """Remove every hook: the model is the base model again, for good."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for hook in self._hooks.values():
            hook.term = None
        self._active = None

    # ----- accounting

    def trainable_parameters(self, route: str) -> int:
        """Number of coefficients of one route (what a Phase-2 trainer optimises and what is stored)."""
        return sum(b.numel() + a.numel() for b, a in self._state(route).coefficients.values())

    def lora_equivalent_parameters(self, r: int = 8) -> int:
        """Parameters of a rank-``r`` LoRA on the same modules: ``r * (in + out)`` each."""
        return sum(r * (out_features + in_features) for out_features, in_features in self.shapes.values())

    def reconstruction_error(self, route: str) -> float:
        """Relative Frobenius error bound of the route's delta-W against its original update."""
        return self._state(route).relative_error()

    # ----- Phase 3

    def fold(self, route: str, lora: LoraFactors | None = None) -> FoldReport:
        """Fold ``route`` into the basis (Phase 3) and re-express every route in the new basis.

        The new route is either a Phase-2 route already in this set (``lora=None``) or Phase-0
        LoRA factors (which may bring directions the basis lacks). Every route's factors are
        rebuilt (``beta eps_B``, ``alpha eps_A``), stacked with the new route's, the basis is
        refit with ``fold_variance_threshold`` (same k_min/k_max and mean direction), and all
        routes are re-projected. An earlier route's *drift* is ``||D_before - D_after||_F /
        ||D_before||_F`` over all its modules; if any exceeds ``max_forgetting`` (or its
        cumulative error bound would rise above ``max_route_error``) nothing changes and
        :class:`MergeRefusedError` is raised.
        """
        if lora is None:
            self._state(route)
        else:
            self._check_new_name(route, replace=True)
        earlier = [r for r in self._routes if r != route]
        new_bases: dict[str, ModuleBasis] = {}
        new_coefficients: dict[str, dict[str, tuple[Tensor, Tensor]]] = {r: {} for r in [*earlier, route]}
        before_sq: dict[str, dict[str, float]] = {r: {} for r in new_coefficients}
        drift_abs: dict[str, dict[str, float]] = {r: {} for r in new_coefficients}
        for module in self.bases:
            factors = {r: self._factors(r, module) for r in earlier}
            if lora is None:
                factors[route] = self._factors(route, module)
            else:
                b, a = (t.detach().to(self.device, torch.float32) for t in lora[module])
                factors[route] = (b, a.T)
            fit_b = _fit(torch.cat([f[0] for f in factors.values()], dim=1), self.config, fold=True)
            fit_a = _fit(torch.cat([f[1] for f in factors.values()], dim=1), self.config, fold=True)
            new_basis = ModuleBasis.from_fits(fit_b, fit_a, self.device)
            new_bases[module] = new_basis
            for name, (up, down) in factors.items():
                eps_b, eps_a = F.project(new_basis.beta, up), F.project(new_basis.alpha, down)
                new_coefficients[name][module] = (eps_b, eps_a)
                before_sq[name][module] = float(F.lowrank_frobenius_sq(up.double(), down.double()))
                drift_abs[name][module] = F.lowrank_difference_norm(
                    up, down, new_basis.beta @ eps_b, new_basis.alpha @ eps_a
                )
        drift = {
            r: _relative(sum(v * v for v in drift_abs[r].values()), sum(before_sq[r].values()))
            for r in new_coefficients
        }
        new_states: dict[str, RouteState] = {}
        for name in new_coefficients:
            old = self._routes.get(name) if name != route or lora is None else None
            reference = old.reference_sq if old is not None and old.reference_sq is not None else before_sq[name]
            prior = old.error if old is not None and old.error is not None else dict.fromkeys(reference, 0.0)
            if lora is not None and name == route:
                # The LoRA delta-W is the reference; the fold's projection error is its whole error.
                prior = dict.fromkeys(reference, 0.0)
            error = {m: prior[m] + drift_abs[name][m] for m in reference}
            origin = "lora" if (lora is not None and name == route) else (old.origin if old else "trained")
            coefficients = {m: (_param(b), _param(a)) for m, (b, a) in new_coefficients[name].items()}
            new_states[name] = RouteState(coefficients, origin, dict(reference), error)
        errors = {name: state.relative_error() for name, state in new_states.items()}
        self._refuse_if_damaging(route, earlier, drift, errors)
        self.bases = new_bases
        self.basis_id = uuid.uuid4().hex
        active = self._active
        self._routes = {}
        self._versions.clear()
        for name, state in new_states.items():
            self._store(name, state)
        self.activate(active)
        widths = {m: (b.k_b, b.k_a) for m, b in new_bases.items()}
        return FoldReport(route, widths, {r: drift[r] for r in earlier}, errors)

    def _refuse_if_damaging(
        self, route: str, earlier: list[str], drift: dict[str, float], errors: dict[str, float]
    ) -> None:
        limit = self.config.max_route_error
        damaged = {
            r: drift[r]
            for r in earlier
            if drift[r] > self.config.max_forgetting
            or (limit is not None and errors[r] > limit and errors[r] > self.reconstruction_error(r) + 1e-9)
        }
        if damaged:
            worst = max(damaged, key=lambda r: damaged[r])
            raise MergeRefusedError(
                f"folding route {route!r} would change earlier route {worst!r} by {damaged[worst]:.1%} "
                f"(limit {self.config.max_forgetting:.1%}); the basis is unchanged",
                drift={r: drift[r] for r in earlier},
                errors={r: errors[r] for r in earlier},
            )

    # ----- persistence

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``share.safetensors`` and ``share.json`` into ``directory``, each atomically.

        The JSON records the SHA-256 of the tensor file, so a reader never pairs metadata with
        tensors from another save (tensors are written first, metadata last).
        """
        from safetensors.torch import save

        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        modules = list(self.bases)
        tensors: dict[str, Tensor] = {}
        for i, module in enumerate(modules):
            basis = self.bases[module]
            for key, value in (
                ("beta", basis.beta),
                ("alpha", basis.alpha),
                ("mean_b", basis.mean_b),
                ("mean_a", basis.mean_a),
            ):
                tensors[f"modules/{i}/{key}"] = value.detach().cpu().contiguous().clone()
        for j, state in enumerate(self._routes.values()):
            for i, module in enumerate(modules):
                eps_b, eps_a = state.coefficients[module]
                tensors[f"routes/{j}/{i}/eps_b"] = eps_b.detach().cpu().contiguous().clone()
                tensors[f"routes/{j}/{i}/eps_a"] = eps_a.detach().cpu().contiguous().clone()
        blob = save(tensors)
        write_atomic(target / TENSORS_FILE, blob)
        write_atomic(
            target / METADATA_FILE, json.dumps(self.metadata(hashlib.sha256(blob).hexdigest()), indent=2).encode()
        )
        return target

    def metadata(self, tensors_sha256: str | None = None) -> dict[str, Any]:
        """Everything about the set except tensors: versions, widths, explained variance, errors."""
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "basis_id": self.basis_id,
            "base_model": self.config.base_model,
            "target_modules": list(self.config.target_modules),
            "config": self.config.to_dict(),
            "tensors_sha256": tensors_sha256,
            "modules": [
                {
                    "name": module,
                    "out_features": self.shapes[module][0],
                    "in_features": self.shapes[module][1],
                    "k_b": basis.k_b,
                    "k_a": basis.k_a,
                    "components_b": basis.components_b,
                    "components_a": basis.components_a,
                    "explained_variance_b": basis.explained_b,
                    "explained_variance_a": basis.explained_a,
                }
                for module, basis in self.bases.items()
            ],
            "routes": [
                {
                    "name": name,
                    "version": self.route_version(name),
                    "origin": state.origin,
                    "p": state.rank,
                    "parameters": self.trainable_parameters(name),
                    "reconstruction_error": state.relative_error(),
                    "reference_sq": state.reference_sq,
                    "error": state.error,
                }
                for name, state in self._routes.items()
            ],
        }

    @classmethod
    def load(cls, model: nn.Module, directory: str | os.PathLike[str]) -> ShareAdapters:
        """Read a set written by :meth:`save` and hook it into ``model`` (which must have the same shapes)."""
        from safetensors.torch import load

        source = Path(directory)
        try:
            meta = json.loads((source / METADATA_FILE).read_text())
            blob = (source / TENSORS_FILE).read_bytes()
        except (OSError, json.JSONDecodeError) as exc:
            raise ShareFormatError(f"cannot read a Share adapter set from {source}: {exc}") from exc
        if meta.get("format") != FORMAT_NAME or meta.get("format_version") != FORMAT_VERSION:
            raise ShareFormatError(
                f"{source} holds format {meta.get('format')!r} v{meta.get('format_version')}, "
                f"expected {FORMAT_NAME!r} v{FORMAT_VERSION}"
            )
        if meta.get("tensors_sha256") != hashlib.sha256(blob).hexdigest():
            raise ShareFormatError(f"{source}: {TENSORS_FILE} does not match {METADATA_FILE} (interrupted save?)")
        try:
            tensors = load(blob)
            modules = [entry["name"] for entry in meta["modules"]]
            bases = {
                module: ModuleBasis(
                    beta=tensors[f"modules/{i}/beta"],
                    alpha=tensors[f"modules/{i}/alpha"],
                    mean_b=tensors[f"modules/{i}/mean_b"],
                    mean_a=tensors[f"modules/{i}/mean_a"],
                    components_b=int(entry["components_b"]),
                    components_a=int(entry["components_a"]),
                    explained_b=float(entry["explained_variance_b"]),
                    explained_a=float(entry["explained_variance_a"]),
                )
                for i, (module, entry) in enumerate(zip(modules, meta["modules"], strict=True))
            }
            adapters = cls(model, ShareConfig.from_dict(meta["config"]), bases, basis_id=meta["basis_id"])
            for j, entry in enumerate(meta["routes"]):
                coefficients = {
                    module: (
                        _param(tensors[f"routes/{j}/{i}/eps_b"].to(adapters.device)),
                        _param(tensors[f"routes/{j}/{i}/eps_a"].to(adapters.device)),
                    )
                    for i, module in enumerate(modules)
                }
                adapters._store(
                    entry["name"], RouteState(coefficients, entry["origin"], entry["reference_sq"], entry["error"])
                )
        except (KeyError, TypeError, ValueError) as exc:
            raise ShareFormatError(f"{source}: inconsistent Share adapter set ({exc!r})") from exc
        return adapters

    def export_route_as_peft(self, route: str, out_dir: str | os.PathLike[str]) -> Path:
        """Write ``route`` as a standard peft LoRA adapter of rank p (loadable by ``PeftModel.from_pretrained``).

        ``lora_B = scale * beta eps_B`` (out x p), ``lora_A = (alpha eps_A)^T`` (p x in) and
        ``lora_alpha = r = p`` so peft's scaling is 1 and its delta-W equals the hooks' exactly.
        """
        from peft import LoraConfig
        from safetensors.torch import save

        state = self._state(route)
        rank = state.rank
        if rank < 1:
            raise ShareError(f"route {route!r} has different ranks per module; peft needs one rank")
        tensors: dict[str, Tensor] = {}
        for module, _ in state.coefficients.items():
            up, down = self._factors(route, module)
            tensors[f"{_PEFT_PREFIX}{module}.lora_A.weight"] = down.T.detach().cpu().contiguous().clone()
            tensors[f"{_PEFT_PREFIX}{module}.lora_B.weight"] = (up * self.config.scale).detach().cpu().contiguous()
        peft_config = LoraConfig(
            r=rank,
            lora_alpha=rank,
            lora_dropout=0.0,
            bias="none",
            target_modules=sorted(state.coefficients),
            base_model_name_or_path=self.config.base_model or None,
        )
        config_dict = {k: sorted(v) if isinstance(v, set) else v for k, v in peft_config.to_dict().items()}
        target = Path(out_dir)
        target.mkdir(parents=True, exist_ok=True)
        write_atomic(target / "adapter_model.safetensors", save(tensors, metadata={"format": "pt"}))
        write_atomic(target / "adapter_config.json", json.dumps(config_dict, indent=2, sort_keys=True).encode())
        return target

    # ----- internals

    def _state(self, route: str) -> RouteState:
        try:
            return self._routes[route]
        except KeyError:
            raise ShareError(f"no Share route named {route!r} (known: {', '.join(self._routes) or 'none'})") from None

    def _check_new_name(self, route: str, *, replace: bool) -> None:
        if not route or route == FALLBACK_ROUTE:
            raise ShareError(f"{route!r} cannot be a Share route: it always means the base model")
        if route in self._routes and not replace:
            raise ShareError(f"route {route!r} already exists (pass replace=True to start it over)")

    def _factors(self, route: str, module: str) -> tuple[Tensor, Tensor]:
        """``(beta eps_B, alpha eps_A)``: the route's full-space (out x p, in x p) factors, detached."""
        eps_b, eps_a = self._state(route).coefficients[module]
        basis = self.bases[module]
        return basis.beta @ eps_b.detach(), basis.alpha @ eps_a.detach()

    def _store(self, route: str, state: RouteState) -> None:
        for module, basis in self.bases.items():
            eps_b, eps_a = state.coefficients[module]
            if eps_b.shape[0] != basis.k_b or eps_a.shape[0] != basis.k_a or eps_b.shape[1] != eps_a.shape[1]:
                raise ShareFormatError(
                    f"route {route!r}, {module}: coefficients {tuple(eps_b.shape)}, "
                    f"{tuple(eps_a.shape)} do not fit basis widths ({basis.k_b}, {basis.k_a})"
                )
            state.terms[module] = FactoredTerm(basis.beta, eps_b, basis.alpha, eps_a)
        self._routes[route] = state
        self._versions.pop(route, None)
        if self._active == route:
            self.activate(route)


def _fit(columns: Tensor, config: ShareConfig, *, fold: bool) -> F.SubspaceFit:
    threshold = config.fold_variance_threshold if fold else config.variance_threshold
    return F.fit_subspace(
        columns, threshold=threshold, k_min=config.k_min, k_max=config.k_max, include_mean=config.include_mean_direction
    )


def _common_modules(routes: Mapping[str, LoraFactors]) -> list[str]:
    names = iter(routes.items())
    first_route, first = next(names)
    modules = sorted(first)
    for route, factors in names:
        if sorted(factors) != modules:
            raise ShareError(
                f"routes {first_route!r} and {route!r} adapt different modules; Phase 1 needs "
                "the same target modules for every route"
            )
    return modules


def _param(tensor: Tensor) -> nn.Parameter:
    return nn.Parameter(tensor.detach().to(torch.float32).contiguous(), requires_grad=False)


def _basis_to(basis: ModuleBasis, device: torch.device) -> ModuleBasis:
    return ModuleBasis(
        basis.beta.to(device, torch.float32),
        basis.alpha.to(device, torch.float32),
        basis.mean_b.to(device),
        basis.mean_a.to(device),
        basis.components_b,
        basis.components_a,
        basis.explained_b,
        basis.explained_a,
    )


def _device_of(model: nn.Module) -> torch.device:
    """Where coefficients live: the model's first parameter's device (CPU for meta-device shells)."""
    for param in model.parameters():
        return torch.device("cpu") if param.device.type == "meta" else param.device
    return torch.device("cpu")
