"""sleepy-coder's local backend: diagnostics, router, fix sources, verifier, store, learner."""

__version__ = "0.1.0"
