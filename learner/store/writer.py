"""A single background thread for store writes, so the LSP server never waits on the disk.

Why apart from the store: it knows nothing about tables; it runs any callable (usually a bound
``Store.record_*`` method) in submission order and hands back a :class:`~concurrent.futures.Future`.
"""

from __future__ import annotations

import atexit
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from learner.store.db import log
from learner.store.errors import StoreError

T = TypeVar("T")


@dataclass
class _Job:
    """One submitted call; the caller holds ``future``, so a failure reaches it instead of the thread."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: Future[Any] = field(default_factory=Future)


class AsyncWriter:
    """Runs store writes on one background thread, in submission order.

    Why: the LSP server must answer the editor at once; a write that waits on the disk or on
    the learner's transaction (up to the busy timeout) must not stall it. Failures are logged
    and set on the returned future; they never kill the thread. Call :meth:`close` (or use it
    as a context manager) before closing the store; at interpreter exit it is closed for you,
    so queued writes are not dropped with the daemon thread.
    """

    def __init__(self, name: str = "sleepy-coder-store-writer") -> None:
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._closed = False
        self._guard = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        job = _Job(fn, args, kwargs)
        with self._guard:
            if self._closed:
                raise StoreError("the background store writer is closed")
            self._queue.put(job)
        return job.future

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything submitted so far has been written (or failed)."""
        self.submit(lambda: None).result(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Finish the queued writes, then stop the thread. Idempotent."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        atexit.unregister(self.close)
        self._thread.join(timeout)

    def __enter__(self) -> AsyncWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                job.future.set_result(job.fn(*job.args, **job.kwargs))
            except BaseException as e:
                log.warning("background store write %s failed: %s", getattr(job.fn, "__name__", job.fn), e)
                job.future.set_exception(e)
