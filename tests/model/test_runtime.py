"""The runtime loads a real (tiny, random) model offline and generates with it as the pipeline needs."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from learner.config import Settings
from learner.model.runtime import (
    Generation,
    GenerationError,
    ModelLoadError,
    ModelRuntime,
    RouteAdapters,
    load_runtime,
)
from tests.conftest import PreparedModel
from tests.tiny_model import tiny_model_dir  # noqa: F401  (fixture; the lead's conftest may import it too)

MESSAGES = [
    {"role": "system", "content": "Fix the Rust code so that it compiles."},
    {"role": "user", "content": 'fn main() {\n    let x: i32 = "five";\n    println!("{}", x);\n}'},
]


@pytest.fixture(scope="module")
def runtime(tiny_model_dir: Path) -> ModelRuntime:  # noqa: F811
    return load_runtime(Settings(model=str(tiny_model_dir), device="cpu"))


def _next_token_logits(runtime: ModelRuntime) -> torch.Tensor:
    ids = runtime.tokenizer(runtime.render_prompt(MESSAGES), return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        return runtime.model(input_ids=ids).logits[0, -1].float()


class ShiftAdapters:
    """A real RouteAdapters: a forward hook that adds a constant to layer 0's output for one route."""

    def __init__(self, model: Any, route: str, shift: float = 3.0) -> None:
        self._layer = model.model.layers[0]
        self._route = route
        self._shift = shift
        self._handle: Any = None
        self.active: list[str | None] = []
        self.overlaps = 0

    def activate(self, route: str | None) -> str | None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        if route is not None and self.active and self.active[-1] is not None:
            self.overlaps += 1  # a second call switched routes while another was generating
        self.active.append(route)
        if route != self._route:
            return None
        self._handle = self._layer.register_forward_hook(lambda _m, _i, out: out + self._shift)
        return "v7"


def test_tiny_model_loads_through_the_ordinary_path(runtime: ModelRuntime, tiny_model_dir: Path) -> None:  # noqa: F811
    assert runtime.model_name == str(tiny_model_dir)
    assert runtime.device == "cpu"
    assert runtime.model.dtype == torch.bfloat16
    assert not runtime.model.training


def test_prompt_ends_where_the_assistant_answers(runtime: ModelRuntime) -> None:
    prompt = runtime.render_prompt(MESSAGES)
    assert prompt.startswith("<|im_start|>system\nFix the Rust code")
    assert 'let x: i32 = "five";' in prompt
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert runtime.token_count(prompt) > runtime.token_count("fn main() {}") > 0


def test_greedy_generation_is_deterministic(runtime: ModelRuntime) -> None:
    first = runtime.generate(MESSAGES, max_new_tokens=24)
    second = runtime.generate(MESSAGES, max_new_tokens=24)
    assert isinstance(first, Generation)
    assert first.text and first.text == second.text
    assert 0 < first.new_tokens <= 24 and first.seconds > 0
    assert first.adapter_version is None


def test_a_batch_of_candidates_comes_from_one_prefill_with_the_greedy_answer_first(runtime: ModelRuntime) -> None:
    shapes: list[tuple[int, int]] = []
    forward = runtime.model.forward

    def recording(*args: object, **kwargs: object) -> object:
        ids = kwargs.get("input_ids")
        if isinstance(ids, torch.Tensor):
            shapes.append((int(ids.shape[0]), int(ids.shape[1])))
        return forward(*args, **kwargs)

    runtime.model.forward = recording
    try:
        batch = runtime.generate_batch(MESSAGES, 4, max_new_tokens=12, temperature=1.0, seed=3)
    finally:
        runtime.model.forward = forward
    prompt_tokens = runtime.token_count(runtime.render_prompt(MESSAGES))
    assert shapes[0] == (1, prompt_tokens - 1), "the prompt is run once, for one sequence"
    assert all(width == 1 for _, width in shapes[1:]), "then only one new token per sequence per step"
    assert {rows for rows, _ in shapes[1:]} == {4}
    assert len(batch) == 4 and len({g.text for g in batch}) == 4, "distinct samples"
    greedy = runtime.generate(MESSAGES, max_new_tokens=12, prompt_lookup=False)
    assert batch[0].text == greedy.text, "the first candidate is the greedy answer"
    assert all(g.mean_logprob is not None and g.mean_logprob <= 0 for g in batch)
    again = runtime.generate_batch(MESSAGES, 4, max_new_tokens=12, temperature=1.0, seed=3)
    assert [g.text for g in again] == [g.text for g in batch], "reproducible with a seed"


def test_prompt_lookup_on_and_off_give_the_same_greedy_answer(runtime: ModelRuntime) -> None:
    with_lookup = runtime.generate(MESSAGES, max_new_tokens=24, prompt_lookup=True)
    without = runtime.generate(MESSAGES, max_new_tokens=24, prompt_lookup=False)
    assert without.text
    assert with_lookup.text == without.text
    assert with_lookup.new_tokens == without.new_tokens


@pytest.mark.parametrize("prompt_lookup", [False, True])
def test_sampling_is_reproducible_with_a_seed(runtime: ModelRuntime, prompt_lookup: bool) -> None:
    def sample(seed: int) -> str:
        return runtime.generate(
            MESSAGES, max_new_tokens=16, temperature=1.0, seed=seed, prompt_lookup=prompt_lookup
        ).text

    first = sample(11)
    assert sample(11) == first
    assert {sample(s) for s in (12, 13, 14)} != {first}


