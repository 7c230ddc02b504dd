"""``sleepy-coder adapters ...``, ``sleepy-coder data ...`` and ``sleepy-coder status``: the user's controls.

adapters: list | show VERSION | rollback VERSION | export VERSION ROUTE OUT_DIR (a standard peft
LoRA folder) | publish [--to URL] (every active route for a vLLM server, and its command line).
data: export [--out FILE] (JSON Lines) | forget [--before DATE] [--yes] (records
*and* the training-set files built from them) | retention (apply ``retention_days`` now).
status: is the learner running, its last cycle, per-route examples and scores, active
versions, disk use. Everything reads the same store the server and the learner write.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from learner.cli.app import JsonOption, console, err_console, fail, ready_settings, settings_from
from learner.config import Settings
from learner.errors import SleepyCoderError

if TYPE_CHECKING:
    from learner.store import AdapterVersion, Store

adapters_app = typer.Typer(help="The versioned adapters the learner produced.", no_args_is_help=True)
data_app = typer.Typer(help="Your recorded data: export it, forget it, apply retention.", no_args_is_help=True)


@contextmanager
def _store(settings: Settings) -> Iterator[Store]:
    from learner.store import Store

    try:
        with Store.open(settings) as store:
            yield store
    except SleepyCoderError as exc:
        raise fail(str(exc)) from None


def _version_json(v: AdapterVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "route": v.route,
        "status": v.status,
        "created_at": v.created_at.isoformat(),
        "status_changed_at": v.status_changed_at.isoformat(),
        "parent_version": v.parent_version,
        "base_model": v.base_model,
        "path": v.path,
        "metrics": v.metrics,
    }


# ----------------------------------------------------------------------------- adapters


@adapters_app.command("list")
def adapters_list(as_json: JsonOption = False) -> None:
    """Every registered version, newest first, with its status and the gate's verdict."""
    settings = ready_settings()
    with _store(settings) as store:
        versions = store.adapters()
    if as_json:
        console.print_json(json.dumps([_version_json(v) for v in versions]))
        return
    table = Table("version", "route", "status", "created (UTC)", "gate")
    for v in versions:
        gate = v.metrics.get("gate", {})
        verdict = gate.get("reason", v.metrics.get("rejected_reason", "")) if gate or v.status == "rejected" else ""
        style = "bold green" if v.status == "active" else ""
        table.add_row(
            v.version, v.route, f"[{style}]{v.status}[/]" if style else v.status,
            v.created_at.strftime("%Y-%m-%d %H:%M"), escape(str(verdict)[:80]),
        )  # fmt: skip
    console.print(table if versions else "no adapters yet: the learner has not produced any")


@adapters_app.command("show")
def adapters_show(version: str, as_json: JsonOption = False) -> None:
    """One version in full: status, lineage, training metrics and gate scores."""
    from learner.store import NotFound

    settings = ready_settings()
    with _store(settings) as store:
        try:
            v = store.adapter(version)
        except NotFound as exc:
            raise fail(str(exc)) from None
    data = _version_json(v)
    if as_json:
        console.print_json(json.dumps(data))
        return
    for key in ("version", "route", "status", "created_at", "status_changed_at", "parent_version", "path"):
        console.print(f"[bold]{key}[/]: {escape(str(data[key]))}")
    gate = v.metrics.get("gate")
    if gate:
        table = Table("score", "before", "after", title=f"gate: {'promote' if gate['promote'] else 'reject'}")
        for name, line in gate.get("scores", {}).items():
            table.add_row(name, _fraction(line["before"]), _fraction(line["after"]))
        console.print(table)
        console.print(f"reason: {escape(gate.get('reason', ''))}")
    console.print_json(json.dumps({k: val for k, val in v.metrics.items() if k != "gate"}, default=str))


def _fraction(pair: list[float]) -> str:
    passed, n = pair
    return f"{passed:g}/{n}" + (f" ({100 * passed / n:.0f}%)" if n else "")


@adapters_app.command("rollback")
def adapters_rollback(version: str) -> None:
    """Withdraw VERSION if it is active (what it replaced comes back), or make a retired VERSION active again."""
    from learner.store import StoreError

    settings = ready_settings()
    with _store(settings) as store:
        try:
            current = store.adapter(version)
            if current.status == "active":
                restored = store.rollback(version)
                name = restored.version if restored else "the base model"
                console.print(f"withdrew {version}; route {current.route} now uses {name}")
            elif current.status == "retired":
                store.promote(version, base_model=settings.model)
                console.print(f"{version} is active again for route {current.route}")
            else:
                raise StoreError(f"{version} is {current.status}; only an active or a retired version can be rolled to")
        except StoreError as exc:
            raise fail(str(exc)) from None
    console.print("[dim]a running server picks the change up before its next fix[/]")


