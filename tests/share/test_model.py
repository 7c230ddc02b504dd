"""The Share adapter set on a tiny random Qwen2 model (built from a config, no tokenizer, no hub)."""

from __future__ import annotations

import copy
import statistics
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from learner.records import FALLBACK_ROUTE
from learner.share import (
    MergeRefusedError,
    ShareAdapters,
    ShareConfig,
    ShareError,
    ShareFormatError,
    lora_factors_from_peft,
)
from learner.share.model import LoraFactors

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
INPUT_IDS = torch.tensor([[3, 17, 42, 5, 99, 7, 64, 12], [8, 1, 2, 90, 33, 4, 4, 77]])


@pytest.fixture
def base() -> nn.Module:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=128,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=64,
        initializer_range=0.2,
    )
    model = Qwen2ForCausalLM(config).eval()
    model.requires_grad_(False)
    return model


def _peft_route(base: nn.Module, seed: int, scale: float = 0.2) -> nn.Module:
    """A Phase-0 LoRA route: a peft model whose B factors are random (peft starts them at zero)."""
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(
        copy.deepcopy(base), LoraConfig(r=8, lora_alpha=16, target_modules=TARGETS, lora_dropout=0.0)
    )
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=g) * scale)
    return peft_model.eval()


def _logits(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=INPUT_IDS).logits


def _routes(base: nn.Module, seeds: dict[str, int]) -> dict[str, LoraFactors]:
    return {name: lora_factors_from_peft(_peft_route(base, seed)) for name, seed in seeds.items()}


def test_lora_factors_fold_the_scaling_and_a_full_basis_reproduces_peft_logits(base: nn.Module) -> None:
    from peft import get_peft_model_state_dict

    peft_model = _peft_route(base, seed=1)
    factors = lora_factors_from_peft(peft_model)
    assert len(factors) == 2 * len(TARGETS)
    b, a = factors["model.layers.0.self_attn.q_proj"]
    assert b.shape == (64, 8) and a.shape == (8, 64)
    with pytest.raises(ShareError, match="scaling"):
        lora_factors_from_peft(get_peft_model_state_dict(peft_model))
    from_state = lora_factors_from_peft(get_peft_model_state_dict(peft_model), scaling=16 / 8)
    torch.testing.assert_close(
        from_state["model.layers.1.self_attn.k_proj"][0], factors["model.layers.1.self_attn.k_proj"][0]
    )
    # One route, all variance kept: the projection is exact, so hooks == peft.
    adapters = ShareAdapters.from_lora(base, {"E0308": factors}, ShareConfig(variance_threshold=1.0))
    adapters.activate("E0308")
    torch.testing.assert_close(_logits(base), _logits(peft_model), atol=1e-4, rtol=1e-4)
    assert adapters.reconstruction_error("E0308") < 1e-5


def test_base_fallback_and_unknown_routes_give_exactly_the_base_logits(base: nn.Module) -> None:
    expected = _logits(base)
    weights = {k: v.clone() for k, v in base.state_dict().items()}
    adapters = ShareAdapters.from_lora(base, _routes(base, {"E0308": 1, "E0382": 2}))
    assert adapters.activate("E0308") is not None
    changed = _logits(base)
    assert not torch.allclose(changed, expected, atol=1e-3)  # a route changes the logits
    for route in (None, FALLBACK_ROUTE, "E9999"):
        assert adapters.activate(route) is None
        assert torch.equal(_logits(base), expected)
    assert all(torch.equal(v, weights[k]) for k, v in base.state_dict().items())  # weights never edited
    with pytest.raises(ShareError, match="base model"):
        adapters.new_route(FALLBACK_ROUTE)


def test_route_versions_differ_per_route_and_survive_switching(base: nn.Module) -> None:
    adapters = ShareAdapters.from_lora(base, _routes(base, {"E0308": 1, "E0382": 2}))
    first = adapters.activate("E0308")
    second = adapters.activate("E0382")
    assert first and second and first != second and first.startswith("share:E0308@")
    assert adapters.activate("E0308") == first


def test_both_coefficients_get_gradients_at_initialisation(base: nn.Module) -> None:
    adapters = ShareAdapters.from_lora(base, _routes(base, {"E0308": 1, "E0382": 2}))
    params = adapters.new_route("E0599")
    adapters.activate("E0599")
    out = base(input_ids=INPUT_IDS, labels=INPUT_IDS)
    out.loss.backward()
    eps_b, eps_a = params[0], params[1]
    assert eps_b.grad is not None and float(eps_b.grad.abs().sum()) > 0
    assert eps_a.grad is not None and float(eps_a.grad.abs().sum()) > 0
    assert all(p.grad is None for p in base.parameters())  # the base model stays frozen


