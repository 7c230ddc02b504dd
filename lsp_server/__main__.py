"""``python -m lsp_server``: serve over stdio."""

from lsp_server.server import main

main()
