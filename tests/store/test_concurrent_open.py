"""Several processes opening one fresh store at the same moment all get it.

Two evaluations (or the server and the learner) started together on a new data folder both
switch the new file to WAL. SQLite refuses one of two such switches at once rather than wait
(it would deadlock), so the busy timeout alone let about one round in eight fail here.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

PROCESSES = 6
ROUNDS = 8


def _open_each_round(folder: str, barrier: Barrier, results: Any) -> None:
    from learner.store import Store

    for n in range(ROUNDS):
        barrier.wait()
        try:
            Store(Path(folder) / str(n) / "sleepy-coder.sqlite3").close()
            results.put((n, "ok"))
        except Exception as exc:  # reported to the test, which names it
            results.put((n, repr(exc)))


def test_processes_opening_a_fresh_store_together_all_get_it(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold torch threads
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    workers = [
        context.Process(target=_open_each_round, args=(str(tmp_path), barrier, results)) for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in range(PROCESSES * ROUNDS)]
    for worker in workers:
        worker.join(timeout=60)
    failures = [(n, outcome) for n, outcome in outcomes if outcome != "ok"]
    assert not failures, failures
    assert all((tmp_path / str(n) / "sleepy-coder.sqlite3").is_file() for n in range(ROUNDS))