def test_optimising_a_routes_coefficients_reduces_a_toy_loss(base: nn.Module) -> None:
    adapters = ShareAdapters.from_lora(base, _routes(base, {"E0308": 1, "E0382": 2}))
    bases_before = {m: b.beta.clone() for m, b in adapters.bases.items()}
    params = adapters.new_route("E0599")
    adapters.activate("E0599")
    target = torch.full_like(INPUT_IDS, 11)  # toy task: always predict token 11
    optimiser = torch.optim.Adam(params, lr=0.05)
    losses = []
    for _ in range(8):
        optimiser.zero_grad()
        loss = nn.functional.cross_entropy(base(input_ids=INPUT_IDS).logits.flatten(0, 1), target.flatten())
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0]
    assert all(torch.equal(adapters.bases[m].beta, beta) for m, beta in bases_before.items())
    # The inference cache notices the optimiser's in-place updates.
    with torch.no_grad():
        trained = base(input_ids=INPUT_IDS).logits
    assert float(nn.functional.cross_entropy(trained.flatten(0, 1), target.flatten())) < losses[-1]


def test_save_and_load_round_trip_gives_identical_logits(base: nn.Module, tmp_path: Path) -> None:
    adapters = ShareAdapters.from_lora(base, _routes(base, {"E0308": 1, "E0382": 2}), ShareConfig(base_model="tiny"))
    adapters.new_route("E0599")
    expected = {}
    for route in adapters.routes:
        adapters.activate(route)
        expected[route] = (_logits(base), adapters.route_version(route))
    adapters.save(tmp_path / "share")
    adapters.detach()
    assert sorted(p.name for p in (tmp_path / "share").iterdir()) == ["share.json", "share.safetensors"]

    loaded = ShareAdapters.load(base, tmp_path / "share")
    meta = loaded.metadata()
    assert meta["base_model"] == "tiny" and meta["target_modules"] == TARGETS
    assert {m["name"] for m in meta["modules"]} == set(adapters.bases)
    assert all(0 < m["explained_variance_b"] <= 1 for m in meta["modules"])
    for route, (logits, version) in expected.items():
        assert loaded.activate(route) == version
        assert torch.equal(_logits(base), logits)
        assert loaded.reconstruction_error(route) == adapters.reconstruction_error(route)


def test_load_refuses_tensors_that_do_not_match_the_metadata(base: nn.Module, tmp_path: Path) -> None:
    adapters = ShareAdapters.from_lora(base, _routes(base, {"E0308": 1}))
    adapters.save(tmp_path / "share")
    adapters.detach()
    blob = bytearray((tmp_path / "share" / "share.safetensors").read_bytes())
    blob[-1] ^= 0xFF
    (tmp_path / "share" / "share.safetensors").write_bytes(bytes(blob))
    with pytest.raises(ShareFormatError, match="does not match"):
        ShareAdapters.load(base, tmp_path / "share")


def test_peft_export_loads_with_peft_and_matches_the_hooks(base: nn.Module, tmp_path: Path) -> None:
    from peft import PeftModel

    adapters = ShareAdapters.from_lora(base, _routes(base, {"E0308": 1, "E0382": 2}), ShareConfig(scale=1.5))
    adapters.new_route("E0599")
    with torch.no_grad():
        for param in adapters.route_parameters("E0599"):
            param.mul_(30.0)  # make the update large enough to matter
    adapters.activate("E0599")
    hooked = _logits(base)
    out_dir = adapters.export_route_as_peft("E0599", tmp_path / "peft")
    adapters.detach()
    assert not torch.allclose(_logits(base), hooked, atol=1e-3)
    peft_model = PeftModel.from_pretrained(copy.deepcopy(base), str(out_dir)).eval()
    torch.testing.assert_close(_logits(peft_model), hooked, atol=1e-4, rtol=1e-4)
    exported = lora_factors_from_peft(out_dir)
    assert exported["model.layers.0.self_attn.v_proj"][0].shape == (32, ShareConfig().p)


def test_averaged_delta_applies_the_mean_of_the_route_updates(base: nn.Module) -> None:
    routes = _routes(base, {"E0308": 1, "E0382": 2, "E0599": 3})
    adapters = ShareAdapters.from_lora(base, routes)
    name = "model.layers.0.self_attn.o_proj"
    module = base.get_submodule(name)
    x = torch.randn(5, 64, generator=torch.Generator().manual_seed(4))
    basis = adapters.bases[name]
    pairs = [adapters._state(r).coefficients[name] for r in routes]
    deltas = [basis.beta @ b.detach() @ (basis.alpha @ a.detach()).T for b, a in pairs]
    mean_delta = sum(deltas) / len(deltas)
    with torch.no_grad():
        plain = nn.functional.linear(x, module.weight, module.bias)
        label = adapters.averaged_delta(list(routes))
        averaged = module(x)
    assert label.startswith("average(")
    torch.testing.assert_close(averaged, plain + x @ mean_delta.T, atol=1e-5, rtol=1e-5)
    mean_b = sum(b.detach() for b, _ in pairs) / 3
    mean_a = sum(a.detach() for _, a in pairs) / 3
    product_of_means = basis.beta @ mean_b @ (basis.alpha @ mean_a).T
    assert float((product_of_means - mean_delta).norm()) > 0.1 * float(mean_delta.norm())
    adapters.activate(None)
    with torch.no_grad():
        assert torch.equal(module(x), plain)


