"""Shared test fixtures. Every test runs with its own SLEEPY_CODER_HOME so no real user data is touched."""

from __future__ import annotations

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
