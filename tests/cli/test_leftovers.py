"""The small things a hostile tester found: private folders, one learner at a time, a way out of a corrupt
store, an empty store that says so, and no temp folders left by a killed run."""

from __future__ import annotations

import logging
import stat

import pytest
from typer.testing import CliRunner

from learner.cli import app
from learner.config import Settings
from learner.learn.daemon import InstanceLock
from learner.learn.phases import LearnError, LearnOptions, run_learning
from learner.store import Store

runner = CliRunner()


def test_data_logs_training_and_cache_folders_are_private(settings: Settings) -> None:
    settings.ensure_dirs()
    for folder in (settings.data_dir, settings.logs_dir, settings.training_dir, settings.cache_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_a_second_learner_in_the_same_home_is_refused(settings: Settings) -> None:
    settings.ensure_dirs()
    with InstanceLock(settings):
        result = runner.invoke(app, ["learn", "--steps", "1", "--no-docs"])
    assert result.exit_code == 2
    assert "another sleepy-coder learner is running" in result.output


def test_data_quarantine_moves_a_corrupt_store_aside_and_leaves_a_good_one(settings: Settings) -> None:
    settings.ensure_dirs()
    settings.db_path.write_bytes(b"this is not sqlite at all" * 10)
    result = runner.invoke(app, ["data", "quarantine"])
    assert result.exit_code == 0, result.output
    moved = list(settings.data_dir.glob(f"{settings.db_path.name}.corrupt-*"))
    assert len(moved) == 1 and moved[0].read_bytes().startswith(b"this is not sqlite")
    assert not settings.db_path.exists()
    Store.open(settings).close()
    again = runner.invoke(app, ["data", "quarantine"])
    assert again.exit_code == 0 and "readable: nothing was moved" in again.output
    assert settings.db_path.exists()


def test_the_corrupt_store_message_names_a_command_that_exists(settings: Settings) -> None:
    settings.ensure_dirs()
    settings.db_path.write_bytes(b"garbage" * 10)
    result = runner.invoke(app, ["status"])
    assert "sleepy-coder data quarantine" in result.output


def test_an_empty_store_file_is_reported_before_it_becomes_a_fresh_store(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings.ensure_dirs()
    settings.db_path.write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="learner.store"), Store.open(settings):
        pass
    assert any("was an empty file" in r.getMessage() for r in caplog.records)


def test_a_learning_run_removes_temp_folders_a_killed_run_left(settings: Settings) -> None:
    settings.ensure_dirs()
    leftover = settings.adapters_dir / ".share-20261202.k3j9x2"
    leftover.mkdir()
    (leftover / "share.safetensors").write_bytes(b"half written")
    kept = settings.adapters_dir / "share-20261201"
    kept.mkdir()
    with pytest.raises(LearnError):  # fails on its options right after the clean-up
        run_learning(settings, LearnOptions(routes=("mutability",), only=("moved-value",)))
    assert not leftover.exists() and kept.is_dir()