def test_seeded_sampling_leaves_the_global_rng_alone(runtime: ModelRuntime) -> None:
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    runtime.generate(MESSAGES, max_new_tokens=4, temperature=1.0, seed=99)
    assert torch.equal(torch.rand(3), expected)


def test_prompt_beyond_the_context_is_a_clear_generation_error(runtime: ModelRuntime) -> None:
    with pytest.raises(GenerationError, match=r"exceeds the model's context of 4096"):
        runtime.generate(MESSAGES, max_new_tokens=5000)


@pytest.mark.parametrize("prompt_lookup", [False, True])
def test_a_set_stop_event_ends_generation_early(runtime: ModelRuntime, prompt_lookup: bool) -> None:
    full = runtime.generate(MESSAGES, max_new_tokens=40, prompt_lookup=prompt_lookup)
    stop = threading.Event()
    stop.set()
    stopped = runtime.generate(MESSAGES, max_new_tokens=40, prompt_lookup=prompt_lookup, stop_event=stop)
    assert full.new_tokens > 10
    assert stopped.new_tokens < full.new_tokens
    assert full.text.startswith(stopped.text)


def test_adapter_changes_logits_only_while_its_route_is_active(runtime: ModelRuntime) -> None:
    base_logits = _next_token_logits(runtime)
    base = runtime.generate(MESSAGES, max_new_tokens=16)
    adapters = ShiftAdapters(runtime.model, route="E0308")
    runtime.attach_adapters(adapters)
    try:
        routed = runtime.generate(MESSAGES, max_new_tokens=16, route="E0308")
        assert routed.adapter_version == "v7"
        assert routed.text != base.text
        # After the call the base model is back, exactly.
        assert torch.equal(_next_token_logits(runtime), base_logits)
        other = runtime.generate(MESSAGES, max_new_tokens=16, route="E0425")
        assert other.adapter_version is None and other.text == base.text
        unrouted = runtime.generate(MESSAGES, max_new_tokens=16)
        assert unrouted.adapter_version is None and unrouted.text == base.text
        # While active (as the share module will do for scoring), the logits differ.
        adapters.activate("E0308")
        assert not torch.allclose(_next_token_logits(runtime), base_logits)
        adapters.activate(None)
    finally:
        runtime.attach_adapters(None)
    assert torch.equal(_next_token_logits(runtime), base_logits)


def test_concurrent_calls_never_share_the_model(runtime: ModelRuntime) -> None:
    adapters = ShiftAdapters(runtime.model, route="E0308")
    runtime.attach_adapters(adapters)
    results: list[Generation] = []
    try:
        threads = [
            threading.Thread(
                target=lambda r=route: results.append(runtime.generate(MESSAGES, max_new_tokens=12, route=r))
            )
            for route in ["E0308", "E0425"] * 3
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        runtime.attach_adapters(None)
    assert len(results) == 6
    assert adapters.overlaps == 0
    assert sorted(r.adapter_version or "-" for r in results) == ["-", "-", "-", "v7", "v7", "v7"]


def test_missing_model_folder_is_a_clear_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"model folder .*nowhere.* does not exist"):
        load_runtime(Settings(model=str(tmp_path / "nowhere")))


def test_a_file_instead_of_a_folder_is_a_clear_load_error(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="is a file; give the folder"):
        load_runtime(Settings(model=str(weights)))


def test_folder_without_a_model_is_a_clear_load_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelLoadError) as caught:
        load_runtime(Settings(model=str(tmp_path)))
    message = str(caught.value)
    assert message.startswith(f"could not load model {str(tmp_path)!r}")
    assert "\n" not in message


def test_unavailable_device_is_a_clear_load_error(tiny_model_dir: Path) -> None:  # noqa: F811
    with pytest.raises(ModelLoadError, match="unknown device 'tpu'"):
        load_runtime(Settings(model=str(tiny_model_dir), device="tpu"))
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="CUDA is not available"):
            load_runtime(Settings(model=str(tiny_model_dir), device="cuda"))


def test_route_adapters_protocol_is_satisfied_by_a_plain_class(runtime: ModelRuntime) -> None:
    adapters: RouteAdapters = ShiftAdapters(runtime.model, route="x")
    assert adapters.activate(None) is None


@pytest.mark.embedded_model
def test_embedded_model_prepares_offline_and_answers(embedded_model: PreparedModel) -> None:
    settings = embedded_model.settings
    print(f"embedded model: prepared in {embedded_model.seconds:.1f}s")
    assert any("Converting" in step for step in embedded_model.steps)
    # The joined GGUF is gone and only the complete copy remains.
    assert [p.name for p in settings.models_dir.iterdir()] == ["qwen2.5-coder-1.5b-instruct-bf16"]
    assert not list(settings.models_dir.rglob("*.gguf"))
    started = time.perf_counter()
    runtime = load_runtime(settings)  # the prepared copy: no second conversion
    assert time.perf_counter() - started < 30
    answer = runtime.generate(
        [{"role": "user", "content": "Write a Rust function `add(a: i32, b: i32) -> i32`. Code only."}],
        max_new_tokens=48,
    )
    print(f"embedded model: {answer.new_tokens} tokens in {answer.seconds:.1f}s")
    assert "fn add" in answer.text
