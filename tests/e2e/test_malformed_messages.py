"""1,000 malformed or out-of-order messages written raw to the server's stdin; it must still answer."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(60)


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def message(payload: Any) -> bytes:
    return frame(json.dumps(payload).encode())


class Reader(threading.Thread):
    """Collects every framed message the server writes, so the pipe never fills up."""

    def __init__(self, stream: Any) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.messages: list[dict[str, Any]] = []

    def run(self) -> None:
        while True:
            length = None
            while True:
                line = self.stream.readline()
                if not line:
                    return
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                if line in (b"\r\n", b"\n"):
                    break
            if length is not None:
                self.messages.append(json.loads(self.stream.read(length)))

    def response(self, msg_id: Any, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in list(self.messages):
                if m.get("id") == msg_id and ("result" in m or "error" in m):
                    return m
            time.sleep(0.02)
        raise AssertionError(f"no response to request {msg_id!r}")


def garbage(rng: random.Random, i: int, uri: str) -> bytes:
    """One bad message of many kinds (ids are strings 'bad-N' so answers are recognisable)."""
    rid = f"bad-{i}"
    kinds = [
        lambda: frame(b"{not json" + bytes([rng.randrange(256) for _ in range(8)])),
        lambda: frame(b"[1, 2, 3]"),
        lambda: frame(b'"just a string"'),
        lambda: message({"jsonrpc": "2.0", "id": rid, "method": "textDocument/codeAction", "params": 42}),
        lambda: message({"jsonrpc": "2.0", "id": rid, "method": "textDocument/codeAction", "params": {"x": []}}),
        lambda: message({"jsonrpc": "2.0", "id": rid, "method": "no/suchMethod", "params": {}}),
        lambda: message({"jsonrpc": "2.0", "method": "no/suchNotification", "params": [1]}),
        lambda: message({"jsonrpc": "1.0", "id": rid, "method": "shutdown"}),
        lambda: message({"jsonrpc": "2.0", "id": 10**30 + i, "method": "workspace/executeCommand", "params": {}}),
        lambda: message(
            {"jsonrpc": "2.0", "id": rid, "method": "workspace/executeCommand", "params": {"command": "nope"}}
        ),
        lambda: message(
            {
                "jsonrpc": "2.0",
                "id": rid,
                "method": "workspace/executeCommand",
                "params": {"command": "sleepy-coder.accept", "arguments": [{"not": "an id"}]},
            }
        ),
        lambda: message(
            {
                "jsonrpc": "2.0",
                "id": rid,
                "method": "textDocument/codeAction",
                "params": {
                    "textDocument": {"uri": uri + f"?{i}"},
                    "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}},
                    "context": {"diagnostics": []},
                },
            }
        ),
        lambda: message({"jsonrpc": "2.0", "id": rid, "method": "codeAction/resolve", "params": {"title": 5}}),
        lambda: message(
            {"jsonrpc": "2.0", "id": rid, "method": "codeAction/resolve", "params": {"title": "x", "data": [1]}}
        ),
        lambda: message({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": 3}}),
        lambda: message({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": f"never-{i}"}}),
        lambda: message({"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration", "params": {"settings": 7}}),
        lambda: message(
            {"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration", "params": {"settings": {"attempts": "x"}}}
        ),
        lambda: message({"jsonrpc": "2.0", "id": {"an": "object"}, "method": "shutdown"}),
        lambda: b"Content-Type: nothing\r\n\r\n",
    ]
    return rng.choice(kinds)()


def test_thousand_malformed_messages_leave_the_server_answering(tmp_path: Path) -> None:
    env = {**os.environ, "SLEEPY_CODER_HOME": str(tmp_path / "home")}
    server = subprocess.Popen(
        [sys.executable, "-m", "lsp_server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert server.stdin is not None and server.stdout is not None
    reader = Reader(server.stdout)
    reader.start()
    uri = (tmp_path / "nowhere" / "main.rs").as_uri()
    rng = random.Random(5)
    started = time.monotonic()
    try:
        # Requests before initialize, then initialize, then the rest out of order.
        for i in range(200):
            server.stdin.write(garbage(rng, i, uri))
        server.stdin.write(message({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {}}))
        server.stdin.write(
            message({"jsonrpc": "2.0", "id": "init-2", "method": "initialize", "params": {"capabilities": {}}})
        )
        for i in range(200, 1000):
            server.stdin.write(garbage(rng, i, uri))
        server.stdin.write(message({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
        status = {"command": "sleepy-coder.status", "arguments": []}
        ok_request = {"jsonrpc": "2.0", "id": "ok", "method": "workspace/executeCommand", "params": status}
        server.stdin.write(message(ok_request))
        server.stdin.flush()

        answer = reader.response("ok")
        assert answer["result"]["modelState"] in ("not-loaded", "off")
        assert server.poll() is None, "the server is still running"
        # Every well-framed request with a usable id got an answer, mostly an error.
        bad = [m for m in reader.messages if str(m.get("id", "")).startswith("bad-")]
        assert bad and all("error" in m or "result" in m for m in bad)
        assert any(m.get("error", {}).get("code") == -32602 for m in bad), "invalid params are answered as such"
        assert time.monotonic() - started < 20
    finally:
        server.kill()
        server.wait()
