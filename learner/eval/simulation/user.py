"""A simulated user living in a real crate: errors by day through the real server, learning by night.

Each day (:meth:`SimulatedUser.live_day`) the user makes that day's planned errors
(:mod:`learner.eval.simulation.sites`) one at a time in their own copy of the crate, through the
editor's protocol (:mod:`learner.eval.simulation.editor`): save the broken file, wait for the
check, ask for the code actions of the error, resolve the model's. The user's intent is the code
they broke; an offered fix is *right* when its result equals that code after rustfmt. The user
applies the first right offer in menu order (rustc's fixes, then the model's) and runs its
``accept`` command; when none is right they run ``reject`` on each offer and write the fix
themselves, which the server's feedback recorder turns into an ``edited`` outcome with their
code. Nothing is patched: the records are the server's own.

Each night (:meth:`SimulatedUser.night`) the user runs ``sleepy-coder.learnNow`` (the real idle
learner, ``learn --daemon --once --now``, on the crates the server checked, with its gate and
promotion) and waits for its end; a promotion reaches the running server through its hot swap,
so the next day's model offers come from the new adapters. Before each night, every later day's
sites are reserved (:mod:`learner.learn.reserved`): tomorrow's errors are never trained on.

State (the plan, each error's result, which nights ran) is one JSON file in the user's home,
written after every error and every night, so a run killed at any point resumes where it was.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types

from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.eval.cases import CrateSource
from learner.eval.crate_cases import library_files
from learner.eval.grader import rustfmt, same_after_rustfmt
from learner.eval.sandbox import write_crate_case
from learner.eval.simulation.editor import Editor, EditorError, apply_text_edits, edits_for, touched_uris, wait_until
from learner.eval.simulation.sites import ErrorSite, plan_sites
from learner.files import write_atomic
from learner.learn.reserved import write_reserved
from learner.store import Store

STATE_VERSION = 1
#: Seconds the user leaves an applied fix alone, so its watch ends (the simulation's edit window).
EDIT_WINDOW_S = 2.0


@dataclass(frozen=True)
class UserSpec:
    """A user: a crate (a folder under ``registry``) and a seed, living ``days`` days of ``per_day`` errors."""

    crate: str
    seed: int
    registry: Path
    days: int = 5
    per_day: int = 8
    habits: int = 3

    @property
    def name(self) -> str:
        return f"{self.crate}-s{self.seed}"


@dataclass
class ErrorResult:
    """What happened to one error: what was offered, what was right, what the user did."""

    site: str
    day: int
    route: str
    code: str | None
    #: Verified rustc fixes offered, and whether one of them was right.
    rustc_offers: int = 0
    rustc_right: bool = False
    #: The model offered a verified fix, and it was right.
    model_offered: bool = False
    model_right: bool = False
    model_note: str = ""
    #: ``accepted`` (a right offer applied), ``edited`` (the user's own fix recorded: after turning the
    #: offers down, or with nothing offered), ``rejected`` (offers turned down, their fix not recorded),
    #: ``unrecorded`` (nothing was offered and their fix was not recorded either),
    #: ``not-reproduced`` (the error did not appear as planned).
    outcome: str = ""
    accepted_source: str = ""
    seconds: float = 0.0

    @property
    def right(self) -> bool:
        return self.rustc_right or self.model_right


@dataclass
class NightResult:
    day: int
    outcome: str
    message: str
    seconds: float
    promoted: list[str] = field(default_factory=list)
    hot_swapped: bool = False
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class UserState:
    spec: dict[str, Any]
    habits: list[str]
    sites: list[ErrorSite]
    errors: list[ErrorResult] = field(default_factory=list)
    nights: list[NightResult] = field(default_factory=list)
    version: int = STATE_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "spec": self.spec,
            "habits": self.habits,
            "sites": [s.to_json() for s in self.sites],
            "errors": [asdict(e) for e in self.errors],
            "nights": [asdict(n) for n in self.nights],
        }

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> UserState:
        return cls(
            spec=row["spec"],
            habits=list(row["habits"]),
            sites=[ErrorSite.from_json(s) for s in row["sites"]],
            errors=[ErrorResult(**e) for e in row["errors"]],
            nights=[NightResult(**n) for n in row["nights"]],
            version=int(row.get("version", STATE_VERSION)),
        )


class SimulationError(SleepyCoderError):
    """The simulated user cannot go on (the crate is missing, the state belongs to another user)."""


class SimulatedUser:
    """One user's home: ``state.json``, the working crate ``crate/``, the data home ``home/``."""

    def __init__(
        self,
        spec: UserSpec,
        folder: Path,
        options: dict[str, Any],
        *,
        cache_dir: Path | None = None,
        say: Callable[[str], None] = lambda _line: None,
        night_timeout_s: float = 4 * 3600.0,
        fix_timeout_s: float = 900.0,
        rustc_wait_s: float = 20.0,
    ) -> None:
        self.spec = spec
        self.folder = folder
        self.crate_dir = folder / "crate"
        self.home = folder / "home"
        self.say = say
        self.night_timeout_s = night_timeout_s
        self.fix_timeout_s = fix_timeout_s
        self.rustc_wait_s = rustc_wait_s
        base = Settings.from_mapping({"data_dir": str(self.home / "data")})
        if cache_dir is not None:
            base = Settings.from_mapping({"cache_dir": str(cache_dir)}, base=base)
        self.settings = Settings.from_mapping(options, base=base)
        self.options = {
            **options,
            "dataDir": str(self.settings.data_dir),
            "cacheDir": str(self.settings.cache_dir),
            "backgroundFixes": False,  # every model fix is asked for, so each is measured the same way
            "editWindowS": EDIT_WINDOW_S,
        }
        self.settings = Settings.from_mapping(self.options, base=self.settings)
        self.state_path = folder / "state.json"
        self.originals: dict[str, str] = {}
        self.state: UserState | None = None

    # ------------------------------------------------------------------ state

    def prepare(self) -> UserState:
        """Load the state, or make the crate copy and draw the plan the first time."""
        if self.state_path.is_file():
            state = UserState.from_json(json.loads(self.state_path.read_text()))
            if state.spec.get("crate") != self.spec.crate or state.spec.get("seed") != self.spec.seed:
                raise SimulationError(f"{self.state_path} belongs to user {state.spec}; use another folder")
        else:
            source = self.spec.registry / self.spec.crate
            if not source.is_dir():
                raise SimulationError(f"no crate {self.spec.crate} under {self.spec.registry}")
            files = library_files_of(source)
            if self.crate_dir.exists():
                shutil.rmtree(self.crate_dir)
            write_crate_case(self.crate_dir, CrateSource(self.spec.registry, self.spec.crate, files[0]),
                             (source / files[0]).read_text(encoding="utf-8"))  # fmt: skip
            plan = plan_sites(
                self.settings,
                self.crate_dir,
                files,
                seed=self.spec.seed,
                days=self.spec.days,
                per_day=self.spec.per_day,
                habits=self.spec.habits,
                on_check=lambda checks, found: (
                    self.say(f"planning: {checks} checks, {found} sites") if checks % 10 == 0 else None
                ),
            )
            spec = {**asdict(self.spec), "registry": str(self.spec.registry)}
            state = UserState(spec=spec, habits=plan.habits, sites=plan.sites)
        self.state = state
        # The user's code is the crate's own: a run stopped in the middle of an error left its
        # broken file in the copy, so every planned file is put back before the day goes on.
        source = self.spec.registry / self.spec.crate
        self.originals = {s.file: (source / s.file).read_text(encoding="utf-8") for s in state.sites}
        for file, text in self.originals.items():
            if (self.crate_dir / file).read_text(encoding="utf-8") != text:
                (self.crate_dir / file).write_text(text, encoding="utf-8")
        self.save()
        return state

    def save(self) -> None:
        assert self.state is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(self.state_path, json.dumps(self.state.to_json(), indent=1).encode())

    def next_day(self) -> int | None:
        """The first day not fully lived, or None when every day and night ran."""
        assert self.state is not None
        done = {e.site for e in self.state.errors}
        nights = {n.day for n in self.state.nights}
        for day in range(1, self.spec.days + 1):
            if any(s.id not in done for s in self._day_sites(day)) or (day < self.spec.days and day not in nights):
                return day
        return None

    def _day_sites(self, day: int) -> list[ErrorSite]:
        assert self.state is not None
        return [s for s in self.state.sites if s.day == day]

    # ------------------------------------------------------------------ the run

    async def run(self, until_day: int | None = None) -> UserState:
        """Live the remaining days (and the nights between them), up to ``until_day``."""
        state = self.prepare()
        last = min(self.spec.days, until_day or self.spec.days)
        editor = Editor(self.crate_dir, self.home, self.options, self.home / "server.log")
        await editor.start()
        try:
            for rel in sorted({s.file for s in state.sites}):
                editor.open(rel)
            for day in range(1, last + 1):
                await self.live_day(editor, day)
                if day < self.spec.days and day not in {n.day for n in state.nights}:
                    await self.night(editor, day)
        finally:
            await editor.stop()
        return state

    async def live_day(self, editor: Editor, day: int) -> list[ErrorResult]:
        assert self.state is not None
        done = {e.site for e in self.state.errors}
        results = []
        for site in self._day_sites(day):
            if site.id in done:
                continue
            result = await self.make_error(editor, site)
            self.state.errors.append(result)
            self.save()
            results.append(result)
            self.say(
                f"day {day} {site.route:<16} {site.id}: {result.outcome}"
                f"{' (' + result.accepted_source + ')' if result.accepted_source else ''}, "
                f"model {'right' if result.model_right else 'offered' if result.model_offered else 'none'}"
                f" ({result.seconds:.0f} s)"
            )
        return results

    async def make_error(self, editor: Editor, site: ErrorSite) -> ErrorResult:
        start = time.monotonic()
        rel = site.file
        original = self.originals[rel]
        result = ErrorResult(site.id, site.day, site.route, site.codes[0] if site.codes else None)
        before = editor.save(rel, site.broken)
        diagnostics = await editor.checked(rel, before, timeout=self.settings.check_timeout_s + 60)
        diagnostic = pick_diagnostic(diagnostics, site.codes)
        if diagnostic is None:
            result.outcome = "not-reproduced"
            await self._restore(editor, rel, original)
            result.seconds = time.monotonic() - start
            return result
        result.code = str(diagnostic.code) if diagnostic.code is not None else result.code
        actions = await self._menu(editor, rel, diagnostic)
        offers: list[tuple[str, types.CodeAction]] = [("rustc", a) for a in actions if _is_offer(a)]
        result.rustc_offers = len(offers)
        for action in actions:
            if _is_model_placeholder(action):
                try:
                    resolved = await editor.resolve(action, timeout=self.fix_timeout_s)
                except TimeoutError:  # the user stops waiting (the request is cancelled) and goes on
                    result.model_note = f"no model answer within {self.fix_timeout_s:.0f} s"
                    continue
                if _is_offer(resolved):
                    offers.append(("model", resolved))
                    result.model_offered = True
                else:
                    result.model_note = resolved.title
        rejects = {_offer_id(a): a for a in actions if _is_reject(a)}
        chosen: tuple[str, types.CodeAction] | None = None
        for source, action in offers:
            right = self._is_right(editor, action)
            if source == "rustc":
                result.rustc_right |= right
            else:
                result.model_right |= right
            if right and chosen is None:
                chosen = (source, action)
        if chosen is not None:
            source, action = chosen
            for uri in touched_uris(action.edit):
                file = _rel(self.crate_dir, uri)
                editor.save(file, apply_text_edits(self._current(file), edits_for(action.edit, uri)))
            assert action.command is not None
            await editor.run_command(action.command)
            result.outcome, result.accepted_source = "accepted", source
            await asyncio.sleep(EDIT_WINDOW_S + 1.0)  # the accept stands: its watch ends untouched
        else:
            last_rejected = None
            for _source, action in offers:
                offer_id = _offer_id(action)
                reject = rejects.get(offer_id)
                command = reject.command if reject is not None else None
                if command is None and offer_id is not None:  # a resolved model offer has no reject action yet
                    command = types.Command(title="Reject", command="sleepy-coder.reject", arguments=[offer_id])
                if command is not None:
                    await editor.run_command(command)
                    last_rejected = offer_id
            edited_before = self._edited_count()
            before = editor.save(rel, original)  # the user's own fix: the code they meant
            await editor.checked(rel, before, timeout=self.settings.check_timeout_s + 60)
            # The server records their fix as the rejected offer turned ``edited`` (a fix inside the
            # error's item) or as a fix of their own (elsewhere in the file, or nothing was offered):
            # either way one more ``edited`` outcome.
            own = await _maybe(wait_until(lambda: self._edited_count() > edited_before, 30.0, "the own fix", every=0.5))
            result.outcome = "edited" if own else "unrecorded" if last_rejected is None else "rejected"
        await self._restore(editor, rel, original)
        result.seconds = time.monotonic() - start
        return result

    async def _menu(self, editor: Editor, rel: str, diagnostic: types.Diagnostic) -> list[types.CodeAction]:
        """The code actions once rustc's fixes are verified: the server publishes the error first and
        verifies rustc's suggestions after it, so the user looks again, as at a lightbulb that appears
        a moment later, until an offer shows or ``rustc_wait_s`` passed."""
        deadline = time.monotonic() + self.rustc_wait_s
        while True:
            actions = await editor.code_actions(rel, diagnostic)
            if any(_is_offer(a) for a in actions) or time.monotonic() >= deadline:
                return actions
            await asyncio.sleep(0.5)

    def _current(self, rel: str) -> str:
        return (self.crate_dir / rel).read_text(encoding="utf-8")

    def _is_right(self, editor: Editor, action: types.CodeAction) -> bool:
        """Does applying ``action`` give back the code the user meant (every file it changes)?"""
        uris = touched_uris(action.edit)
        if not uris:
            return False
        for uri in uris:
            file = _rel(self.crate_dir, uri)
            meant = self.originals.get(file)
            if meant is None:
                meant = (self.spec.registry / self.spec.crate / file).read_text(encoding="utf-8")
            if not means_the_same(apply_text_edits(self._current(file), edits_for(action.edit, uri)), meant):
                return False
        return True

    async def _restore(self, editor: Editor, rel: str, original: str) -> None:
        """Every file back to the original text (a formatting difference of an accepted fix included)."""
        for file, text in self.originals.items():
            if self._current(file) != text:
                before = editor.save(file, text)
                await editor.checked(file, before, timeout=self.settings.check_timeout_s + 60)

    def _edited_count(self) -> int:
        with Store.open(self.settings) as store:
            return store.counts()["edited"]

    async def night(self, editor: Editor, day: int) -> NightResult:
        """Reserve the later days' sites, run one learning cycle through the server, wait for its end."""
        assert self.state is not None
        write_reserved(self.settings, [s.key for s in self.state.sites if s.day > day])
        start = time.monotonic()
        changes = len(editor.adapter_changes)
        seen = len(editor.messages)
        message = str(await editor.learn_now())
        if message.startswith("learning started"):
            finished = await wait_until(
                lambda: next((m for m in editor.messages[seen:] if _cycle_ended(m)), None),
                self.night_timeout_s,
                "the learning cycle to end",
                every=2.0,
            )
            message = str(finished)
        with Store.open(self.settings) as store:
            cycles = store.cycles(1)
            outcome = cycles[0].outcome or "" if cycles else ""
            details = cycles[0].details if cycles else {}
        promoted = sorted(details.get("targets", []) or []) if outcome == "promoted" else []
        hot = False
        if outcome == "promoted":
            with_change = await _maybe(wait_until(lambda: len(editor.adapter_changes) > changes, 60.0, "the hot swap"))
            hot = bool(with_change)
        night = NightResult(day, outcome or "none", message, time.monotonic() - start, promoted, hot, details)
        self.state.nights.append(night)
        self.save()
        self.say(f"night {day}: {night.outcome} ({night.seconds / 60:.1f} min): {message}")
        return night


