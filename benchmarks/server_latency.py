"""Editor-facing latency of the language server while the model is generating (run by hand).

Starts the real server over stdio on a fixture crate with the embedded model, then measures:

1. codeAction (no resolve) and ``sleepy-coder.status`` latency with the server idle;
2. the same while a ``codeAction/resolve`` model generation is running (target: p99 < 50 ms);
3. codeAction/resolve wall time (model already loaded) against the same model fix done in
   process the way the CLI does it (``pipeline.fix_diagnostic`` with ``ModelFixSource``).

    python benchmarks/server_latency.py [--attempts 1] [--max-new-tokens 128] [--runs 3]

The store goes to a temporary data dir; the prepared model is read from the usual cache.
Skips with a message when the embedded model is not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lsprotocol import types

from learner.config import Settings
from learner.fix.pipeline import check_path, fix_diagnostic
from learner.fix.sources import ModelFixSource
from learner.model.assets import EmbeddedModelMissing, embedded_parts
from learner.model.handle import RuntimeHandle
from tests.e2e.lsp_helpers import code_actions, open_file, save_file, start, stop, wait_until
from tests.rust_fixtures import TWO_TYPE_ERRORS, make_crate


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def show(name: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    print(f"{name:<44} n={len(ms):>4}  p50={pct(ms, 0.5):7.2f} ms  p99={pct(ms, 0.99):7.2f} ms  max={max(ms):7.2f} ms")


async def timed(call) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="sc-latency-"))
    crate = make_crate(work / "crate", {"src/main.rs": TWO_TYPE_ERRORS})
    options = {"dataDir": str(work / "data"), "attempts": args.attempts, "maxNewTokens": args.max_new_tokens}
    client, _ = await start(crate, "visual-studio-code", options)
    main_rs = crate / "src" / "main.rs"
    try:
        uri = open_file(client, main_rs)
        diags = await wait_until(lambda: [d for d in client.diagnostics.get(uri, []) if d.code], timeout=120)
        diag = diags[0]

        async def action() -> None:
            await code_actions(client, uri, diag)

        async def status() -> None:
            await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="sleepy-coder.status", arguments=[])
            )

        show("idle: codeAction", [await timed(action) for _ in range(200)])
        show("idle: sleepy-coder.status", [await timed(status) for _ in range(100)])

        resolve_times: list[float] = []
        busy_actions: list[float] = []
        busy_status: list[float] = []
        for run in range(args.runs + 1):  # run 0 loads the model
            actions = await code_actions(client, uri, diag)
            [model] = [a for a in actions if isinstance(a, types.CodeAction) and a.data]
            started = time.perf_counter()
            pending = asyncio.ensure_future(client.code_action_resolve_async(model))
            while not pending.done():
                busy_actions.append(await timed(action))
                busy_status.append(await timed(status))
                await asyncio.sleep(0.01)
            resolved = await pending
            took = time.perf_counter() - started
            print(f"resolve run {run}: {took:6.2f} s -> {resolved.title!r}")
            if run > 0:
                resolve_times.append(took)
            save_file(client, main_rs, main_rs.read_text() + "\n", version=run + 2)  # a new version: no cache
            await asyncio.sleep(1.5)
            diags = await wait_until(lambda: [d for d in client.diagnostics.get(uri, []) if d.code], timeout=120)
            diag = diags[0]
        show("during generation: codeAction", busy_actions)
        show("during generation: sleepy-coder.status", busy_status)
        print(f"codeAction/resolve p50 (model loaded): {statistics.median(resolve_times):.2f} s")
    finally:
        await stop(client)

    settings = Settings.from_mapping(options)
    handle = RuntimeHandle(settings)
    handle.get()
    session = check_path(main_rs, settings)
    cli_times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        fix_diagnostic(session, session.errors[0], [ModelFixSource(handle)], settings=settings)
        cli_times.append(time.perf_counter() - started)
    print(f"CLI path model fix p50 (model loaded):   {statistics.median(cli_times):.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=1)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    try:
        embedded_parts()
    except EmbeddedModelMissing as exc:
        print(f"skipped: {exc}")
        sys.exit(0)
    asyncio.run(main(parser.parse_args()))
