"""The pure tensor maths of Share on small random matrices (no model)."""

from __future__ import annotations

import pytest
import torch

from learner.share import functional as F
from learner.share.config import ShareConfig, ShareConfigError, ShareError


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _stack_with_spectrum(d: int, n: int, singular_values: list[float], mean_scale: float) -> torch.Tensor:
    """Columns ``m 1^T + U diag(s) V^T`` whose *centred* singular values are exactly ``s``.

    The rows of V^T are orthonormal and orthogonal to the all-ones vector, so centring (which
    subtracts the mean column) leaves the ``U diag(s) V^T`` part untouched.
    """
    g = _gen(1)
    u, _ = torch.linalg.qr(torch.randn(d, len(singular_values), generator=g, dtype=torch.float64))
    q, _ = torch.linalg.qr(
        torch.cat(
            [
                torch.ones(n, 1, dtype=torch.float64),
                torch.randn(n, len(singular_values), generator=g, dtype=torch.float64),
            ],
            1,
        )
    )
    vt = q[:, 1:].T
    mean = torch.randn(d, generator=g, dtype=torch.float64) * mean_scale
    return (mean[:, None] + u @ torch.diag(torch.tensor(singular_values, dtype=torch.float64)) @ vt).float()


def test_rank_is_the_smallest_reaching_the_threshold_inclusive() -> None:
    s = torch.tensor([5.0, 1.0, 1.0, 1.0, 1.0, 1.0]).sqrt()  # variances 5,1,1,1,1,1 of 10
    assert F.explained_variance_rank(s, 0.6, 1, 32) == 2  # 0.5 + 0.1 == 0.6 exactly
    assert F.explained_variance_rank(s, 0.61, 1, 32) == 3
    assert F.explained_variance_rank(s, 0.5, 1, 32) == 1
    assert F.explained_variance_rank(s, 0.6, 4, 32) == 4  # floor
    assert F.explained_variance_rank(s, 1.0, 1, 3) == 3  # cap
    assert F.explained_variance_rank(s, 0.6, 10, 32) == 6  # never more than exist


