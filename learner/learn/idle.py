"""Is the machine idle enough to learn? Editor activity, CPU load and power, each injectable.

The learner trains only when the user is away: no editor activity for ``settings.idle_minutes``
(the server writes ``store.heartbeat("server")`` whenever the user does something), the other
processes leave the CPU mostly free, and the machine is not running on battery. Each reading
is a plain callable so tests drive the detector with a fake clock and hand-made readings,
while the defaults read the store and psutil.

Two questions are asked: :meth:`IdleDetector.check` before a cycle starts (all conditions),
and :meth:`IdleDetector.user_returned` while a cycle runs. The second ignores CPU load,
because the learner's own training is what keeps the CPU busy then; it only watches for new
editor activity and for the charger being unplugged.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from learner.config import Settings

if TYPE_CHECKING:
    from learner.store import Store

#: Percent of the whole machine that other processes may use while we count it as idle.
DEFAULT_CPU_THRESHOLD = 50.0
#: Seconds psutil samples the CPU for one reading.
CPU_SAMPLE_S = 0.5

Clock = Callable[[], datetime]
ActivityReading = Callable[[], datetime | None]
CpuReading = Callable[[], float]
#: True on AC power, False on battery, None when there is no battery (a desktop counts as on AC).
PowerReading = Callable[[], bool | None]


@dataclass(frozen=True)
class IdleVerdict:
    idle: bool
    #: Why the machine is not idle (empty when it is); one short phrase per failed condition.
    reasons: tuple[str, ...] = ()

    def describe(self) -> str:
        return "idle" if self.idle else "busy: " + "; ".join(self.reasons)


def other_processes_cpu(interval: float = CPU_SAMPLE_S) -> float:
    """System CPU percent over ``interval`` minus what this process used (0-100 of the whole machine)."""
    import psutil

    me = psutil.Process(os.getpid())
    me.cpu_percent(None)
    total = psutil.cpu_percent(interval=interval)
    own = me.cpu_percent(None) / max(1, psutil.cpu_count() or 1)
    return max(0.0, total - own)


def on_ac_power() -> bool | None:
    """psutil's battery reading: None on machines without a battery (or where it cannot be read)."""
    import psutil

    reader = getattr(psutil, "sensors_battery", None)
    try:
        battery = reader() if reader is not None else None
    except (OSError, RuntimeError):
        return None
    return None if battery is None else bool(battery.power_plugged)


class IdleDetector:
    """Decides whether the learner may work now; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        clock: Clock | None = None,
        activity: ActivityReading | None = None,
        cpu: CpuReading | None = None,
        power: PowerReading | None = None,
        cpu_threshold: float = DEFAULT_CPU_THRESHOLD,
    ) -> None:
        if activity is None and store is None:
            raise ValueError("IdleDetector needs a store (for the server's heartbeat) or an activity reading")
        self.idle_after = timedelta(minutes=settings.idle_minutes)
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.activity: ActivityReading = activity or (lambda: store.last_heartbeat("server") if store else None)
        self.cpu: CpuReading = cpu or other_processes_cpu
        self.power: PowerReading = power or on_ac_power
        self.cpu_threshold = cpu_threshold

    def check(self) -> IdleVerdict:
        """All conditions: editor quiet for ``idle_minutes``, CPU free, on AC power (or no battery)."""
        reasons: list[str] = []
        last = self.activity()
        if last is not None:
            quiet = self.clock() - last
            if quiet < self.idle_after:
                left = (self.idle_after - quiet).total_seconds()
                reasons.append(f"editor active {quiet.total_seconds():.0f}s ago (idle in {left:.0f}s)")
        if self.power() is False:
            reasons.append("on battery")
        if not reasons:  # the CPU sample takes time; skip it when the answer is already no
            load = self.cpu()
            if load >= self.cpu_threshold:
                reasons.append(f"CPU {load:.0f}% used by other processes (threshold {self.cpu_threshold:.0f}%)")
        return IdleVerdict(not reasons, tuple(reasons))

    def user_returned(self, since: datetime) -> str | None:
        """Why to pause a running cycle that started at ``since``: new editor activity or battery; else None."""
        last = self.activity()
        if last is not None and last > since:
            return "the editor is active again"
        if self.power() is False:
            return "running on battery"
        return None


# ----------------------------------------------------------------------------- pausing a running cycle


class LearningPaused(BaseException):
    """Raised inside training or evaluation when the user came back.

    A BaseException on purpose, a signal rather than an error (like ``KeyboardInterrupt``): the
    layers catch :class:`~learner.errors.SleepyCoderError` to turn a failing case or cycle into
    a recorded failure, and a pause must never be recorded as one. Training
    state survives it: the trainer checkpoints every step (the daemon runs it with
    ``checkpoint_every=1``) and its ``finally`` blocks unhook LoRA layers and optimiser state.
    """


class PauseSwitch:
    """A stop flag that interrupts torch work within one module's forward pass once set.

    While :meth:`armed`, a global forward pre-hook (``torch.nn.modules.module``) checks the flag
    before every module call and raises :class:`LearningPaused`; that bounds the pause latency
    by the rest of the current backward pass instead of a whole optimiser step. The partial step
    is simply recomputed on resume (a step's batch depends only on the seed and its index).
    """

    def __init__(self) -> None:
        import threading

        self.event = threading.Event()
        self.reason = ""

    def trip(self, reason: str) -> None:
        self.reason = reason
        self.event.set()

    @property
    def tripped(self) -> bool:
        return self.event.is_set()

    def raise_if_tripped(self) -> None:
        if self.event.is_set():
            raise LearningPaused(self.reason)

    def armed(self) -> _Armed:
        return _Armed(self)


class _Armed:
    def __init__(self, switch: PauseSwitch) -> None:
        self.switch = switch
        self.handle: object | None = None

    def __enter__(self) -> PauseSwitch:
        from torch.nn.modules.module import register_module_forward_pre_hook

        event = self.switch.event
        switch = self.switch

        def hook(module: object, args: object) -> None:
            if event.is_set():
                raise LearningPaused(switch.reason)

        self.handle = register_module_forward_pre_hook(hook)
        return self.switch

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            self.handle.remove()  # type: ignore[attr-defined]
            self.handle = None
