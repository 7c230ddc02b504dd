"""The editor-facing layer: a thin pygls language server over the ``learner`` pipeline.

``learner`` never imports this package; the server and the learner process share only the
SQLite store and the adapter files it names. Start it with ``sleepy-coder serve`` or
``python -m lsp_server`` (stdio).
"""
