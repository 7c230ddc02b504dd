"""The OpenAI-compatible backend: routes as model names, streaming, and failures that never hang."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from learner.config import Settings
from learner.fix.pipeline import build_sources, check_path, fix_diagnostic
from learner.fix.sources.model import ModelFixSource
from learner.model.handle import ModelUnavailable, RuntimeHandle
from learner.model.remote import (
    BackendError,
    BackendUnavailable,
    OpenAIRuntime,
    ServedModels,
    backend_url,
)
from learner.model.runtime import ModelRuntime, load_runtime
from tests.model.openai_server import OpenAITestServer
from tests.model.test_runtime import MESSAGES, ShiftAdapters
from tests.rust_fixtures import make_crate
from tests.tiny_model import tiny_model_dir  # noqa: F401  (fixture)

MOVED_VALUE = (
    "fn take(v: Vec<i32>) -> usize { v.len() }\n"
    'fn main() {\n    let v = vec![1];\n    take(v);\n    println!("{:?}", v);\n}\n'
)


@pytest.fixture(scope="module")
def runtime(tiny_model_dir: Path) -> ModelRuntime:  # noqa: F811
    runtime = load_runtime(Settings(model=str(tiny_model_dir), device="cpu"))
    runtime.attach_adapters(ShiftAdapters(runtime.model, "moved-value"))
    return runtime


@pytest.fixture
def server(runtime: ModelRuntime) -> Iterator[OpenAITestServer]:
    with OpenAITestServer(runtime, routes=("moved-value",)) as served:
        yield served


def remote_settings(url: str, **changes: object) -> Settings:
    return replace(Settings(), backend=f"openai:{url}", **changes)  # type: ignore[arg-type]


def test_backend_setting_names_an_http_url() -> None:
    assert backend_url("openai:http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1"
    for bad in ("vllm:http://x", "openai:", "openai:ftp://host/v1", "openai:127.0.0.1:8000"):
        with pytest.raises(BackendError, match="backend"):
            backend_url(bad)
    assert not Settings().uses_remote_backend
    assert Settings(backend="openai:http://h/v1").uses_remote_backend


def test_vllm_model_listing_separates_base_models_from_adapters() -> None:
    listing = {
        "data": [
            {"id": "qwen", "parent": None, "root": "/models/qwen"},
            {"id": "moved-value", "parent": "qwen", "root": "/adapters/moved-value-v3"},
            {"no": "id"},
        ]
    }
    assert ServedModels.from_listing(listing) == ServedModels(("qwen",), frozenset({"moved-value"}))
    with pytest.raises(BackendError, match="model list"):
        ServedModels.from_listing({"models": []})


def test_a_route_asks_for_its_adapter_by_name_and_answers_like_the_local_model(
    runtime: ModelRuntime, server: OpenAITestServer
) -> None:
    remote = OpenAIRuntime(remote_settings(server.url))
    assert remote.model_name == "openai:tiny-base"
    routed = remote.generate(MESSAGES, max_new_tokens=12, route="moved-value")
    base = remote.generate(MESSAGES, max_new_tokens=12, route=None)
    assert [r["model"] for r in server.requests] == ["moved-value", "tiny-base"]
    assert routed.text == runtime.generate(MESSAGES, max_new_tokens=12, route="moved-value").text
    assert base.text == runtime.generate(MESSAGES, max_new_tokens=12).text
    assert routed.text != base.text  # the adapter was really applied on the server's side
    assert routed.adapter_version == "moved-value" and base.adapter_version is None
    assert routed.notice is None and routed.first_token_s is not None
    # Every sampling knob is sent, so the server's generation_config cannot add a repetition penalty.
    request = server.requests[0]
    assert request["temperature"] == 0.0 and request["repetition_penalty"] == 1.0 and request["stream"] is True


def test_a_route_the_server_lacks_falls_back_to_the_base_model_and_says_so(server: OpenAITestServer) -> None:
    remote = OpenAIRuntime(remote_settings(server.url))
    answer = remote.generate(MESSAGES, max_new_tokens=8, route="trait-bound")
    assert server.requests[-1]["model"] == "tiny-base"
    assert answer.notice is not None and "no adapter for route trait-bound" in answer.notice
    # An adapter unloaded after the model list was read: the 404 is retried once on the base model.
    server.routes.clear()
    late = remote.generate(MESSAGES, max_new_tokens=8, route="moved-value")
    assert [r["model"] for r in server.requests[-2:]] == ["moved-value", "tiny-base"]
    assert late.notice is not None and "no longer serves" in late.notice


def test_several_candidates_come_from_one_request(server: OpenAITestServer) -> None:
    remote = OpenAIRuntime(remote_settings(server.url))
    answers = remote.generate_batch(MESSAGES, 3, max_new_tokens=8, route="moved-value", seed=7, greedy_first=False)
    assert len(answers) == 3 and len(server.requests) == 1
    assert server.requests[0]["n"] == 3 and server.requests[0]["seed"] == 7


def test_the_base_model_must_be_named_when_the_server_serves_several(runtime: ModelRuntime) -> None:
    with OpenAITestServer(runtime, base="a") as served:
        with pytest.raises(BackendError, match="does not serve 'b'"):
            OpenAIRuntime(remote_settings(served.url, backend_model="b"))
        assert OpenAIRuntime(remote_settings(served.url, backend_model="a")).base_model == "a"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_server_that_is_down_fails_at_once_with_one_line() -> None:
    handle = RuntimeHandle(remote_settings(f"http://127.0.0.1:{_free_port()}/v1"))
    started = time.monotonic()
    with pytest.raises(ModelUnavailable, match="unreachable") as caught:
        handle.get()
    assert time.monotonic() - started < 5 and "\n" not in str(caught.value)
    assert handle.state == "failed"


def test_a_server_that_went_down_is_not_asked_again_for_a_while(server: OpenAITestServer) -> None:
    remote = OpenAIRuntime(remote_settings(server.url))
    server.stop()
    with pytest.raises(BackendUnavailable, match="unreachable") as first:
        remote.generate(MESSAGES, max_new_tokens=8, route="moved-value")
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as second:
        remote.generate(MESSAGES, max_new_tokens=8, route="moved-value")
    assert time.monotonic() - started < 0.05 and str(second.value) == str(first.value)


def test_a_server_that_never_answers_times_out_within_the_setting() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    started = time.monotonic()
    try:
        with pytest.raises(ModelUnavailable, match="did not answer within 1 s"):
            RuntimeHandle(remote_settings(url, backend_timeout_s=1.0)).get()
        assert time.monotonic() - started < 4
    finally:
        for conn in accepted:
            conn.close()
        listener.close()


def test_with_the_server_down_rustc_suggestions_still_come_with_one_note(tmp_path: Path, runtime: ModelRuntime) -> None:
    root = make_crate(tmp_path / "c", {"src/main.rs": MOVED_VALUE})
    with OpenAITestServer(runtime, routes=("moved-value",)) as served:
        settings = remote_settings(served.url, candidates=1, attempts=1)
        handle = RuntimeHandle(settings)
        handle.get()  # connected while the server was up ...
    session = check_path(root, settings)  # ... and down by the time the user asks
    diagnostic = session.errors[0]
    model_only = fix_diagnostic(session, diagnostic, [ModelFixSource(handle)], settings=settings)
    assert not model_only.fixes and any("model fixes unavailable" in n for n in model_only.notes)
    sources = build_sources(settings, runtime=handle)
    both = fix_diagnostic(session, diagnostic, sources, settings=settings, stop_after_verified=False)
    assert both.fixes and both.fixes[0].candidate.source == "rustc"
    assert any("model fixes unavailable" in n for n in both.notes)
