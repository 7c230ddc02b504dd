"""Writes what the editor saw and did into the feedback store, without ever blocking the editor.

Every write goes through one :class:`~learner.store.AsyncWriter` thread, in order, so a
suggestion is always stored before its outcome. Nothing is recorded when learning is turned off
or for files matching ``exclude_globs``; a store that cannot be opened (corrupt, too new) turns
recording off and the server keeps serving fixes.
"""

from __future__ import annotations

import fnmatch
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from learner.config import Settings
from learner.fix.router import route_for
from learner.records import RustDiagnostic
from learner.rust.toolchain import rustc_version
from learner.store import AsyncWriter, FixRecord, KeptRange, Store, StoreError
from lsp_server.fixes import Offer, ShownOffer

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The idle learner only needs to know the user is around; one heartbeat per this many seconds.
HEARTBEAT_EVERY_S = 30.0


class Recorder:
    """The server's one door to the store: ``store`` is None when it could not be opened."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: Store | None = None
        #: Why the store is unavailable, for the user (None while it works).
        self.problem: str | None = None
        self.writer = AsyncWriter()
        self._last_heartbeat: float | None = None

    def open(self) -> None:
        """Open (or reopen, after a settings change) the store; the previous connection is closed first."""
        if self.store is not None:
            self.writer.flush(timeout=5)
            self.store.close()
            self.store = None
        try:
            self.settings.ensure_dirs()
            self.store = Store.open(self.settings)
            self.problem = None
        except (StoreError, OSError) as exc:
            self.store = None
            self.problem = f"the feedback store cannot be used, so nothing will be recorded: {exc}"
            log.warning("%s", self.problem)

    def close(self) -> None:
        """Finish queued writes and close; later calls record nothing (they never raise)."""
        self.writer.close(timeout=5)
        if self.store is not None:
            self.store.close()
            self.store = None

    def excluded(self, root: Path, file: str) -> bool:
        """Learning is off, or the user asked that this file's code is never recorded."""
        if not self.settings.learning_enabled:
            return True
        absolute = str(root / file)
        return any(fnmatch.fnmatch(file, g) or fnmatch.fnmatch(absolute, g) for g in self.settings.exclude_globs)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T] | None:
        """Queue ``fn(store, *args)``; None when there is no store."""
        store = self.store
        if store is None:
            return None
        return self.writer.submit(fn, store, *args)

    # ----- what the server records

    def diagnostic(self, root: Path, edition: str, diag: RustDiagnostic, context: str) -> None:
        span = diag.primary_span
        if span is not None and not self.excluded(root, span.file):
            self.submit(_record_diagnostic, root, edition, diag, context)

    def offer(self, edition: str, shown: ShownOffer, context: str) -> Future[str] | None:
        """Record one showing of a verified fix (its own offer id, document and version)."""
        if self._offer_excluded(shown.offer):
            return None
        return self.submit(_record_offer, edition, shown, context)

    def refused(self, edition: str, offer: Offer, context: str) -> Future[int] | None:
        """Record a candidate the verifier refused: a suggestion for the learner, never an offer."""
        if self._offer_excluded(offer):
            return None
        return self.submit(_record_refused, edition, offer, context)

    def outcome(
        self, shown: ShownOffer, kind: str, final_code: str | None = None, final_ranges: tuple[KeptRange, ...] = ()
    ) -> Future[bool] | None:
        """Record what the user did with an offer; nothing for an offer that was never recorded
        (learning off, or an excluded file)."""
        if self._offer_excluded(shown.offer):
            return None
        return self.submit(_record_outcome, shown.offer_id, kind, final_code, final_ranges)

    def own_fix(
        self, edition: str, shown: ShownOffer, context: str, final_code: str, final_ranges: tuple[KeptRange, ...]
    ) -> Future[bool] | None:
        """Record a fix the user wrote by hand for an error nothing verified was offered for: the fix
        (source ``user``, verified by the check that found its item clean), one offer row for it and
        its ``edited`` outcome with their code. Never shown: the offer row is where the outcome hangs."""
        if self._offer_excluded(shown.offer):
            return None
        return self.submit(_record_own_fix, edition, shown, context, final_code, final_ranges)

    def _offer_excluded(self, offer: Offer) -> bool:
        span = offer.diagnostic.primary_span
        return span is None or self.excluded(offer.root, span.file)

    def heartbeat(self) -> None:
        now = time.monotonic()
        if self._last_heartbeat is None or now - self._last_heartbeat >= HEARTBEAT_EVERY_S:
            self._last_heartbeat = now
            self.submit(_heartbeat)


def _record_diagnostic(store: Store, root: Path, edition: str, diag: RustDiagnostic, context: str) -> int:
    return store.record_diagnostic(
        diag, crate=root, route=route_for(diag).name, toolchain=rustc_version(), edition=edition, context=context
    )


def _record_offer(store: Store, edition: str, shown: ShownOffer, context: str) -> str:
    fix = _record_fix(store, edition, shown.offer, context, verified=True)
    return store.record_offer_of(
        fix, offer_id=shown.offer_id, document_uri=shown.uri, document_version=shown.version
    ).offer_id


def _record_own_fix(
    store: Store, edition: str, shown: ShownOffer, context: str, final_code: str, final_ranges: tuple[KeptRange, ...]
) -> bool:
    fix = _record_fix(store, edition, shown.offer, context, verified=True)
    store.record_offer_of(fix, offer_id=shown.offer_id, document_uri=shown.uri, document_version=shown.version)
    return store.record_outcome(shown.offer_id, "edited", final_code, final_ranges)


def _record_refused(store: Store, edition: str, offer: Offer, context: str) -> int:
    return _record_fix(store, edition, offer, context, verified=False).id


def _record_fix(store: Store, edition: str, offer: Offer, context: str, *, verified: bool) -> FixRecord:
    """The diagnostic in its context, then the fix for it (verified or refused)."""
    diag_id = _record_diagnostic(store, offer.root, edition, offer.diagnostic, context)
    return store.record_suggestion(
        diag_id,
        offer.candidate,
        before_text=offer.before_text,
        after_text=offer.after_text,
        verified=verified,
        verdict_reason=offer.verdict.reason,
    )


def _record_outcome(
    store: Store, offer_id: str, kind: str, final_code: str | None, final_ranges: tuple[KeptRange, ...]
) -> bool:
    return store.record_outcome(offer_id, kind, final_code, final_ranges)


def _heartbeat(store: Store) -> None:
    store.heartbeat("server")
