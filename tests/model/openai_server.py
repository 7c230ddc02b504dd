"""A small OpenAI-compatible server for the client's fast tests: real HTTP, real server-sent events.

It answers ``GET /v1/models`` and streamed ``POST /v1/chat/completions`` with a local
:class:`~learner.model.runtime.ModelRuntime` (the tiny model), listing each route as a LoRA
model whose ``parent`` is the base model, the way vLLM lists its adapters; a request for model R
generates with route R's adapter. The real engine is tested in ``test_vllm_routes.py``; this
one starts in milliseconds and can be stopped mid-test to play a server that went down.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from learner.model.runtime import ModelRuntime


class OpenAITestServer:
    """Serves ``runtime`` as ``base`` plus one model per name in ``routes``, on 127.0.0.1."""

    def __init__(self, runtime: ModelRuntime, base: str = "tiny-base", routes: tuple[str, ...] = ()) -> None:
        self.runtime = runtime
        self.base = base
        self.routes = set(routes)
        #: The folder each adapter was loaded from (vLLM's ``root``), for the publish tests.
        self.roots: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                return

            def do_GET(self) -> None:
                if self.path != "/v1/models":
                    return self._json(404, {"error": {"message": f"no route {self.path}"}})
                data = [{"id": server.base, "object": "model", "parent": None}]
                data += [
                    {"id": r, "object": "model", "parent": server.base, "root": server.roots.get(r, f"/adapters/{r}")}
                    for r in server.routes
                ]
                self._json(200, {"object": "list", "data": data})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                server.requests.append(body)
                if self.path in ("/v1/load_lora_adapter", "/v1/unload_lora_adapter"):
                    return self._adapters(body)
                model = body.get("model")
                if model != server.base and model not in server.routes:
                    return self._json(404, {"error": {"message": f"The model `{model}` does not exist."}})
                route = None if model == server.base else model
                n, temperature = int(body.get("n", 1)), float(body.get("temperature", 0.0))
                options = {"max_new_tokens": int(body["max_tokens"]), "route": route}
                if n == 1 and temperature == 0:
                    answers = [server.runtime.generate(body["messages"], **options)]
                else:
                    answers = server.runtime.generate_batch(
                        body["messages"],
                        n,
                        temperature=temperature,
                        seed=body.get("seed"),
                        greedy_first=False,
                        **options,
                    )
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for index, answer in enumerate(answers):
                    pieces = [answer.text[i : i + 7] for i in range(0, len(answer.text), 7)]
                    for piece in pieces:
                        chunk = {"choices": [{"index": index, "delta": {"content": piece}, "finish_reason": None}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")

            def _adapters(self, body: dict[str, Any]) -> None:
                """vLLM's runtime adapter endpoints (VLLM_ALLOW_RUNTIME_LORA_UPDATING=True)."""
                name = body.get("lora_name")
                if self.path.endswith("/load_lora_adapter"):
                    if name in server.routes:
                        return self._json(
                            400, {"error": {"message": f"The lora adapter '{name}' has already been loaded."}}
                        )
                    server.routes.add(name)
                    server.roots[name] = body["lora_path"]
                elif name in server.routes:
                    server.routes.discard(name)
                    server.roots.pop(name, None)
                else:
                    return self._json(404, {"error": {"message": f"The lora adapter '{name}' cannot be found."}})
                self._json(200, {"ok": True})

            def _json(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> OpenAITestServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop answering and close the port (a server that went down)."""
        self._httpd.shutdown()
        self._httpd.server_close()