def test_fitted_basis_is_orthonormal_and_stops_exactly_at_the_threshold() -> None:
    stack = _stack_with_spectrum(40, 16, [5.0**0.5, 1.0, 1.0, 1.0, 1.0, 1.0], mean_scale=2.0)
    fit = F.fit_subspace(stack, threshold=0.6, k_min=1, k_max=32, include_mean=True)
    assert fit.n_components == 2
    assert fit.explained_variance == pytest.approx(0.6, abs=1e-6)
    assert fit.has_mean_direction and fit.k == 3
    torch.testing.assert_close(fit.basis.T @ fit.basis, torch.eye(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(fit.mean, stack.mean(dim=1), atol=1e-5, rtol=1e-5)


def test_projection_reproduces_in_span_factors_exactly() -> None:
    stack = torch.randn(64, 24, generator=_gen())
    basis = F.fit_subspace(stack, threshold=0.6, k_min=4, k_max=32).basis
    factor = basis @ torch.randn(basis.shape[1], 8, generator=_gen(2))
    torch.testing.assert_close(basis @ F.project(basis, factor), factor, atol=1e-5, rtol=1e-5)


def test_mean_direction_keeps_the_component_every_route_shares() -> None:
    # Routes that share a large common column (e.g. LoRA A factors from the same seed).
    stack = _stack_with_spectrum(48, 16, [3.0, 2.0, 1.0], mean_scale=10.0)
    with_mean = F.fit_subspace(stack, threshold=1.0, k_min=1, k_max=32, include_mean=True)
    without = F.fit_subspace(stack, threshold=1.0, k_min=1, k_max=32, include_mean=False)
    torch.testing.assert_close(with_mean.basis @ F.project(with_mean.basis, stack), stack, atol=1e-4, rtol=1e-4)
    lost = (without.basis @ F.project(without.basis, stack) - stack).norm() / stack.norm()
    assert lost > 0.5  # centring threw the shared part away: the offset-free form cannot recover it


def test_projection_is_never_worse_than_the_centred_pca_reconstruction() -> None:
    stack = torch.randn(32, 20, generator=_gen(3)) + 3.0 * torch.randn(32, 1, generator=_gen(4))
    fit = F.fit_subspace(stack, threshold=0.6, k_min=2, k_max=32, include_mean=True)
    pcs = fit.basis[:, : fit.n_components]
    centred = stack - fit.mean[:, None]
    pca = fit.mean[:, None] + pcs @ (pcs.T @ centred)
    ours = fit.basis @ F.project(fit.basis, stack)
    assert (ours - stack).norm() <= (pca - stack).norm() + 1e-5


def test_lowrank_norms_equal_the_dense_ones() -> None:
    up1, down1 = torch.randn(30, 4, generator=_gen(5)), torch.randn(20, 4, generator=_gen(6))
    up2, down2 = torch.randn(30, 3, generator=_gen(7)), torch.randn(20, 3, generator=_gen(8))
    dense1, dense2 = up1 @ down1.T, up2 @ down2.T
    assert float(F.lowrank_frobenius_sq(up1, down1)) == pytest.approx(float(dense1.norm() ** 2), rel=1e-5)
    assert F.lowrank_difference_norm(up1, down1, up2, down2) == pytest.approx(float((dense1 - dense2).norm()), rel=1e-5)


def test_truncation_keeps_the_best_rank_p_update() -> None:
    eps_b, eps_a = torch.randn(12, 8, generator=_gen(9)), torch.randn(10, 8, generator=_gen(10))
    core = eps_b @ eps_a.T
    s = torch.linalg.svdvals(core)
    t_b, t_a = F.truncate_rank(eps_b, eps_a, 3)
    assert t_b.shape == (12, 3) and t_a.shape == (10, 3)
    assert float((core - t_b @ t_a.T).norm()) == pytest.approx(float(s[3:].norm()), rel=1e-4)


def test_average_of_products_is_not_the_product_of_averages() -> None:
    pairs = [(torch.randn(6, 2, generator=_gen(11 + i)), torch.randn(5, 2, generator=_gen(21 + i))) for i in range(3)]
    dense_mean = sum(b @ a.T for b, a in pairs) / 3
    torch.testing.assert_close(F.core_average(pairs), dense_mean, atol=1e-5, rtol=1e-5)
    mean_b = sum(b for b, _ in pairs) / 3
    mean_a = sum(a for _, a in pairs) / 3
    assert float((mean_b @ mean_a.T - dense_mean).norm()) > 0.1 * float(dense_mean.norm())


def test_factored_update_equals_the_dense_delta() -> None:
    x = torch.randn(5, 20, generator=_gen(12))
    down, up = torch.randn(20, 3, generator=_gen(13)), torch.randn(30, 3, generator=_gen(14))
    torch.testing.assert_close(F.factored_update(x, down, up, 0.5), 0.5 * x @ (up @ down.T).T, atol=1e-5, rtol=1e-5)


def test_bad_shapes_and_knobs_raise_typed_errors() -> None:
    with pytest.raises(ShareError, match="rows"):
        F.project(torch.eye(4), torch.ones(3, 2))
    with pytest.raises(ShareError, match="shape"):
        F.fit_subspace(torch.ones(4, 0), threshold=0.6, k_min=1, k_max=4)
    with pytest.raises(ShareConfigError, match="k_min"):
        ShareConfig(k_min=8, k_max=4)
    with pytest.raises(ShareConfigError, match="init"):
        ShareConfig(init_b_std=0.0)
    assert ShareConfig.from_dict(ShareConfig(p=2).to_dict()) == ShareConfig(p=2)


def test_share_knob_overrides_take_the_knobs_types_and_refuse_bad_input() -> None:
    parsed = ShareConfig.parse_overrides(
        ["variance_threshold=0.9", "k-min=8", "include_mean_direction=false", "target_modules=q_proj,v_proj"]
    )
    assert parsed == {
        "variance_threshold": 0.9,
        "k_min": 8,
        "include_mean_direction": False,
        "target_modules": ("q_proj", "v_proj"),
    }
    assert ShareConfig.parse_overrides(["max_route_error=none"]) == {"max_route_error": None}
    for bad in (["no_such_knob=1"], ["variance_threshold"], ["k_min=two"], ["variance_threshold=1.5"], ["k_min=64"]):
        with pytest.raises(ShareConfigError):
            ShareConfig.parse_overrides(bad)
