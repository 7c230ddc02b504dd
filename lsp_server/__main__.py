"""``python -m lsp_server``: serve over stdio."""

from lsp_server.app import main

main()