@adapters_app.command("export")
def adapters_export(version: str, route: str, out_dir: Path, model: str | None = None) -> None:
    """Write ROUTE of a Share VERSION as a standard peft LoRA folder (needs the base model, loaded once)."""
    from learner.model.adapters import load_adapter_set
    from learner.store import NotFound

    settings = settings_from(model)
    with _store(settings) as store:
        try:
            v = store.adapter(version)
        except NotFound as exc:
            raise fail(str(exc)) from None
    try:
        from learner.model.runtime import load_runtime

        runtime = load_runtime(settings)
        adapter_set = load_adapter_set(runtime.model, Path(v.path))
        if route not in adapter_set.routes:
            raise fail(f"{version} has no route {route!r}; it has {', '.join(adapter_set.routes)}")
        written = adapter_set.export_route_as_peft(route, out_dir)
    except (SleepyCoderError, RuntimeError) as exc:
        raise fail(str(exc).splitlines()[0]) from None
    console.print(f"[green]exported[/] {route} of {version} to {written}")


@adapters_app.command("publish")
def adapters_publish(
    to: Annotated[
        str | None,
        typer.Option("--to", help="A running vLLM, openai:URL or URL (.../v1); default: the backend setting."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Where the PEFT folders go (default: DATA/served).")] = None,
    server_dir: Annotated[
        Path | None,
        typer.Option("--server-dir", help="The same folder as the server sees it, when it is mounted elsewhere."),
    ] = None,
    model: str | None = None,
) -> None:
    """Export each active route as a PEFT LoRA folder and print the vLLM command that serves them all;
    with --to (or backend = openai:URL), make the running server serve exactly them (new versions
    replace old ones, retired routes are unloaded)."""
    from learner.model.remote import backend_url
    from learner.model.serving import (
        RUNTIME_LORA_ENV,
        export_active_routes,
        max_lora_rank,
        publish,
        shell_line,
        vllm_command,
    )

    settings = ready_settings(model)
    target = to if to is not None else (settings.backend if settings.uses_remote_backend else None)
    folder = (out or settings.served_dir).expanduser().resolve()
    try:
        url = backend_url(target if target.startswith("openai:") else f"openai:{target}") if target else None
        from learner.model.runtime import load_runtime

        runtime = load_runtime(settings)
        with _store(settings) as store:
            exported = export_active_routes(settings, store, folder, runtime.model)
        model_dir = _served_model_dir(settings)
        seen = {e.route: (server_dir / e.path.relative_to(folder) if server_dir else e.path) for e in exported}
        rank = max_lora_rank([e.rank for e in exported])
        served_name = settings.model.removeprefix("embedded:") if settings.uses_embedded_model else model_dir.name
        command = vllm_command(model_dir, seen, served_name=served_name, host="0.0.0.0", rank=rank)
        report = publish(url, seen) if url else None
    except (SleepyCoderError, RuntimeError) as exc:
        raise fail(str(exc).splitlines()[0]) from None
    for e in exported:
        console.print(f"{e.route}: {e.version} -> {e.path}")
    if not exported:
        console.print("no active adapters: every route uses the base model")
    console.print("\n[bold]Serve them with vLLM[/] (the laptop then sets backend = openai:http://HOST:8000/v1):")
    console.print(escape(shell_line(command, {RUNTIME_LORA_ENV: "True"})), soft_wrap=True)
    if report is not None:
        console.print(
            f"\n[green]published[/] to {url}: loaded {', '.join(report.loaded) or 'none'}; "
            f"unloaded {', '.join(report.unloaded) or 'none'}; unchanged {', '.join(report.unchanged) or 'none'}"
        )


def _served_model_dir(settings: Settings) -> Path:
    """The base model's folder for vLLM: the prepared bf16 copy of an embedded model, or the folder given."""
    if settings.uses_embedded_model:
        from learner.model.assets import prepare_embedded_model

        return prepare_embedded_model(settings)
    return Path(settings.model).expanduser()


# ----------------------------------------------------------------------------- data


@data_app.command("export")
def data_export(
    out: Annotated[Path | None, typer.Option("--out", help="File to write (default: standard output).")] = None,
) -> None:
    """Every record as JSON Lines (a consistent snapshot, even while the editor writes)."""
    settings = ready_settings()
    with _store(settings) as store:
        if out is None:
            store.export_jsonl(sys.stdout)
            return
        with open(out, "w", encoding="utf-8") as fp:
            rows = store.export_jsonl(fp)
    err_console.print(f"wrote {rows} records to {out}")


def parse_date(text: str) -> datetime:
    """``YYYY-MM-DD`` or a full ISO timestamp; naive values are local time."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date (use YYYY-MM-DD or an ISO timestamp)") from None
    return moment if moment.tzinfo else moment.astimezone()


@data_app.command("forget")
def data_forget(
    before: Annotated[
        str | None, typer.Option("--before", help="Only records older than this date (YYYY-MM-DD).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete your recorded fixes (all, or older than --before) and the training sets built from them."""
    from learner.learn.forget import forget

    cutoff = parse_date(before) if before else None
    what = f"records older than {cutoff.isoformat()}" if cutoff else "ALL recorded diagnostics, fixes and outcomes"
    if not yes and not typer.confirm(f"Delete {what} and the training sets derived from them?"):
        raise typer.Exit(code=1)
    settings = ready_settings()
    with _store(settings) as store:
        forgotten = forget(settings, store, before=cutoff)
    counts = ", ".join(f"{n} {table}" for table, n in forgotten.counts.items())
    console.print(f"deleted {counts}; removed {len(forgotten.files)} training file(s)")
    for path in forgotten.files:
        console.print(f"  [dim]{escape(path)}[/]")


@data_app.command("quarantine")
def data_quarantine() -> None:
    """Move an unreadable store aside (renamed, never deleted) so a fresh one can start."""
    from learner.store import Store, StoreCorrupt

    settings = settings_from(None)
    if not settings.db_path.exists():
        console.print(f"there is no store at {settings.db_path}: nothing to do")
        return
    try:
        Store.open(settings).close()
    except StoreCorrupt:
        target = Store.quarantine(settings.db_path)
        console.print(f"moved the unreadable store to {target}; the next run starts a fresh one")
        return
    except SleepyCoderError as exc:
        raise fail(str(exc)) from None
    console.print(f"the store at {settings.db_path} is readable: nothing was moved")


@data_app.command("retention")
def data_retention() -> None:
    """Apply ``retention_days`` now (the learner also does it at the start of every cycle)."""
    from learner.learn.forget import apply_retention

    settings = ready_settings()
    if settings.retention_days <= 0:
        console.print("retention is off (retention_days = 0): nothing is deleted")
        return
    with _store(settings) as store:
        forgotten = apply_retention(settings, store, settings.retention_days)
    console.print(
        f"kept the last {settings.retention_days} days: deleted {forgotten.total} records, "
        f"{len(forgotten.files)} training file(s)"
    )


# ----------------------------------------------------------------------------- status


def _disk_use(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def status_data(settings: Settings) -> dict[str, Any]:
    """What ``status`` shows, as plain data (also ``status --json``)."""
    from learner.learn.daemon import running_pid
    from learner.store import Store

    pid = running_pid(settings)
    with Store.open(settings) as store:
        cycles = store.cycles(limit=1)
        counts = store.route_counts()
        active = store.active_versions()
        learner_beat = store.last_heartbeat("learner")
        server_beat = store.last_heartbeat("server")
        candidates = len(store.adapters(status="candidate"))
    last = cycles[0] if cycles else None
    scores: dict[str, Any] = {}
    for version in active.values():
        scores.update(version.metrics.get("gate", {}).get("scores", {}))
    return {
        "learner": {
            "running": pid is not None,
            "pid": pid,
            "last_heartbeat": learner_beat.isoformat() if learner_beat else None,
        },
        "server_last_activity": server_beat.isoformat() if server_beat else None,
        "last_cycle": None
        if last is None
        else {
            "id": last.id,
            "started_at": last.started_at.isoformat(),
            "finished_at": last.finished_at.isoformat() if last.finished_at else None,
            "state": last.state,
            "outcome": last.outcome,
            "details": last.details,
        },
        "routes": {route: {"examples": kinds, "scores": scores.get(route)} for route, kinds in sorted(counts.items())},
        "active": {route: v.version for route, v in sorted(active.items())},
        "candidates": candidates,
        "disk_bytes": {"data": _disk_use(settings.data_dir), "cache": _disk_use(settings.cache_dir)},
        "checked_at": datetime.now(UTC).isoformat(),
    }


def status(as_json: JsonOption = False) -> None:
    """Learner state, last cycle, per-route examples and scores, active adapters, disk use."""

    settings = ready_settings()
    try:
        data = status_data(settings)
    except SleepyCoderError as exc:
        raise fail(str(exc)) from None
    if as_json:
        console.print_json(json.dumps(data, default=str))
        return
    learner = data["learner"]
    state = f"[green]running[/] (pid {learner['pid']})" if learner["running"] else "not running"
    console.print(f"[bold]learner[/]: {state}")
    last = data["last_cycle"]
    if last:
        outcome = last["outcome"] or f"in progress ({last['state']})"
        console.print(f"[bold]last cycle[/] #{last['id']} {last['started_at'][:19]}: {escape(outcome)}")
        reason = last["details"].get("gate", {}).get("reason") or last["details"].get("error")
        if reason:
            console.print(f"  [dim]{escape(str(reason))}[/]")
    else:
        console.print("[bold]last cycle[/]: none yet")
    table = Table("route", "accepted", "edited", "rejected", "held-out score (before -> after)")
    for route, info in data["routes"].items():
        kinds, score = info["examples"], info["scores"]
        shown = f"{_fraction(score['before'])} -> {_fraction(score['after'])}" if score else ""
        table.add_row(route, *(str(kinds.get(k, 0)) for k in ("accepted", "edited", "rejected")), shown)
    console.print(table)
    active = ", ".join(f"{r}: {v}" for r, v in data["active"].items()) or "none (base model)"
    console.print(f"[bold]active adapters[/]: {active}; {data['candidates']} candidate(s) waiting")
    disk = data["disk_bytes"]
    console.print(f"[bold]disk[/]: data {disk['data'] / 1e6:.1f} MB, cache {disk['cache'] / 1e6:.1f} MB")


def register(app: typer.Typer) -> None:
    app.add_typer(adapters_app, name="adapters")
    app.add_typer(data_app, name="data")
    app.command("status")(status)
