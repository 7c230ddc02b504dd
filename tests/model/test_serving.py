"""Exporting the active routes for vLLM, and the command line that serves them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from learner.config import Settings
from learner.model.runtime import load_runtime
from learner.model.serving import (
    RUNTIME_LORA_ENV,
    ServingError,
    export_active_routes,
    max_lora_rank,
    publish,
    publish_active,
    shell_line,
    vllm_command,
)
from learner.records import SHARE_ROUTE
from learner.share import ShareAdapters, ShareConfig, lora_factors_from_peft
from learner.store import Store
from tests.model.openai_server import OpenAITestServer
from tests.tiny_model import tiny_model_dir  # noqa: F401  (fixture)


def test_each_route_is_served_under_its_own_name() -> None:
    command = vllm_command(
        Path("/m/qwen"), {"moved-value": Path("/a/mv"), "borrow-conflict": Path("/a/bc")}, served_name="qwen", rank=8
    )
    assert command[:3] == ["python", "-m", "vllm.entrypoints.openai.api_server"]
    assert command[command.index("--served-model-name") + 1] == "qwen"
    assert command[command.index("--generation-config") + 1] == "vllm"
    assert command[command.index("--max-loras") + 1] == "2"
    lora = command.index("--lora-modules")
    assert command[lora + 1 : lora + 3] == ["borrow-conflict=/a/bc", "moved-value=/a/mv"]
    assert "--enable-lora" not in vllm_command(Path("/m"), {}, served_name="m")
    later = vllm_command(Path("/m"), {}, served_name="m", max_loras=4)  # adapters published after start
    assert "--enable-lora" in later and "--lora-modules" not in later
    line = shell_line(command, {RUNTIME_LORA_ENV: "True"})
    assert line.startswith("VLLM_ALLOW_RUNTIME_LORA_UPDATING=True python -m vllm")


def test_vllm_lora_rank_is_the_smallest_it_accepts() -> None:
    assert max_lora_rank([4]) == 8
    assert max_lora_rank([4, 16]) == 16
    assert max_lora_rank([]) == 1
    with pytest.raises(ServingError, match="up to 512"):
        max_lora_rank([1024])


def register_share_set(settings: Settings, model: torch.nn.Module, routes: tuple[str, ...]) -> Path:
    """An active Share set of ``routes`` (random LoRA factors on q/v) in the store, as a promotion leaves it."""
    generator = torch.Generator().manual_seed(0)
    factors = {}
    for route in routes:
        per_module = {}
        for name, module in model.named_modules():
            if name.endswith(("q_proj", "v_proj")):
                out_f, in_f = module.weight.shape
                per_module[name] = (
                    torch.randn(out_f, 8, generator=generator),
                    torch.randn(8, in_f, generator=generator),
                )
        factors[route] = per_module
    adapters = ShareAdapters.from_lora(model, factors, ShareConfig(base_model=settings.model))
    folder = adapters.save(settings.adapters_dir / "share-v1")
    adapters.detach()
    with Store.open(settings) as store:
        store.register_candidate("share-v1", route=SHARE_ROUTE, path=folder, base_model=settings.model)
        store.register_candidate("share-v0", route="naive-lora", path=folder, base_model=settings.model)
        store.promote("share-v1")
    return folder


def test_every_active_route_is_exported_as_a_peft_folder_once(settings: Settings, tiny_model_dir: Path) -> None:  # noqa: F811
    from peft import PeftModel

    model = load_runtime(Settings(model=str(tiny_model_dir))).model
    routes = ("moved-value", "mutability")
    register_share_set(settings, model, routes)
    with Store.open(settings) as store:
        exported = export_active_routes(settings, store, settings.served_dir, model)
        again = export_active_routes(settings, store, settings.served_dir, model)
    assert [(e.route, e.version, e.rank) for e in exported] == [
        ("moved-value", "share-v1", 8),  # Phase 1 keeps each route at its LoRA rank
        ("mutability", "share-v1", 8),
    ]
    assert exported[0].path == settings.served_dir / "moved-value-share-v1"
    assert again == exported
    peft_model = PeftModel.from_pretrained(model, str(exported[0].path))
    assert lora_factors_from_peft(peft_model)  # a standard PEFT LoRA folder, loadable as such


def test_publish_makes_the_server_serve_exactly_the_active_routes(settings: Settings, tiny_model_dir: Path) -> None:  # noqa: F811
    runtime = load_runtime(Settings(model=str(tiny_model_dir)))
    register_share_set(settings, runtime.model, ("moved-value", "mutability"))
    with OpenAITestServer(runtime, routes=("moved-value", "retired-route")) as server:
        server.roots["moved-value"] = "/old/moved-value-share-v0"
        remote = replace(settings, backend=f"openai:{server.url}", publish_adapters=True)
        with Store.open(remote) as store:
            report = publish_active(remote, store, runtime.model)
            again = publish_active(remote, store, runtime.model)
        assert report.unloaded == ["retired-route"]
        assert report.loaded == ["moved-value", "mutability"]  # a new version replaces the old folder
        assert server.routes == {"moved-value", "mutability"}
        assert server.roots["mutability"] == str(remote.served_dir / "mutability-share-v1")
        assert again.unchanged == ["moved-value", "mutability"] and not again.loaded
    with pytest.raises(ServingError, match="cannot list the models"):
        publish(server.url, {})  # the server is gone
