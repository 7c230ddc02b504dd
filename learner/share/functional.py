"""The tensor mathematics of Share, free of models, hooks and files.

Conventions (PyTorch ``nn.Linear``: weight is ``(out, in)``, ``y = x W^T``):

* A LoRA route on one module is a pair ``(B, A)`` with ``B: (out, r)``, ``A: (r, in)`` and
  ``delta_W = s * B A``. Everywhere in this package the LoRA scaling ``s`` is already folded
  into ``B`` (``B <- s B``), so ``delta_W = B A``.
* A basis is a ``(d, k)`` matrix with orthonormal columns. The B-side basis ``beta`` is
  ``(out, k_B)``, the A-side basis ``alpha`` is ``(in, k_A)``.
* A Share route on one module is ``(eps_B, eps_A)``, both ``(k, p)``, and
  ``delta_W = (beta eps_B)(alpha eps_A)^T``; the forward pass adds
  ``((x alpha eps_A)(beta eps_B)^T) * scale`` and never builds ``delta_W``.

How the mean enters (the one subtle point). Phase 1 centres the stacked factor columns before
the SVD so that the principal directions describe how routes *differ*; the mean column ``m``
is what they share. The update form has no offset term, so a factor is represented as
``F ~= basis @ (basis^T F)`` (the orthogonal projection, which is the least-squares best
``basis @ eps``), i.e. coefficients are taken from the *uncentred* factor. For that projection
to keep the shared part, :func:`fit_subspace` appends ``m``'s component outside the principal
span as one more orthonormal column. Then the span contains ``m + span(PCs)``, and the exact
reconstruction formula is::

    eps = basis^T F,   F_hat = basis @ eps = P F   (P = basis basis^T),
    F_hat = F   iff every column of F lies in span(basis),
    ||F - F_hat||_F <= ||F - (m 1^T + U_k U_k^T (F - m 1^T))||_F   (mean direction kept),

the right-hand side being the classic centred-PCA reconstruction: it lies in the same span
and ``P F`` is the closest point of that span, so the offset-free form loses nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from learner.share.config import ShareError

#: Relative size below which a singular value / a residual direction counts as zero.
_RTOL = 1e-6


@dataclass(frozen=True)
class SubspaceFit:
    """The result of fitting one orthonormal basis to a stack of factor columns."""

    #: ``(d, k)`` orthonormal columns: principal components first, then the mean direction.
    basis: Tensor
    #: ``(d,)`` mean column of the stack (stored as metadata; the projection does not need it).
    mean: Tensor
    #: Principal components kept (chosen by explained variance, floor and cap).
    n_components: int
    #: Whether the last column is the mean direction.
    has_mean_direction: bool
    #: Fraction of the centred stack's variance explained by the kept components.
    explained_variance: float

    @property
    def k(self) -> int:
        return int(self.basis.shape[1])


def explained_variance_rank(singular_values: Tensor, threshold: float, k_min: int, k_max: int) -> int:
    """Smallest k whose top-k components explain at least ``threshold`` of the variance.

    Variance of component i is ``s_i^2``. The threshold is inclusive (a cumulative ratio equal
    to it, up to float rounding, is enough). The result is clamped to ``[k_min, k_max]`` and
    then to the number of components that exist. A stack with no variance at all gets k_min.
    """
    available = int(singular_values.numel())
    if available == 0:
        return 0
    energy = singular_values.double().pow(2)
    total = float(energy.sum())
    if total <= 0.0:
        k = k_min
    else:
        ratios = torch.cumsum(energy, 0) / total
        reached = torch.nonzero(ratios >= threshold - 1e-9)
        k = int(reached[0]) + 1 if reached.numel() else available
    return max(0, min(max(k, k_min), k_max, available))


def _orthogonal_residual(basis: Tensor, vector: Tensor) -> Tensor:
    """``vector`` minus its projection on ``basis``, re-orthogonalised once for stability."""
    residual = vector - basis @ (basis.T @ vector)
    return residual - basis @ (basis.T @ residual)


def fit_subspace(
    columns: Tensor, *, threshold: float, k_min: int, k_max: int, include_mean: bool = True
) -> SubspaceFit:
    """Phase 1 for one side of one module: centre, SVD, keep k components (+ mean direction).

    ``columns`` is ``(d, n)``: the factor columns of every route side by side (B factors as they
    are, A factors transposed). The mean column is subtracted before the SVD; the first ``k``
    left singular vectors are kept with k from :func:`explained_variance_rank`; if
    ``include_mean`` and the mean has a part outside those k directions, that part (normalised)
    becomes one more column, so that the offset-free projection reproduces the shared component.
    """
    if columns.ndim != 2 or columns.shape[1] == 0:
        raise ShareError(f"cannot fit a basis to a stack of shape {tuple(columns.shape)}")
    stack = columns.detach().to(torch.float64)
    mean = stack.mean(dim=1)
    centred = stack - mean[:, None]
    u, s, _ = torch.linalg.svd(centred, full_matrices=False)
    k = explained_variance_rank(s, threshold, k_min, k_max)
    energy = s.pow(2)
    total = float(energy.sum())
    explained = float(energy[:k].sum()) / total if total > 0 else 1.0
    basis = u[:, :k]
    has_mean = False
    if include_mean and k < stack.shape[0]:
        residual = _orthogonal_residual(basis, mean)
        norm = float(residual.norm())
        if norm > _RTOL * max(float(mean.norm()), float(stack.abs().max()), 1e-30):
            basis = torch.cat([basis, (residual / norm)[:, None]], dim=1)
            has_mean = True
    return SubspaceFit(
        basis=basis.to(torch.float32).contiguous(),
        mean=mean.to(torch.float32),
        n_components=k,
        has_mean_direction=has_mean,
        explained_variance=explained,
    )


def project(basis: Tensor, factor: Tensor) -> Tensor:
    """Coefficients of ``factor`` (d x p) in an orthonormal ``basis`` (d x k): ``basis^T factor``.

    This is the least-squares best ``eps`` for ``factor ~= basis @ eps``; it reproduces any
    factor whose columns lie in the span exactly (see the module docstring for the mean).
    """
    if basis.shape[0] != factor.shape[0]:
        raise ShareError(f"factor has {factor.shape[0]} rows but the basis has {basis.shape[0]}")
    return basis.T.to(factor.dtype) @ factor


def lowrank_frobenius_sq(up: Tensor, down: Tensor) -> Tensor:
    """``||up @ down^T||_F^2`` without forming the product: ``sum((up^T up) * (down^T down))``.

    ``up`` is ``(out, q)``, ``down`` is ``(in, q)``; the cost is ``O((out + in) q^2)``.
    """
    return ((up.T @ up) * (down.T @ down)).sum()


def lowrank_difference_norm(up1: Tensor, down1: Tensor, up2: Tensor, down2: Tensor) -> float:
    """``||up1 down1^T - up2 down2^T||_F`` exactly, via one stacked low-rank product."""
    up = torch.cat([up1.double(), -up2.double()], dim=1)
    down = torch.cat([down1.double(), down2.double()], dim=1)
    return float(lowrank_frobenius_sq(up, down).clamp_min(0.0).sqrt())


def truncate_rank(eps_b: Tensor, eps_a: Tensor, rank: int) -> tuple[Tensor, Tensor]:
    """Best rank-``rank`` coefficients for the update ``eps_b eps_a^T`` (Eckart-Young).

    Because both bases are orthonormal, ``||beta X alpha^T||_F = ||X||_F``, so truncating the
    small ``(k_B x k_A)`` core is also optimal for the full delta-W. Used to bring a rank-r LoRA
    route down to a Share route of rank p. Singular values are split evenly between the sides.
    """
    core = eps_b.double() @ eps_a.double().T
    u, s, vh = torch.linalg.svd(core, full_matrices=False)
    rank = min(rank, int(s.numel()))
    root = s[:rank].sqrt()
    return (u[:, :rank] * root).to(eps_b.dtype), (vh[:rank].T * root).to(eps_a.dtype)


def core_average(pairs: Sequence[tuple[Tensor, Tensor]]) -> Tensor:
    """``mean_t eps_B,t eps_A,t^T``: the (k_B x k_A) core of the average of the routes' delta-W.

    The average of the updates is ``beta (mean_t eps_B,t eps_A,t^T) alpha^T`` because the
    basis is shared; this is *not* the product of averaged coefficients
    ``(mean eps_B)(mean eps_A)^T``, which adds cross terms between different routes.
    """
    if not pairs:
        raise ShareError("cannot average zero routes")
    total = torch.zeros(pairs[0][0].shape[0], pairs[0][1].shape[0], dtype=torch.float64)
    for eps_b, eps_a in pairs:
        total += eps_b.detach().double() @ eps_a.detach().double().T
    return (total / len(pairs)).to(pairs[0][0].dtype)


def factored_update(x: Tensor, down: Tensor, up: Tensor, scale: float = 1.0) -> Tensor:
    """What a route adds to a Linear's output: ``((x @ down) @ up^T) * scale``.

    ``down`` is ``(in, q)`` (``alpha eps_A``), ``up`` is ``(out, q)`` (``beta eps_B``); the
    cost is ``O(tokens * (in + out) * q)`` and ``delta_W`` is never formed.
    """
    return ((x @ down) @ up.T) * scale if scale != 1.0 else (x @ down) @ up.T
