"""Building and starting the language server: the one place that wires the handlers to the server object.

``server.py`` owns the state and the work, ``handlers.py`` translates LSP messages into calls
on it; this module joins the two, so neither has to import the other's importer.
"""

from __future__ import annotations

import logging

from learner.config import Settings
from lsp_server.handlers import register
from lsp_server.server import SleepyServer


def create_server(settings: Settings | None = None) -> SleepyServer:
    """A server with every LSP feature and command registered, not yet connected to a client."""
    server = SleepyServer(settings)
    register(server)
    return server


def main() -> None:
    """Serve over stdio (what ``sleepy-coder serve`` and ``python -m lsp_server`` run)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    logging.getLogger("lsp_server").setLevel(logging.INFO)
    create_server().start_io()