def test_fold_of_a_trained_route_keeps_earlier_routes_working(base: nn.Module) -> None:
    adapters = ShareAdapters.from_lora(base, _routes(base, {"E0308": 1, "E0382": 2}))
    before = {}
    for route in adapters.routes:
        adapters.activate(route)
        before[route] = _logits(base)
    adapters.new_route("E0599")
    report = adapters.fold("E0599")
    assert set(report.drift) == {"E0308", "E0382"} and max(report.drift.values()) <= 0.05
    for route, logits in before.items():
        adapters.activate(route)
        torch.testing.assert_close(_logits(base), logits, atol=0.05 * float(logits.abs().max()), rtol=0)
    assert adapters.activate("E0599") is not None


def test_fold_refuses_a_merge_that_would_damage_an_earlier_route(base: nn.Module) -> None:
    config = ShareConfig(k_min=1, k_max=2, include_mean_direction=False, max_forgetting=0.1)
    adapters = ShareAdapters.from_lora(base, _routes(base, {"E0308": 1, "E0382": 2}), config)
    snapshot = {m: (b.beta.clone(), b.alpha.clone()) for m, b in adapters.bases.items()}
    versions = {r: adapters.route_version(r) for r in adapters.routes}
    # A route 50x larger in other directions: with room for only 2 directions, the refit would
    # spend them on it and wipe out the earlier routes.
    loud = {m: (b * 50.0, a) for m, (b, a) in lora_factors_from_peft(_peft_route(base, seed=9)).items()}
    with pytest.raises(MergeRefusedError) as refused:
        adapters.fold("E0599", lora=loud)
    assert refused.value.drift["E0308"] > 0.1
    assert all(torch.equal(adapters.bases[m].beta, beta) for m, (beta, _) in snapshot.items())
    assert {r: adapters.route_version(r) for r in adapters.routes} == versions
    assert "E0599" not in adapters.routes


def _qwen05_shaped(device: str) -> nn.Module:
    """A shell with the 96 adapted Linears of Qwen2.5-0.5B: hidden 896, kv dim 128, 24 layers."""
    hidden, kv = 896, 128
    layers = nn.ModuleList()
    for _ in range(24):
        attn = nn.Module()
        attn.q_proj = nn.Linear(hidden, hidden, device=device)
        attn.k_proj = nn.Linear(hidden, kv, device=device)
        attn.v_proj = nn.Linear(hidden, kv, device=device)
        attn.o_proj = nn.Linear(hidden, hidden, bias=False, device=device)
        layer = nn.Module()
        layer.self_attn = attn
        layers.append(layer)
    model = nn.Module()
    model.layers = layers
    return model


def _random_lora(model: nn.Module, seed: int) -> LoraFactors:
    g = torch.Generator().manual_seed(seed)
    return {
        name: (torch.randn(m.out_features, 8, generator=g) * 0.01, torch.randn(8, m.in_features, generator=g) * 0.03)
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear)
    }


def test_a_route_has_at_least_20x_fewer_parameters_than_lora_on_qwen_shapes() -> None:
    model = _qwen05_shaped("meta")  # shapes only: no weights are allocated
    adapters = ShareAdapters.from_lora(model, {f"r{i}": _random_lora(model, i) for i in range(6)})
    adapters.new_route("new")
    lora = adapters.lora_equivalent_parameters(r=8)
    share = adapters.trainable_parameters("new")
    widths = {(b.k_b, b.k_a) for b in adapters.bases.values()}
    assert lora == 24 * 8 * (896 + 896 + 2 * (896 + 128) + 896 + 896) == 1_081_344
    assert share == sum(ShareConfig().p * (b.k_b + b.k_a) for b in adapters.bases.values())
    assert lora / share >= 20, (lora, share, widths)
    worst = 96 * ShareConfig().p * 2 * (ShareConfig().k_max + 1)
    assert lora / worst >= 20


def test_switching_routes_takes_under_10ms_on_qwen_shapes() -> None:
    model = _qwen05_shaped("meta")
    adapters = ShareAdapters.from_lora(model, {f"r{i}": _random_lora(model, i) for i in range(4)})
    for i in range(4):
        adapters.new_route(f"t{i}")
    names = adapters.routes
    adapters.route_version(names[0])  # warm the code path once; later routes are still uncached
    first = []
    for name in names[1:]:  # a first activation also computes the route's version digest
        start = time.perf_counter()
        adapters.activate(name)
        first.append(time.perf_counter() - start)
    steady = []
    for i in range(200):
        start = time.perf_counter()
        adapters.activate(names[i % len(names)])
        steady.append(time.perf_counter() - start)
    assert statistics.median(first) < 0.010, first
    assert statistics.median(steady) < 0.010, statistics.median(steady)
