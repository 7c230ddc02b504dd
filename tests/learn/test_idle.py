"""Idle detection with an injected clock and hand-made readings; the pause switch on a real torch module."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import torch

from learner.config import Settings
from learner.learn.idle import IdleDetector, LearningPaused, PauseSwitch, other_processes_cpu
from learner.store import Store

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _detector(last: datetime | None, cpu: float = 5.0, power: bool | None = None, minutes: float = 10) -> IdleDetector:
    return IdleDetector(
        Settings(idle_minutes=minutes),
        clock=lambda: NOW,
        activity=lambda: last,
        cpu=lambda: cpu,
        power=lambda: power,
        cpu_threshold=50,
    )


def test_recent_editor_activity_is_not_idle() -> None:
    verdict = _detector(NOW - timedelta(minutes=3)).check()
    assert not verdict.idle and "editor active 180s ago" in verdict.reasons[0]


def test_quiet_editor_free_cpu_on_ac_is_idle() -> None:
    assert _detector(NOW - timedelta(minutes=11), power=True).check().idle
    assert _detector(None).check().idle  # never used the editor, desktop without battery


def test_busy_cpu_is_not_idle() -> None:
    verdict = _detector(None, cpu=80).check()
    assert not verdict.idle and "CPU 80%" in verdict.reasons[0]


def test_battery_is_not_idle() -> None:
    verdict = _detector(None, power=False).check()
    assert verdict.reasons == ("on battery",)


def test_idle_minutes_setting_is_respected() -> None:
    last = NOW - timedelta(minutes=3)
    assert _detector(last, minutes=2).check().idle
    assert not _detector(last, minutes=5).check().idle


def test_user_return_is_activity_after_the_cycle_started() -> None:
    started = NOW - timedelta(minutes=1)
    assert _detector(NOW - timedelta(minutes=20)).user_returned(started) is None
    assert _detector(NOW).user_returned(started) == "the editor is active again"
    assert _detector(None, power=False).user_returned(started) == "running on battery"


def test_server_heartbeat_in_the_store_is_the_activity(settings: Settings) -> None:
    with Store.open(settings) as store:
        detector = IdleDetector(settings, store=store, cpu=lambda: 0.0, power=lambda: None)
        assert detector.check().idle
        store.heartbeat("server")
        assert not detector.check().idle


def test_cpu_reading_is_a_percentage() -> None:
    assert 0.0 <= other_processes_cpu(0.05) <= 100.0


def test_pause_switch_interrupts_a_forward_pass_only_while_armed() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    switch = PauseSwitch()
    switch.trip("the editor is active again")
    model(torch.zeros(1, 4))  # not armed: runs
    with switch.armed(), pytest.raises(LearningPaused, match="editor is active"):
        model(torch.zeros(1, 4))
    model(torch.zeros(1, 4))  # disarmed again
