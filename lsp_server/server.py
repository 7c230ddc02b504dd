"""The sleepy-coder language server: one :class:`SleepyServer` holds all state.

State (and nothing else is mutable at module level): the settings, the lazily loaded model
(:class:`~learner.model.handle.RuntimeHandle`), the store behind an async writer, the latest
check of each crate (its diagnostics and rustc's verified suggestions, which are the fix cache
keyed by document version and error key), the model results per ``uri@version`` + error key, the
offered-fix registry, the feedback watcher and the pending check per crate.

Threads: the event loop only translates and answers. cargo runs on a check pool (one run per
crate at a time, debounced, a superseded run cancelled), the model on its own single thread
(so it never delays a code action), store reads on an I/O thread and store writes on the
writer thread. ``codeAction/resolve`` is a coroutine awaiting the model thread, so
``$/cancelRequest`` cancels it and the cancel event stops the generation.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcInvalidRequest
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method
from pygls.uris import from_fs_path, to_fs_path

from learner import __version__
from learner.config import Settings
from learner.errors import NotACrate, SleepyCoderError
from learner.fix.router import route_for
from learner.model.handle import ModelUnavailable, RuntimeHandle
from learner.model.hotswap import HotSwap
from learner.progress import Progress, no_progress
from learner.records import RustDiagnostic
from learner.rust.check import CheckCancelled
from learner.store import AdapterVersion, StoreError, new_offer_id
from lsp_server import convert
from lsp_server.adapters import active_map, attach_active, change_between
from lsp_server.analysis import CrateCheck, OpenDocument, check_crate, model_fix, verify_rustc
from lsp_server.feedback import FeedbackTracker, Outcome, TextChange, item_files, offset_at, watched_files
from lsp_server.fixes import ErrorOffers, FixRegistry, ModelResult, Offer, ShownOffer
from lsp_server.own_fixes import PendingFix, own_fix_offer, still_reported, written_fix
from lsp_server.recorder import Recorder

log = logging.getLogger(__name__)
T = TypeVar("T")

ADAPTERS_CHANGED = "sleepy-coder/adaptersChanged"
#: Background model fixes per check: the errors nearest the user's line (each takes seconds).
BACKGROUND_ERRORS = 2
SECTION = "sleepyCoder"


@dataclass(frozen=True)
class DocumentView:
    """An open document whose latest check is still valid for its current version."""

    uri: str
    version: int | None
    path: Path
    check: CrateCheck

    @property
    def errors(self) -> list[RustDiagnostic]:
        return self.check.errors_in(self.path)

    @property
    def sources(self) -> convert.Sources:
        return convert.Sources(self.check.root, self.check.sources)

    @property
    def versions(self) -> dict[str, int | None]:
        """The version of each open document the check (and so its fixes) saw; this document's is
        its current one, whose text is the checked text."""
        return {**{doc.uri: doc.version for doc in self.check.documents.values()}, self.uri: self.version}


class SleepyProtocol(LanguageServerProtocol):
    """Answers a request whose params do not fit the method with an InvalidParams error (pygls
    only logs those, which would leave the client waiting for ever), and refuses a second ``initialize``."""

    _initialize_seen = False

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams) -> Generator[Any, Any, types.InitializeResult]:
        """Initialise once: a second ``initialize`` would replace the workspace and lose every open document."""
        if self._initialize_seen:
            raise JsonRpcInvalidRequest("the server is already initialized; a second initialize request is refused")
        self._initialize_seen = True
        return (yield from super().lsp_initialize(params))

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException:
            msg_id = data.get("id") if isinstance(data, dict) else None
            if "method" in data and isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool):
                error = JsonRpcInvalidParams(f"invalid params for {data.get('method')!r}")
                self._send_response(msg_id, error=error.to_response_error())
            raise


def path_of(uri: str) -> Path | None:
    """The file a URI names, or None when it names none (not ``file:``, or unusable: a NUL byte, a loop)."""
    fs_path = to_fs_path(uri) if uri.startswith("file:") else None
    if not fs_path:
        return None
    try:
        return Path(fs_path).resolve()
    except (ValueError, OSError, RuntimeError):  # embedded NUL, a path the OS refuses, a symlink loop
        return None


def crate_guess(path: Path) -> str:
    """Cheap key for debouncing: the nearest directory with a Cargo.toml, or the file itself."""
    for parent in path.parents:
        if (parent / "Cargo.toml").is_file():
            return str(parent)
    return str(path)


def settings_section(values: Any) -> dict[str, Any]:
    """The ``sleepyCoder`` object of initializationOptions or didChangeConfiguration (or the object itself)."""
    if not isinstance(values, dict):
        return {}
    inner = values.get(SECTION)
    return inner if isinstance(inner, dict) else values


class SleepyServer(LanguageServer):
    """The language server and every piece of state it keeps."""

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__("sleepy-coder", __version__, protocol_cls=SleepyProtocol, max_workers=4)
        self.settings = settings or Settings()
        self.runtime = RuntimeHandle(self.settings)
        #: Which adapters are attached to the loaded model (the learner promotes, this swaps them in).
        self.hot_swap = HotSwap()
        self.recorder = Recorder(self.settings)
        self.fixes = FixRegistry()
        self.feedback = FeedbackTracker()
        #: The latest check of each crate, by crate key.
        self.checks: dict[str, CrateCheck] = {}
        self.debounce_s = 0.3
        self.adapter_poll_s = 2.0
        self._pending: dict[str, threading.Event] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._published: dict[str, set[str]] = {}
        self._told: set[str] = set()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._active_versions: dict[str, AdapterVersion] | None = None
        #: Where the user works: the document and line of the last edit, open or code-action request.
        self._focus: tuple[str, int] | None = None
        #: Set to stop the background model fixes now running (an edit, or a fix the user asked for).
        self._background: threading.Event | None = None
        #: Errors the user is expected to fix by hand (rejected, or nothing verified offered), by error key.
        self._own_fixes: dict[str, PendingFix] = {}
        self._check_pool = ThreadPoolExecutor(2, thread_name_prefix="sleepy-check")
        self._model_pool = ThreadPoolExecutor(1, thread_name_prefix="sleepy-model")
        self._io_pool = ThreadPoolExecutor(1, thread_name_prefix="sleepy-io")

    # ------------------------------------------------------------------ plumbing

    @property
    def encoding(self) -> str:
        return convert.encoding_name(self.workspace.position_encoding)

    def spawn(self, awaitable: Any) -> asyncio.Future[Any]:
        """Run a coroutine in the background; its failure is logged, never lost."""
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)

        def done(t: asyncio.Future[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task failed", exc_info=t.exception())

        task.add_done_callback(done)
        return task

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a short blocking call (store reads, a process start) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._io_pool, fn, *args)

    def tell(self, message: str, kind: types.MessageType = types.MessageType.Warning, once: str | None = None) -> None:
        """Show ``message`` to the user (once per ``once`` key when given)."""
        if once is not None:
            if once in self._told:
                log.info("%s", message)
                return
            self._told.add(once)
        log.log(logging.INFO if kind == types.MessageType.Info else logging.WARNING, "%s", message)
        self.window_show_message(types.ShowMessageParams(type=kind, message=f"sleepy-coder: {message}"))

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Log protocol errors (bad JSON, unknown notifications) instead of a message box for each."""
        log.warning("protocol error (%s): %s", getattr(source, "__name__", source), error)

    def open_documents(self) -> dict[Path, OpenDocument]:
        found = {}
        for uri, doc in self.workspace.text_documents.items():
            if (path := path_of(uri)) is not None:
                found[path] = OpenDocument(uri, doc.version, doc.source)
        return found

    def uri_for(self, path: Path) -> str:
        """The URI the editor uses for ``path`` (an open document's own), else a file URI."""
        resolved = path.resolve()
        for uri in self.workspace.text_documents:
            if path_of(uri) == resolved:
                return uri
        return from_fs_path(str(resolved)) or resolved.as_uri()

    # ------------------------------------------------------------------ settings and lifecycle

    def configure(self, values: Any) -> None:
        """Apply editor settings (initializationOptions or a configuration change)."""
        try:
            new = Settings.from_mapping(settings_section(values), base=self.settings)
        except (TypeError, ValueError) as exc:
            self.tell(f"ignoring invalid settings ({exc}); keeping the previous ones")
            return
        old, self.settings = self.settings, new
        self.recorder.settings = new
        generation = (
            *("model", "device", "model_enabled", "share_weights", "cache_dir"),  # cache_dir: the model's prepared copy
            *("backend", "backend_model", "backend_timeout_s"),
        )
        if any(getattr(old, name) != getattr(new, name) for name in generation):
            self.runtime = RuntimeHandle(new)
            self.fixes.clear_model_results()
            self._told.discard("model-unavailable")
        if old.db_path != new.db_path and self.recorder.store is not None:
            self.recorder.open()

    def start(self) -> None:
        """After ``initialized``: open the store and start watching for new adapters."""
        self.recorder.open()
        if self.recorder.problem:
            self.tell(self.recorder.problem, once="store")
        self.spawn(self._poll_adapters())

    def stop(self) -> None:
        for cancel in self._pending.values():
            cancel.set()
        for pool in (self._check_pool, self._model_pool, self._io_pool):
            pool.shutdown(wait=False, cancel_futures=True)
        self.recorder.close()

    def activity(self) -> None:
        self.recorder.heartbeat()

    # ------------------------------------------------------------------ checks

    def schedule_check(self, uri: str) -> None:
        """Check the crate of ``uri`` after a short debounce, superseding a pending or running check."""
        path = path_of(uri)
        if path is None or path.suffix != ".rs":
            return
        if not self.settings.trusted:
            self.tell(
                "sleepy-coder does not check this workspace: it is not trusted (trusted = false), and checking "
                "a crate runs its build scripts and proc macros",
                once="untrusted",
            )
            return
        key = crate_guess(path)
        if (previous := self._pending.get(key)) is not None:
            previous.set()
        cancel = threading.Event()
        self._pending[key] = cancel
        self.spawn(self._check(key, path, cancel))

    async def _check(self, key: str, path: Path, cancel: threading.Event) -> None:
        await asyncio.sleep(self.debounce_s)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if cancel.is_set():
                return
            loop = asyncio.get_running_loop()
            try:
                check = await loop.run_in_executor(
                    self._check_pool, check_crate, path, self.settings, cancel, self.open_documents()
                )
                self._install(check)
                self._told = {t for t in self._told if not t.startswith(f"check:{key}:")}
                check.offers = await loop.run_in_executor(self._check_pool, verify_rustc, check, self.settings, cancel)
                self._schedule_background(check)
            except CheckCancelled:
                return
            except NotACrate as exc:
                self.tell(str(exc), once=f"not-a-crate:{path}")
            except SleepyCoderError as exc:  # CheckFailed, ToolchainMissing, SourceUnreadable
                self.tell(str(exc), kind=types.MessageType.Error, once=f"check:{key}:{exc}")
            except Exception as exc:  # a bug must not stop later checks; say so once
                log.exception("checking %s failed", path)
                self.tell(f"checking {path.name} failed unexpectedly: {exc!r}", once=f"check:{key}:bug")
            finally:
                if self._pending.get(key) is cancel:
                    del self._pending[key]

    def _install(self, check: CrateCheck) -> None:
        """Make a finished check current: publish, record its errors, settle watched fixes."""
        self.checks[check.crate.key] = check
        for doc in check.documents.values():
            self.fixes.drop_document(doc.uri, doc.version)
        self._publish(check)
        for diag in check.session.errors:
            self.recorder.diagnostic(check.root, check.crate.edition, diag, check.contexts.get(diag.key, ""))
        self._settle_watches(check)

    def _publish(self, check: CrateCheck) -> None:
        previous = self._published.get(check.crate.key, set())
        if not self.settings.publish_diagnostics:
            return
        sources = convert.Sources(check.root, check.sources)
        current: dict[str, list[types.Diagnostic]] = {}
        for path, diags in check.by_file.items():
            if path not in check.dirty:
                lsp = [convert.to_diagnostic(d, sources, self.uri_for, self.encoding) for d in diags]
                current[self.uri_for(path)] = lsp
        dirty = {self.uri_for(p) for p in check.dirty}
        for uri in previous - current.keys() - dirty:
            current[uri] = []
        versions = {doc.uri: doc.version for doc in check.documents.values()}
        for uri, diagnostics in current.items():
            params = types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=versions.get(uri))
            self.text_document_publish_diagnostics(params)
        self._published[check.crate.key] = {u for u, d in current.items() if d} | (previous & dirty)

    def view_for(self, uri: str) -> DocumentView | None:
        """The document's latest check if it is still valid for the document's current version."""
        path = path_of(uri)
        doc = self.workspace.text_documents.get(uri)
        if path is None or doc is None:
            return None
        for check in reversed(list(self.checks.values())):
            snapshot = check.documents.get(path)
            # The text decides, not the version: an edit undone back to the checked text (so there is
            # nothing to save and no new check) still has that check's fixes.
            if snapshot is not None and doc.source == snapshot.text:
                return DocumentView(uri, doc.version, path, check)
        return None

    # ------------------------------------------------------------------ fixes

    def offers_for(self, view: DocumentView, errors: list[RustDiagnostic]) -> list[ErrorOffers]:
        """rustc's verified fixes (and a finished model fix) for each error, as offers of this
        document version; each is recorded and its ignore timer started the first time it is shown."""
        result = []
        for diag in errors:
            offers = [self._show(view, offer) for offer in view.check.offers.get(diag.key, [])]
            model = self.fixes.model_result(view.uri, view.version, diag.key)
            model_offer = self._show(view, model.offer) if model is not None and model.offer is not None else None
            result.append(ErrorOffers(diag, route_for(diag).name, offers, model, model_offer))
        return result

    def _show(self, view: DocumentView, offer: Offer) -> ShownOffer:
        shown, new = self.fixes.show(offer, view.uri, view.version)
        if new:
            context = view.check.contexts.get(offer.diagnostic.key, "")
            self.recorder.offer(view.check.crate.edition, shown, context)
        if self.feedback.shown(shown.offer_id):
            asyncio.get_running_loop().call_later(self.settings.ignore_timeout_s, self._ignore_elapsed, shown)
        return shown

    def _ignore_elapsed(self, shown: ShownOffer) -> None:
        if self.feedback.ignored(shown.offer_id):
            self.recorder.outcome(shown, "ignored")

    def note_focus(self, uri: str, line: int) -> None:
        """Remember where the user works, so background fixes start with the nearest errors."""
        self._focus = (uri, line)

    def _cancel_background(self) -> None:
        if self._background is not None:
            self._background.set()
            self._background = None

    def _schedule_background(self, check: CrateCheck) -> None:
        """After a check: model fixes, nearest the user's line first, for the focused document's errors
        that rustc has no verified fix for and the model has not answered for this version."""
        if not self.settings.background_fixes or not self.model_available() or self._focus is None:
            return
        uri, line = self._focus
        path = path_of(uri)
        doc = check.documents.get(path) if path is not None else None
        if path is None or doc is None:
            return
        todo = [
            d
            for d in check.errors_in(path)
            if not check.offers.get(d.key) and self.fixes.model_result(uri, doc.version, d.key) is None
        ]
        todo.sort(key=lambda d: abs((d.primary_span.line_start - 1 if d.primary_span else 0) - line))
        if not todo:
            return
        self._cancel_background()
        cancel = threading.Event()
        self._background = cancel
        self.spawn(self._background_fixes(check, uri, doc.version, todo[:BACKGROUND_ERRORS], cancel))

    async def _background_fixes(
        self, check: CrateCheck, uri: str, version: int | None, errors: list[RustDiagnostic], cancel: threading.Event
    ) -> None:
        """One error at a time on the model thread, silently; a result is kept only for the version it
        was computed for, and any edit or user request stops the rest."""
        loop = asyncio.get_running_loop()
        for diag in errors:
            if cancel.is_set():
                return
            result = await loop.run_in_executor(self._model_pool, self._model_job, check, diag, cancel, no_progress)
            view = self.view_for(uri)
            if cancel.is_set() or "cancelled" in result.notes or view is None or view.version != version:
                return
            self._keep_model_answer(check, uri, version, diag, result)

    def _keep_model_answer(
        self, check: CrateCheck, uri: str, version: int | None, diag: RustDiagnostic, result: ModelResult
    ) -> None:
        """Record the candidates the verifier refused, and cache the answer for this document version
        (unless it was cut short by a cancel: that is no answer)."""
        for offer in result.refused:
            self.recorder.refused(check.crate.edition, offer, check.contexts.get(diag.key, ""))
        cancelled = "cancelled" in result.notes
        if not cancelled:
            self.fixes.keep_model_result(uri, version, diag.key, result)
        if cancelled or result.offer is None:
            self._watch_unanswered(check, diag)

    def _watch_unanswered(self, check: CrateCheck, diag: RustDiagnostic) -> None:
        """Nothing verified was shown for this error (the model had no fix, or the user stopped
        waiting for it) and rustc offers none: the fix the user writes next is theirs to record."""
        if not check.offers.get(diag.key):
            self._watch_for_own_fix(check, diag)

    def _watch_for_own_fix(self, check: CrateCheck, diag: RustDiagnostic) -> None:
        """The user will fix this error by hand (they rejected the offers, or nothing verified was
        offered): what they write, wherever in the file, is the most valuable example there is
        (:mod:`lsp_server.own_fixes`). An accept of another offer for the error drops it."""
        span = diag.primary_span
        data = check.sources.get(span.file) if span is not None else None
        if span is None or data is None or self.recorder.excluded(check.root, span.file):
            return
        self._own_fixes[diag.key] = PendingFix(
            new_offer_id(),
            diag,
            self.uri_for(check.root / span.file),
            span.file,
            data.decode("utf-8", "replace"),
            check.crate.edition,
            check.contexts.get(diag.key, ""),
        )

    def _settle_own_fixes(self, check: CrateCheck) -> None:
        """After a check: record the pending errors of this crate that are gone, as the user's fix."""
        errors = check.session.errors
        for key, pending in list(self._own_fixes.items()):
            path = path_of(pending.uri)
            if path is None or not check.covers(path) or still_reported(pending, errors):
                continue
            del self._own_fixes[key]
            snapshot = check.documents.get(path)
            now = snapshot.text if snapshot is not None else self._file_text(pending.uri, check.root, pending.file)
            fix = written_fix(pending, now) if now is not None else None
            if fix is None:
                continue
            offer = own_fix_offer(check.root, route_for(pending.diagnostic).name, pending, fix)
            shown = ShownOffer(pending.offer_id, offer, pending.uri, None)
            self.recorder.own_fix(pending.edition, shown, pending.context, fix.after, ())

    def model_available(self) -> bool:
        """Whether to offer the model action: model fixes are on and the model has not failed to load."""
        return self.runtime.available

    async def resolve_model_fix(self, ref: convert.FixRef) -> tuple[ModelResult, ShownOffer | None]:
        """The model's verified fix for one error (cached per document version and error), as an
        offer of that version; refused when the document changed while the model worked."""
        cached = self.fixes.model_result(ref.uri, ref.version, ref.key)
        view = self.view_for(ref.uri)
        if view is None or view.version != ref.version:
            return ModelResult.stale(), None
        if cached is not None:
            return cached, self._show(view, cached.offer) if cached.offer is not None else None
        diag = view.check.find(view.path, ref.key)
        if diag is None:
            return ModelResult.stale(), None
        if not self.settings.model_enabled:
            return ModelResult(notes=["model fixes are turned off (sleepyCoder.modelEnabled)"]), None
        self._cancel_background()  # the user's own request goes first
        cancel = threading.Event()
        token = await self._begin_progress(
            f"sleepy-coder: fixing {diag.code or 'the error'} ({route_for(diag).name})", cancel
        )
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                self._model_pool, self._model_job, view.check, diag, cancel, self._progress_sink(token)
            )
        except asyncio.CancelledError:  # the editor withdrew the request: the user stopped waiting
            cancel.set()
            self._watch_unanswered(view.check, diag)
            raise
        finally:
            self._end_progress(token)
        if self.runtime.state == "failed":
            why = f"model fixes are unavailable: {self.runtime.error}. rustc's suggestions still work."
            self.tell(why, once="model-unavailable")
        self._keep_model_answer(view.check, ref.uri, ref.version, diag, result)
        if self.view_for(ref.uri) is None:  # edited while the model worked: its offsets are stale
            return ModelResult(notes=["the file changed while the model was working; ask again"]), None
        return result, self._show(view, result.offer) if result.offer is not None else None

    def _model_job(
        self, check: CrateCheck, diag: RustDiagnostic, cancel: threading.Event, progress: Progress
    ) -> ModelResult:
        """On the model thread: load the model, attach the active adapters, then generate and verify."""
        if self.runtime.loaded is None:
            progress("loading the model (the first fix takes longest)", None)
        try:
            self.runtime.get()
        except ModelUnavailable:
            pass  # model_fix turns this into a note for the user
        else:
            self._attach_adapters()
        return model_fix(check, diag, self.runtime, self.settings, cancel, progress)

    async def _begin_progress(self, title: str, cancel: threading.Event) -> str | None:
        """Start a cancellable work-done progress (VS Code shows it as a notification with Cancel);
        the client's cancel sets ``cancel``. None when the client shows no progress."""
        window = self.client_capabilities.window
        if window is None or not window.work_done_progress:
            return None
        token = f"sleepy-coder/{uuid.uuid4()}"
        try:
            await asyncio.wait_for(self.work_done_progress.create_async(token), timeout=2.0)
        except (TimeoutError, JsonRpcException):  # a slow or refusing client: no progress bar, no stuck request
            return None
        self.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=title, cancellable=True))
        self.work_done_progress.tokens[token].add_done_callback(lambda f: cancel.set() if f.cancelled() else None)
        return token

    def _progress_sink(self, token: str | None) -> Progress:
        loop = asyncio.get_running_loop()

        def report(message: str, fraction: float | None) -> None:
            if token is not None:
                value = types.WorkDoneProgressReport(
                    message=message, percentage=None if fraction is None else int(fraction * 100)
                )
                loop.call_soon_threadsafe(self.work_done_progress.report, token, value)

        return report

    def _end_progress(self, token: str | None) -> None:
        if token is not None:
            self.work_done_progress.end(token, types.WorkDoneProgressEnd())
            self.work_done_progress.tokens.pop(token, None)

    # ------------------------------------------------------------------ feedback

    def _record(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            if (shown := self.fixes.get(outcome.offer_id)) is not None:
                self.recorder.outcome(shown, outcome.kind, outcome.final_code, outcome.final_ranges)
                if outcome.kind == "edited":  # the rejected offer's item watch caught the user's fix
                    self._own_fixes.pop(shown.offer.diagnostic.key, None)

    def document_changed(self, params: types.DidChangeTextDocumentParams) -> None:
        """Follow watched fixes through the edit (the content changes, in order)."""
        uri = params.text_document.uri
        self._cancel_background()
        changes = [_text_change(c) for c in params.content_changes]
        if changes and changes[0].start is not None:
            self.note_focus(uri, changes[0].start[0])
        elif self._focus is None or self._focus[0] != uri:
            self.note_focus(uri, 0)
        if uri in self.feedback.watched_uris():
            text = self.workspace.get_text_document(uri).source
            self._record(self.feedback.document_changed(uri, changes, text, self.encoding))
        self.activity()

    def document_opened(self, uri: str) -> None:
        """A watched file opened after the accept (an editor loading it to apply a cross-file fix)."""
        if uri in self.feedback.watched_uris():
            self._record(self.feedback.file_replaced(uri, self.workspace.get_text_document(uri).source))

    def _settle_watches(self, check: CrateCheck) -> None:
        """After a check: decide the watched fixes of this crate whose items compile again."""
        texts: dict[str, str] = {}
        errors: dict[str, list[tuple[int, int]]] = {}
        for uri in self.feedback.watched_uris():
            path = path_of(uri)
            if path is None or not check.covers(path):
                continue
            snapshot = check.documents.get(path)
            if snapshot is not None:
                text = snapshot.text
            elif uri in self.workspace.text_documents or not path.is_file():
                continue  # open with unsaved changes: the check did not see them
            else:
                text = path.read_text("utf-8", "replace")
                self._record(self.feedback.file_replaced(uri, text))
            texts[uri] = text
            errors[uri] = [_char_span(text, d) for d in check.errors_in(path)]
        self._record(self.feedback.crate_checked(texts, errors))
        self._settle_own_fixes(check)

    def _file_text(self, uri: str, root: Path, rel: str) -> str | None:
        """A file's current text: the editor's buffer when open, else the disk's."""
        if (doc := self.workspace.text_documents.get(uri)) is not None:
            return doc.source
        try:
            return (root / rel).read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def _shown_offer(self, offer_id: str) -> ShownOffer:
        shown = self.fixes.get(offer_id)
        if shown is None:
            raise JsonRpcInvalidParams(
                f"no offer with id {offer_id!r} (offered before the server restarted or the data was forgotten?); "
                "ask for code actions again"
            )
        return shown

    async def accept(self, offer_id: str) -> dict[str, Any]:
        """``sleepy-coder.accept``: record that the offer was applied and watch the ranges it changed."""
        shown = self._shown_offer(offer_id)
        offer = shown.offer
        recorded = await self._written(self.recorder.outcome(shown, "accepted"))
        self.feedback.drop_rewrite(offer.diagnostic.key)  # another offer was turned down for this error
        self._own_fixes.pop(offer.diagnostic.key, None)
        files, order = watched_files(
            offer, lambda rel: self.uri_for(offer.root / rel), lambda uri, rel: self._file_text(uri, offer.root, rel)
        )
        if files:
            self.feedback.accepted(offer_id, files, order)
            asyncio.get_running_loop().call_later(self.settings.edit_window_s, self.feedback.window_closed, offer_id)
        else:
            self.feedback.decided(offer_id)
        return _decision(shown, "accepted", recorded)

    async def reject(self, offer_id: str) -> dict[str, Any]:
        """``sleepy-coder.reject``: record that the user turned this offer down."""
        shown = self._shown_offer(offer_id)
        offer = shown.offer
        recorded = await self._written(self.recorder.outcome(shown, "rejected"))
        # Watch the error's item: if the user then fixes it by hand, their code is what they kept.
        files, order = item_files(
            offer, lambda rel: self.uri_for(offer.root / rel), lambda uri, rel: self._file_text(uri, offer.root, rel)
        )
        if self.feedback.rejected(offer_id, files, order, offer.diagnostic.key) is not None:
            asyncio.get_running_loop().call_later(self.settings.edit_window_s, self.feedback.window_closed, offer_id)
        check = next((c for c in self.checks.values() if c.root == offer.root), None)
        if check is not None:  # a fix outside the item (an import, a signature) is caught there
            self._watch_for_own_fix(check, offer.diagnostic)
        return _decision(shown, "rejected", recorded)

    def explain(self, reason: str) -> str:
        """``sleepy-coder.explain``: the command of a model action without a fix, so picking it says why."""
        self.tell(reason)
        return reason

    async def _written(self, future: Future[Any] | None) -> bool:
        """Wait (without blocking the loop) for a queued write; False when nothing was recorded."""
        if future is None:
            return False
        try:
            return bool(await asyncio.wait_for(asyncio.wrap_future(future), timeout=10.0))
        except (StoreError, TimeoutError) as exc:  # NotFound included: the offer was forgotten meanwhile
            log.warning("could not record: %s", exc)
            return False

    async def learn_now(self) -> str:
        """``sleepy-coder.learnNow``: start a cycle; if it outlasts the first second or so, say what it
        did when it ends (a message), since the answer to the command cannot wait that long."""
        from lsp_server.commands import finished_sentence, learn_now

        crates = sorted({check.crate.root for check in self.checks.values()})
        started = await self.blocking(learn_now, self.settings, self.recorder.store, crates)
        if started.process is not None:
            process = started.process

            async def report_end() -> None:
                code = await asyncio.get_running_loop().run_in_executor(None, process.wait)
                store = self.recorder.store
                sentence = await self.blocking(finished_sentence, code, store, self.settings.learner_log)
                self.tell(sentence, kind=types.MessageType.Info if code == 0 else types.MessageType.Warning)

            self.spawn(report_end())
        return started.message

    async def forget(self) -> dict[str, int]:
        from lsp_server.commands import forget

        counts = await self.blocking(forget, self.settings, self.recorder.store)
        self.fixes.clear()
        self.feedback.clear()
        return counts

    # ------------------------------------------------------------------ adapters (hot swap)

    async def _poll_adapters(self) -> None:
        while True:
            store = self.recorder.store
            if store is not None:
                try:
                    versions = await self.blocking(store.active_versions)
                except (StoreError, OSError) as exc:
                    log.warning("could not read the adapter registry: %s", exc)
                else:
                    await self._adapters_seen(versions)
            await asyncio.sleep(self.adapter_poll_s)

    async def _adapters_seen(self, versions: dict[str, AdapterVersion]) -> None:
        previous, self._active_versions = self._active_versions, versions
        if previous is None:
            await self.reload_adapters()
            return
        change = change_between(active_map(previous), active_map(versions))
        if change is None:
            return
        await self.reload_adapters()
        self.protocol.notify(ADAPTERS_CHANGED, change.as_params())
        self.tell(change.message, kind=types.MessageType.Info)

    async def reload_adapters(self) -> None:
        """Attach the active adapters to the model if it is loaded, between generations."""
        if self.runtime.loaded is not None:
            await asyncio.get_running_loop().run_in_executor(self._model_pool, self._attach_adapters)
            self.fixes.clear_model_results()

    def _attach_adapters(self) -> None:
        problem = attach_active(self.settings, self.recorder.store, self.runtime, self.hot_swap)
        if problem is not None:
            log.warning("%s", problem)


def _decision(shown: ShownOffer, outcome: str, recorded: bool) -> dict[str, Any]:
    """The accept/reject commands' answer: which offer, which fix, its title (for the client to say)."""
    return {
        "offerId": shown.offer_id,
        "fixId": shown.fix_id,
        "title": shown.title,
        "outcome": outcome,
        "recorded": recorded,
    }


def _char_span(text: str, diag: RustDiagnostic) -> tuple[int, int]:
    """Character offsets of rustc's 1-based (line, character column) span in ``text``."""
    span = diag.primary_span
    if span is None:
        return (0, 0)
    start = offset_at(text, span.line_start - 1, span.column_start - 1, "utf-32")
    return start, offset_at(text, span.line_end - 1, span.column_end - 1, "utf-32")


def _text_change(change: Any) -> TextChange:
    """An lsprotocol content change as the tracker's record."""
    rng = getattr(change, "range", None)
    if rng is None:
        return TextChange(None, None, change.text)
    return TextChange((rng.start.line, rng.start.character), (rng.end.line, rng.end.character), change.text)