async def _maybe(awaitable: Any) -> Any:
    try:
        return await awaitable
    except EditorError:
        return None


def _cycle_ended(message: str) -> bool:
    """The server's message at the end of a ``learnNow`` cycle (finished, or the learner stopped)."""
    return "learning cycle finished" in message or "the learner stopped" in message


def library_files_of(crate: Path) -> list[str]:
    """The crate's ``src/`` files worth mutating (as for crate cases)."""
    from learner.rust.registry import RegistryCrate

    files = library_files(RegistryCrate(crate.parent, crate.name, crate.name, ""))
    if not files:
        raise SimulationError(f"{crate} has no library source files")
    return files


def means_the_same(code: str, meant: str) -> bool:
    """The user's test of an offered fix: the code they meant after rustfmt, where a ``use`` line may
    sit anywhere among the imports (rustc's "consider importing" puts it at the top of the file)."""
    if same_after_rustfmt(code, meant):
        return True
    a, b = rustfmt(code), rustfmt(meant)
    if a is None or b is None:
        return False

    def parts(text: str) -> tuple[list[str], list[str]]:
        lines = [line for line in text.splitlines() if line.strip()]
        uses = sorted(line.strip() for line in lines if line.startswith("use "))
        return uses, [line for line in lines if not line.startswith("use ")]

    return parts(a) == parts(b)


def pick_diagnostic(diagnostics: list[types.Diagnostic], codes: tuple[str, ...]) -> types.Diagnostic | None:
    """The user's error among the published diagnostics: the first error with the planned code."""
    errors = [d for d in diagnostics if d.severity in (None, types.DiagnosticSeverity.Error)]
    for code in codes:
        for d in errors:
            if str(d.code) == code:
                return d
    return None


def _is_offer(action: types.CodeAction) -> bool:
    return action.edit is not None and action.command is not None and action.command.command == "sleepy-coder.accept"


def _is_reject(action: types.CodeAction) -> bool:
    return action.edit is None and action.command is not None and action.command.command == "sleepy-coder.reject"


def _is_model_placeholder(action: types.CodeAction) -> bool:
    return action.edit is None and action.command is None and isinstance(action.data, dict)


def _offer_id(action: types.CodeAction) -> str | None:
    args = action.command.arguments if action.command is not None else None
    return str(args[0]) if args else None


def _rel(root: Path, uri: str) -> str:
    from urllib.parse import unquote, urlparse

    return Path(unquote(urlparse(uri).path)).relative_to(root).as_posix()
