"""One exception tree: every error the product raises derives from SleepyCoderError.

So a layer can catch the tree (an expected failure, with a message the user can act on) and
let everything else, a bug, reach the one process boundary that logs it.
"""

from __future__ import annotations

import importlib
import inspect

from learner.errors import SleepyCoderError
from tests.test_layers import project_modules


def product_exceptions() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in project_modules():
        if name.endswith("__main__"):
            continue
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[k] for k in sorted(found)]


#: Control-flow signals, not errors: BaseExceptions on purpose, so no ``except SleepyCoderError`` swallows them.
SIGNALS = {"learner.learn.idle.LearningPaused"}


def test_every_product_exception_derives_from_sleepy_coder_error() -> None:
    exceptions = product_exceptions()
    assert len(exceptions) >= 20  # the walk really found the tree
    outside = [
        name
        for e in exceptions
        if not issubclass(e, SleepyCoderError) and (name := f"{e.__module__}.{e.__qualname__}") not in SIGNALS
    ]
    assert not outside, "exceptions outside the tree: " + ", ".join(outside)


def test_signals_are_not_errors() -> None:
    signals = [e for e in product_exceptions() if f"{e.__module__}.{e.__qualname__}" in SIGNALS]
    assert len(signals) == len(SIGNALS)
    assert all(not issubclass(e, Exception) for e in signals)
