"""Running the Rust toolchain on a crate: ``cargo check`` for crates, ``rustc`` for lone files.

The only module that starts cargo or rustc on code. Every run gets an explicit target dir (the
caller's persistent one, so re-checks are incremental and never invalidate the user's or
rust-analyzer's build), can be cancelled, and reports failures to start as
:class:`~learner.errors.CheckFailed` with cargo's own words.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from learner.errors import CheckFailed, SleepyCoderError, ToolchainMissing
from learner.records import RustDiagnostic
from learner.rust.crate import CrateRef
from learner.rust.diagnostics import errors, parse_messages
from learner.rust.toolchain import cargo_path, rustc_path


class CheckCancelled(SleepyCoderError):
    """The check was cancelled (a newer edit superseded it)."""


@dataclass(frozen=True)
class CheckResult:
    diagnostics: tuple[RustDiagnostic, ...]
    seconds: float
    #: cargo's exit status was 0 (no errors in any target).
    success: bool

    @property
    def errors(self) -> list[RustDiagnostic]:
        return errors(self.diagnostics)


def check(
    crate: CrateRef,
    target_dir: Path,
    *,
    timeout_s: float = 300.0,
    cancel: threading.Event | None = None,
    offline: bool = True,
    config_files: Sequence[Path] = (),
) -> CheckResult:
    """Type-check ``crate`` and return its diagnostics (errors and warnings, all targets).

    ``offline`` passes ``--offline`` (dependencies must be fetched already); ``config_files`` are
    cargo configuration files given with ``--config``, in increasing precedence (a scratch copy
    lives outside the crate's ancestors, so it names their ``.cargo/config.toml`` explicitly).
    """
    target_dir.mkdir(parents=True, exist_ok=True)
    if crate.is_single_file:
        assert crate.single_file is not None
        name = re.sub(r"\W", "_", Path(crate.single_file).stem) or "main"
        cmd = [
            str(rustc_path()),
            crate.single_file,
            "--error-format=json",
            f"--edition={crate.edition}",
            f"--crate-type={crate.crate_type}",
            f"--crate-name={name}",
            "--emit=metadata",
            "-o",
            str(target_dir / f"lib{name}.rmeta"),
        ]
    else:
        assert crate.manifest is not None
        cmd = [
            str(cargo_path()),
            "check",
            # Without --all-targets cargo checks the library and binaries only.
            *(["--all-targets"] if crate.check_tests else []),
            "--message-format=json",
            # Without it cargo stops at the first failing package: a workspace showed a different
            # few members' errors on each run, so no baseline (and no verification) was stable.
            "--keep-going",
            "--manifest-path",
            str(crate.manifest),
            "--target-dir",
            str(target_dir),
            *(["--offline"] if offline else []),
            *[arg for path in config_files for arg in ("--config", str(path))],
        ]
    env = {
        **os.environ,
        "CARGO_TERM_COLOR": "never",
        "CARGO_NET_RETRY": os.environ.get("CARGO_NET_RETRY", "1"),
    }
    started = time.monotonic()
    stdout, stderr, status = _run(cmd, crate.root, env, timeout_s, cancel)
    seconds = time.monotonic() - started
    # rustc writes JSON diagnostics to stderr; cargo to stdout.
    diagnostics = parse_messages((stdout + "\n" + stderr).splitlines())
    if status != 0 and not errors(diagnostics):
        raise CheckFailed(_failure_summary(crate, stderr, offline=offline and not crate.is_single_file))
    return CheckResult(tuple(diagnostics), seconds, status == 0)


def _run(
    cmd: list[str], cwd: Path, env: dict[str, str], timeout_s: float, cancel: threading.Event | None
) -> tuple[str, str, int]:
    try:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace"
        )
    except FileNotFoundError as exc:
        raise ToolchainMissing(f"could not start {cmd[0]}: {exc}") from exc
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            stdout, stderr = proc.communicate(timeout=0.1)
            return stdout, stderr, proc.returncode
        except subprocess.TimeoutExpired:
            if cancel is not None and cancel.is_set():
                proc.kill()
                proc.communicate()
                raise CheckCancelled() from None
            if time.monotonic() > deadline:
                proc.kill()
                proc.communicate()
                raise CheckFailed(f"`{' '.join(cmd[:2])}` took longer than {timeout_s:.0f} s and was stopped") from None


def _failure_summary(crate: CrateRef, stderr: str, *, offline: bool) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    important = [ln for ln in lines if ln.startswith(("error", "Caused by", "failed", "warning: spurious"))]
    detail = " | ".join((important or lines)[-4:]) or "no output"
    what = crate.single_file or str(crate.manifest)
    summary = f"cargo could not check {what}: {detail}"
    if offline and "offline" in stderr:
        summary += (
            f"; sleepy-coder runs cargo offline, so fetch the dependencies once with `cargo fetch` in {crate.root}"
            " (or set cargo_network = true)"
        )
    return summary
