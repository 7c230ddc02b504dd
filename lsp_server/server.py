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
from learner.progress import Progress
from learner.records import RustDiagnostic
from learner.rust.check import CheckCancelled
from learner.store import AdapterVersion, NotFound, StoreError
from lsp_server import convert
from lsp_server.adapters import active_map, attach_active, change_between
from lsp_server.analysis import CrateCheck, OpenDocument, check_crate, model_fix, verify_rustc
from lsp_server.feedback import FeedbackTracker, Outcome, char_offset
from lsp_server.fixes import ErrorOffers, FixRegistry, ModelResult, Offer
from lsp_server.recorder import Recorder

log = logging.getLogger(__name__)
T = TypeVar("T")

ADAPTERS_CHANGED = "sleepy-coder/adaptersChanged"
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
        if (old.model, old.device, old.model_enabled) != (new.model, new.device, new.model_enabled):
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
        for path, doc in check.documents.items():
            errors = [_char_span(doc.text, d) for d in check.errors_in(path)]
            self._record(self.feedback.document_checked(doc.uri, doc.text, errors))

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
            if snapshot is not None and snapshot.version == doc.version and doc.source == snapshot.text:
                return DocumentView(uri, doc.version, path, check)
        return None

    # ------------------------------------------------------------------ fixes

    def offers_for(self, view: DocumentView, errors: list[RustDiagnostic]) -> list[ErrorOffers]:
        """rustc's verified fixes (and a finished model fix) for each error; each is recorded and
        its ignore timer started the first time it is shown."""
        result = []
        for diag in errors:
            offers = list(view.check.offers.get(diag.key, []))
            model = self.fixes.model_result(view.uri, view.version, diag.key)
            for offer in offers + (model.offers if model else []):
                self._shown(view.check, offer)
            result.append(ErrorOffers(diag, route_for(diag).name, offers, model))
        return result

    def _shown(self, check: CrateCheck, offer: Offer, *, verified: bool = True) -> None:
        if self.fixes.remember(offer):
            context = check.contexts.get(offer.diagnostic.key, "")
            self.recorder.offer(check.crate.edition, offer, context, verified=verified)
        if verified and self.feedback.shown(offer.fix_id):
            asyncio.get_running_loop().call_later(self.settings.ignore_timeout_s, self._ignore_elapsed, offer.fix_id)

    def _ignore_elapsed(self, fix_id: str) -> None:
        if self.feedback.ignored(fix_id):
            self.recorder.outcome(fix_id, "ignored")

    async def resolve_model_fix(self, ref: convert.FixRef) -> ModelResult:
        """The model's verified fix for one error (cached per document version and error)."""
        cached = self.fixes.model_result(ref.uri, ref.version, ref.key)
        if cached is not None:
            return cached
        view = self.view_for(ref.uri)
        diag = view.check.find(view.path, ref.key) if view is not None and view.version == ref.version else None
        if view is None or diag is None:
            return ModelResult.stale()
        if not self.settings.model_enabled:
            return ModelResult(notes=["model fixes are turned off (sleepyCoder.modelEnabled)"])
        cancel = threading.Event()
        token = await self._begin_progress(f"sleepy-coder: fixing {diag.code or 'the error'}")
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                self._model_pool, self._model_job, view.check, diag, cancel, self._progress_sink(token)
            )
        except asyncio.CancelledError:
            cancel.set()
            raise
        finally:
            self._end_progress(token)
        if self.runtime.state == "failed":
            why = f"model fixes are unavailable: {self.runtime.error}. rustc's suggestions still work."
            self.tell(why, once="model-unavailable")
        for offer in result.refused:
            self._shown(view.check, offer, verified=False)
        for offer in result.offers:
            self._shown(view.check, offer)
        if "cancelled" not in result.notes:
            self.fixes.keep_model_result(ref.uri, ref.version, ref.key, result)
        return result

    def _model_job(
        self, check: CrateCheck, diag: RustDiagnostic, cancel: threading.Event, progress: Progress
    ) -> ModelResult:
        """On the model thread: load the model, attach the active adapters, then generate and verify."""
        try:
            self.runtime.get()
        except ModelUnavailable:
            pass  # model_fix turns this into a note for the user
        else:
            self._attach_adapters()
        return model_fix(check, diag, self.runtime, self.settings, cancel, progress)

    async def _begin_progress(self, title: str) -> str | None:
        window = self.client_capabilities.window
        if window is None or not window.work_done_progress:
            return None
        token = f"sleepy-coder/{uuid.uuid4()}"
        try:
            await asyncio.wait_for(self.work_done_progress.create_async(token), timeout=2.0)
        except (TimeoutError, JsonRpcException):  # a slow or refusing client: no progress bar, no stuck request
            return None
        self.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=title, cancellable=False))
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

    # ------------------------------------------------------------------ feedback

    def _record(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            self.recorder.outcome(outcome.fix_id, outcome.kind, outcome.final_code)

    def document_changed(self, uri: str) -> None:
        if self.feedback.watching(uri):
            self._record(self.feedback.document_changed(uri, self.workspace.get_text_document(uri).source))
        self.activity()

    async def accept(self, fix_id: str) -> dict[str, Any]:
        """``sleepy-coder.accept``: record the fix as applied and start watching its region."""
        offer = self.fixes.get(fix_id)
        primary = offer.primary if offer else None
        recorded = await self._written(self.recorder.outcome(fix_id, "accepted", primary.after if primary else None))
        self.feedback.decided(fix_id)
        if offer is not None and primary is not None:
            uri = self.uri_for(offer.root / primary.file)
            if (doc := self.workspace.text_documents.get(uri)) is not None:
                self.feedback.accepted(fix_id, uri, doc.source, primary.before, primary.after)
        return {"fixId": fix_id, "outcome": "accepted", "recorded": recorded}

    async def reject(self, fix_id: str) -> dict[str, Any]:
        recorded = await self._written(self.recorder.outcome(fix_id, "rejected"))
        self.feedback.rejected(fix_id)
        return {"fixId": fix_id, "outcome": "rejected", "recorded": recorded}

    async def _written(self, future: Future[Any] | None) -> bool:
        """Wait (without blocking the loop) for a queued write; an unknown fix id is the caller's error."""
        if future is None:
            return False
        try:
            await asyncio.wait_for(asyncio.wrap_future(future), timeout=10.0)
        except NotFound as exc:
            raise JsonRpcInvalidParams(str(exc)) from exc
        except (StoreError, TimeoutError) as exc:
            log.warning("could not record: %s", exc)
            return False
        return True

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


def _char_span(text: str, diag: RustDiagnostic) -> tuple[int, int]:
    span = diag.primary_span
    if span is None:
        return (0, 0)
    return char_offset(text, span.line_start, span.column_start), char_offset(text, span.line_end, span.column_end)
