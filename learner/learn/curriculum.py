"""Training sets per route: (broken, fixed, diagnostic) triples made by breaking correct Rust.

Why mutations: the user's accepted fixes arrive slowly, and evaluation data must never be
trained on. Correct code is plentiful (the user's own crates, the Rust documentation installed
with the toolchain), and breaking it in the ways programmers do (:mod:`learner.rust.mutations`)
yields pairs whose fix is known exactly: the original. rustc decides what each mutant is: a
mutant is kept only when its *first* error falls in the route the operator feeds, and the
region the prompt shows for that error contains the whole change (otherwise the answer could
not express the fix).

Every example is rendered with the inference code path: :func:`learner.fix.prompt.collect_regions`
on the materialised broken crate, :func:`learner.fix.prompt.build_prompt`, and a target made by
:func:`learner.fix.prompt.format_answer` from the original text of the changed region. Accepted and
edited fixes from the store join as the most valuable examples; rejected ones never appear
(:meth:`learner.store.Store.accepted_fixes` excludes them).

Leakage: sources, mutants and store fixes that equal, embed or are embedded in an evaluation
case are dropped (:class:`~learner.learn.benchmark.BenchmarkGuard`). Cost: rustc runs are cached
by content, run on ``workers`` threads, and bounded per route and in total.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import html
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.files import JsonLinesError, read_jsonl, write_atomic
from learner.fix.prompt import PromptRegion, build_prompt, collect_regions, format_answer
from learner.fix.router import ROUTES, route_for, route_for_code
from learner.learn.benchmark import BenchmarkGuard, default_guard
from learner.learn.examples import ExampleFormatError, TrainingExample, from_accepted_fix, from_regions
from learner.learn.practice import (
    PRACTICE_BUCKETS,
    PracticeCollector,
    from_user_crate,
    is_practice,
    write_practice,
)
from learner.learn.reserved import example_site, load_reserved
from learner.records import FALLBACK_ROUTE, RustDiagnostic
from learner.rust import items
from learner.rust.check import CheckCancelled, check
from learner.rust.crate import CrateRef, has_main_fn, locate_crate
from learner.rust.mutations import OPERATORS, Mutation, Operator, mutations
from learner.rust.normalise import source_hash
from learner.rust.scratch import ScratchCrate, lone_file, rust_files
from learner.rust.toolchain import rustc_path

#: Bump when the example format or the acceptance rules change: old cached verdicts are ignored.
CACHE_VERSION = 1
#: At most this many training examples per operator and source, so one long file cannot fill a route.
PER_SOURCE_OPERATOR = 2
_SKIP_CLASSES = ("ignore", "compile_fail", "does_not_compile", "not_desired_behavior", "text", "console")
_DOC_BOOKS = ("book", "rust-by-example")


class CurriculumError(SleepyCoderError):
    """The curriculum cannot be built (no route to build for, an unreadable crate, ...)."""


# ----------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Snippet:
    """A lone file of correct Rust (a documentation example, a test corpus entry)."""

    origin: str
    code: str
    crate_type: str = "bin"
    edition: str = "2021"


def snippet_from_block(origin: str, code: str, edition: str = "2021") -> Snippet | None:
    """A documentation block as a compilable file: bins keep their ``main``, item-only code is a
    lib, and loose statements are wrapped in ``fn main``. Blocks that do not parse are skipped."""
    code = code.strip("\n") + "\n"
    if has_main_fn(code):
        return Snippet(origin, code, "bin", edition) if not items.has_syntax_errors(code.encode()) else None
    if not items.has_syntax_errors(code.encode()):
        root = items.parse(code.encode())
        if all(
            child.type in items.ITEM_KINDS or child.type.endswith(("comment", "declaration", "attribute_item"))
            for child in root.named_children
        ):
            return Snippet(origin, code, "lib", edition)
    wrapped = "fn main() {\n" + "".join(f"    {line}\n" if line else "\n" for line in code.splitlines()) + "}\n"
    return Snippet(origin, wrapped, "bin", edition) if not items.has_syntax_errors(wrapped.encode()) else None


#: mdBook writes runnable examples as ``<pre class="playground"><code class="language-rust ...">``;
#: hidden setup lines (``# fn main() {``) arrive as ``<span class="boring">`` text, kept on purpose.
_BLOCK = re.compile(r'<pre(?: [^>]*)?><code class="([^"]*language-rust[^"]*)">(.*?)</code></pre>', re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def docs_root() -> Path | None:
    """The HTML docs installed with the toolchain (``rustup component add rust-docs``), if any."""
    try:
        import subprocess

        out = subprocess.run([str(rustc_path()), "--print", "sysroot"], capture_output=True, text=True, timeout=30)
    except (OSError, SleepyCoderError):
        return None
    root = Path(out.stdout.strip()) / "share" / "doc" / "rust" / "html"
    return root if root.is_dir() else None


def doc_snippets(root: Path) -> Iterator[Snippet]:
    """Rust code blocks of the Book and Rust by Example, read from the HTML at run time."""
    for book in _DOC_BOOKS:
        for page in sorted((root / book).rglob("*.html")):
            if page.name in ("print.html", "404.html", "toc.html"):
                continue
            try:
                text = page.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            for n, match in enumerate(_BLOCK.finditer(text)):
                classes = match.group(1).split()
                if any(c in _SKIP_CLASSES for c in classes):
                    continue
                edition = next((c.removeprefix("edition") for c in classes if c.startswith("edition")), "2021")
                code = html.unescape(_TAG.sub("", match.group(2)))
                if "extern crate" in code or "#![feature" in code:
                    continue
                snippet = snippet_from_block(f"docs:{book}/{page.relative_to(root / book)}#{n}", code, edition)
                if snippet is not None:
                    yield snippet


# ----------------------------------------------------------------------------- workspaces


@dataclass(frozen=True)
class CheckOutcome:
    """What rustc made of one program: its errors (empty = compiles), where it was materialised."""

    errors: tuple[RustDiagnostic, ...]
    regions: tuple[PromptRegion, ...] = ()


class _SnippetWorkspace:
    """Compiles lone files, each in a fresh folder under the scratch dir (threads never share one)."""

    def __init__(self, settings: Settings, snippet: Snippet, timeout_s: float) -> None:
        self.settings = settings
        self.snippet = snippet
        self.timeout_s = timeout_s
        self.file = "main.rs" if snippet.crate_type == "bin" else "lib.rs"
        self.data = snippet.code.encode()
        self.edition = snippet.edition

    def key(self) -> str:
        return f"snippet|{self.snippet.crate_type}|{self.snippet.edition}"

    def run(self, data: bytes) -> CheckOutcome:
        base = self.settings.scratch_dir / "curriculum"
        with lone_file(
            base, self.file, data, edition=self.snippet.edition, crate_type=self.snippet.crate_type
        ) as crate:
            result = check(crate, crate.root / "target", timeout_s=self.timeout_s)
            errors = tuple(result.errors)
            regions = tuple(collect_regions(crate.root, errors[0])) if errors else ()
            return CheckOutcome(errors, regions)


class _CrateWorkspace:
    """One file of a user crate, mutated in scratch copies (one per worker) checked with cargo."""

    def __init__(self, settings: Settings, crate: CrateRef, file: str, slots: _Slots, timeout_s: float) -> None:
        self.crate = crate
        self.file = file
        self.slots = slots
        self.timeout_s = timeout_s
        self.data = (crate.root / file).read_bytes()
        self.edition = crate.edition

    def key(self) -> str:
        return f"crate|{self.slots.fingerprint}|{self.file}"

    def run(self, data: bytes) -> CheckOutcome:
        with self.slots.take() as slot, slot.changed({self.file: data}):
            result = slot.check(self.timeout_s)
            errors = tuple(result.errors)
            regions = tuple(collect_regions(slot.path, errors[0])) if errors else ()
            return CheckOutcome(errors, regions)


class _Slots:
    """``workers`` scratch copies of one crate, handed out one per concurrent check."""

    def __init__(self, settings: Settings, crate: CrateRef, workers: int) -> None:
        import queue

        self.crate = crate
        self._free: queue.Queue[ScratchCrate] = queue.Queue()
        digest = hashlib.sha256()
        files = sorted(p for p in rust_files(crate.root)) + sorted(crate.root.glob("Cargo.*"))
        for path in files:
            digest.update(str(path.relative_to(crate.root)).encode() + b"\0" + path.read_bytes())
        self.fingerprint = digest.hexdigest()[:16]
        for i in range(max(1, workers)):
            slot = ScratchCrate(
                crate,
                settings.scratch_dir / "curriculum" / f"{crate.key}-{i}",
                settings.targets_dir / f"{crate.key}-curriculum-{i}",
            )
            slot.sync()
            self._free.put(slot)

    @contextlib.contextmanager
    def take(self) -> Iterator[ScratchCrate]:
        slot = self._free.get()
        try:
            yield slot
        finally:
            self._free.put(slot)


# ----------------------------------------------------------------------------- examples


@dataclass
class CurriculumConfig:
    """How much to build and from what."""

    per_route: int = 64
    routes: tuple[str, ...] | None = None
    crates: tuple[Path, ...] = ()
    use_docs: bool = True
    use_store: bool = True
    #: Upper bound on rustc/cargo runs (cache hits are free).
    max_checks: int = 3000
    workers: int = 2
    check_timeout_s: float = 120.0
    #: Store fixes never to train on (the sleep cycle's gate holds them out to judge candidates).
    exclude_fix_ids: frozenset[str] = frozenset()


@dataclass
class CurriculumResult:
    examples: dict[str, list[TrainingExample]]
    #: route -> path of the JSONL written (routes with at least one example).
    files: dict[str, Path]
    stats: dict[str, Any]
    #: Held-out practice mutations of the user's crates found this time (:mod:`learner.learn.practice`).
    practice: dict[str, list[TrainingExample]] = dataclasses.field(default_factory=dict)


@functools.lru_cache(maxsize=1)
def _format_fingerprint() -> str:
    """Changes whenever the prompt or answer format does, so cached examples never go stale."""
    region = PromptRegion(items.Region("main.rs", 0, 12, "fn main"), "fn main() {}")
    diag = RustDiagnostic(level="error", message="m", code="E0308", rendered="error[E0308]: m")
    prompt = build_prompt(diag, route_for_code("E0308"), [region])
    blob = json.dumps([prompt.messages, format_answer([(1, "fn main() {}")], [region])])
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def _verdict_cache(settings: Settings) -> Path:
    return settings.cache_dir / "curriculum" / f"verdicts-v{CACHE_VERSION}-{_format_fingerprint()}"


def _cache_get(settings: Settings, key: str) -> dict[str, Any] | None:
    path = _verdict_cache(settings) / key[:2] / f"{key}.json"
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _cache_put(settings: Settings, key: str, value: dict[str, Any]) -> None:
    path = _verdict_cache(settings) / key[:2] / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(value).encode())


def _example_from_mutant(
    workspace: _SnippetWorkspace | _CrateWorkspace, operator: Operator, mutation: Mutation, origin: str
) -> TrainingExample | str:
    """Compile one mutant and turn it into an example, or the reason it cannot be one."""
    broken = mutation.apply(workspace.data)
    outcome = workspace.run(broken)
    if not outcome.errors:
        return "mutant compiles"
    first = outcome.errors[0]
    route = route_for(first)
    if route.name not in operator.routes:
        return f"first error {first.code or '-'} is route {route.name}"
    fixed_regions: list[tuple[int, str]] = []
    delta = (mutation.end - mutation.start) - len(mutation.replacement)
    for number, region in enumerate(outcome.regions, start=1):
        r = region.region
        if r.file != workspace.file or not (r.byte_start <= mutation.start and mutation.broken_end <= r.byte_end):
            continue
        original = workspace.data[r.byte_start : r.byte_end + delta].decode("utf-8").replace("\r\n", "\n")
        fixed_regions.append((number, original))
    if not fixed_regions:
        return "the change lies outside the regions the prompt shows"
    return from_regions(
        first,
        route,
        outcome.regions,
        fixed_regions,
        source="mutation",
        file=workspace.file,
        broken=broken.decode("utf-8"),
        fixed=workspace.data.decode("utf-8"),
        operator=operator.name,
        origin=origin,
        edition=workspace.edition,
    )


def store_examples(settings: Settings, routes: Sequence[str] | None = None) -> list[TrainingExample]:
    """Accepted and edited fixes from the store as examples (the user's final code is the target)."""
    from learner.store import Store

    if not settings.db_path.exists():
        return []
    with Store.open(settings) as store:
        made = (from_accepted_fix(fix) for fix in store.accepted_fixes())
        return [ex for ex in made if ex is not None and (routes is None or ex.route in routes)]


def build_curriculum(
    settings: Settings,
    config: CurriculumConfig,
    *,
    snippets: Iterable[Snippet] = (),
    leakage: BenchmarkGuard | None = None,
    progress: Callable[[str, dict[str, int]], None] | None = None,
    record: bool = True,
) -> CurriculumResult:
    """Build, write and register one training set per route.

    Sources in order: the store's accepted fixes, ``snippets``, the user's ``config.crates``,
    then (``config.use_docs``) the installed Rust documentation. Stops when every wanted route
    has ``per_route`` examples or ``max_checks`` compiles were spent. Mutants of the items an
    evaluation reserved (:mod:`learner.learn.reserved`) are neither training nor practice.
    """
    wanted = _wanted_routes(config.routes)
    leakage = leakage if leakage is not None else default_guard()
    examples: dict[str, list[TrainingExample]] = {r: [] for r in wanted}
    practice = PracticeCollector(settings, wanted)
    seen: set[str] = set()
    stats: dict[str, Any] = {
        "checks": 0,
        "cache_hits": 0,
        "sources": 0,
        "leaked_sources": 0,
        "leaked_mutants": 0,
        "duplicates": 0,
        "sources_not_compiling": 0,
        "reserved": 0,
        "rejected": {},
        "docs": None,
    }
    if config.use_store:
        for ex in store_examples(settings, wanted):
            if ex.fix_id in config.exclude_fix_ids:
                continue
            if leakage.is_benchmark(ex.broken) or leakage.is_benchmark(ex.fixed):
                stats["leaked_mutants"] += 1
                continue
            examples[ex.route].append(ex)

    def full(route: str) -> bool:
        return len(examples[route]) >= config.per_route

    def satisfied(route: str, origin: str) -> bool:
        """Nothing more wanted for ``route`` from this source: its training set is full and, for the
        user's crates, its practice set too (the gate's evidence is not capped by the training budget)."""
        return full(route) and not (from_user_crate(origin) and practice.owed(route))

    def done(origin: str) -> bool:
        return all(satisfied(r, origin) for r in wanted) or stats["checks"] >= config.max_checks

    reserved = load_reserved(settings)
    workspaces = _workspaces(settings, config, snippets, stats)
    with ThreadPoolExecutor(max_workers=max(1, config.workers)) as pool:
        for workspace, origin in workspaces:
            if done(origin):
                break
            if not _admit(workspace.data.decode("utf-8", "replace"), "leaked_sources", seen, leakage, stats):
                continue
            stats["sources"] += 1
            if not _compiles(settings, workspace, stats):
                stats["sources_not_compiling"] += 1
                continue
            # In the user's crates about one item in PRACTICE_BUCKETS is practice, so an operator owing
            # practice is tried that many times more often; training keeps its per-source cap below.
            per_operator = PER_SOURCE_OPERATOR * (PRACTICE_BUCKETS if from_user_crate(origin) else 1)
            jobs = _mutants(
                workspace, wanted, functools.partial(satisfied, origin=origin), leakage, seen, stats, per_operator
            )
            results = pool.map(functools.partial(_run_job, settings, workspace, origin, stats), jobs)
            trained_per_operator: dict[str, int] = {}
            for result in results:
                if isinstance(result, str):
                    reason = result.split(" is route ")[0]
                    stats["rejected"][reason] = stats["rejected"].get(reason, 0) + 1
                    continue
                if reserved and example_site(result) in reserved:  # an evaluation's future error site
                    stats["reserved"] += 1
                    continue
                if is_practice(result):  # the gate's held-out evidence: never a training example
                    practice.add(result)
                    continue
                if trained_per_operator.get(result.operator, 0) >= PER_SOURCE_OPERATOR:
                    continue
                if result.route in examples and not full(result.route):
                    examples[result.route].append(result)
                    trained_per_operator[result.operator] = trained_per_operator.get(result.operator, 0) + 1
            if progress is not None:
                progress(origin, {r: len(v) for r, v in examples.items()})
    files = _write_sets(settings, examples, record) if record else {}
    if record:
        write_practice(settings, practice.found)
    stats["examples"] = {r: len(v) for r, v in examples.items()}
    stats["practice"] = {r: len(v) for r, v in practice.found.items() if v}
    return CurriculumResult(examples, files, stats, practice.found)


def _wanted_routes(routes: Sequence[str] | None) -> list[str]:
    trainable = sorted({r for op in OPERATORS for r in op.routes} | (set(routes or ()) - {FALLBACK_ROUTE}))
    if routes is None:
        return trainable
    unknown = [r for r in routes if r not in ROUTES or r == FALLBACK_ROUTE]
    if unknown:
        raise CurriculumError(f"unknown or untrainable route(s) {', '.join(unknown)}; see `sleepy-coder routes`")
    return list(dict.fromkeys(routes))


def _workspaces(
    settings: Settings, config: CurriculumConfig, snippets: Iterable[Snippet], stats: dict[str, Any]
) -> Iterator[tuple[_SnippetWorkspace | _CrateWorkspace, str]]:
    for snippet in snippets:
        yield _SnippetWorkspace(settings, snippet, config.check_timeout_s), snippet.origin
    for path in config.crates:
        crate = locate_crate(Path(path))
        if crate.is_single_file:
            assert crate.single_file is not None
            code = (crate.root / crate.single_file).read_text(encoding="utf-8", errors="replace")
            snippet = Snippet(f"file:{crate.root / crate.single_file}", code, crate.crate_type, crate.edition)
            yield _SnippetWorkspace(settings, snippet, config.check_timeout_s), snippet.origin
            continue
        slots = _Slots(settings, crate, config.workers)
        for file in sorted(rust_files(crate.root)):
            rel = str(file.relative_to(crate.root))
            yield _CrateWorkspace(settings, crate, rel, slots, config.check_timeout_s), f"crate:{crate.root}/{rel}"
    if config.use_docs:
        root = docs_root()
        stats["docs"] = str(root) if root else "not installed"
        if root is not None:
            for snippet in doc_snippets(root):
                yield _SnippetWorkspace(settings, snippet, config.check_timeout_s), snippet.origin


def _compiles(settings: Settings, workspace: _SnippetWorkspace | _CrateWorkspace, stats: dict[str, Any]) -> bool:
    key = hashlib.sha256(f"{workspace.key()}|original".encode() + b"\0" + workspace.data).hexdigest()
    cached = _cache_get(settings, key)
    if cached is not None:
        stats["cache_hits"] += 1
        return bool(cached.get("compiles"))
    stats["checks"] += 1
    try:
        ok = not workspace.run(workspace.data).errors
    except (SleepyCoderError, CheckCancelled):
        ok = False
    _cache_put(settings, key, {"compiles": ok})
    return ok


def _mutants(
    workspace: _SnippetWorkspace | _CrateWorkspace,
    wanted: list[str],
    satisfied: Callable[[str], bool],
    leakage: BenchmarkGuard,
    seen: set[str],
    stats: dict[str, Any],
    cap: int = PER_SOURCE_OPERATOR,
) -> list[tuple[Operator, Mutation, str]]:
    """The mutants of one source worth a check: at most ``cap`` per operator, for routes still wanted."""
    jobs: list[tuple[Operator, Mutation, str]] = []
    per_operator: dict[str, int] = {}
    for operator, mutation in mutations(workspace.data):
        if not any(r in wanted and not satisfied(r) for r in operator.routes):
            continue
        if per_operator.get(operator.name, 0) >= cap:
            continue
        broken = mutation.apply(workspace.data).decode("utf-8", "replace")
        if not _admit(broken, "leaked_mutants", seen, leakage, stats):
            continue
        per_operator[operator.name] = per_operator.get(operator.name, 0) + 1
        key = hashlib.sha256(f"{workspace.key()}|{operator.name}".encode() + b"\0" + broken.encode()).hexdigest()
        jobs.append((operator, mutation, key))
    return jobs


def _admit(code: str, leaked: str, seen: set[str], leakage: BenchmarkGuard, stats: dict[str, Any]) -> bool:
    """Is ``code`` new (not a normalised duplicate of one seen) and not a benchmark program? Counts why not."""
    digest = source_hash(code)
    if digest in seen:
        stats["duplicates"] += 1
        return False
    seen.add(digest)
    if leakage.is_benchmark(code):
        stats[leaked] += 1
        return False
    return True


def _run_job(
    settings: Settings,
    workspace: _SnippetWorkspace | _CrateWorkspace,
    origin: str,
    stats: dict[str, Any],
    job: tuple[Operator, Mutation, str],
) -> TrainingExample | str:
    return _cached_example(settings, workspace, *job, origin, stats)


def _cached_example(
    settings: Settings,
    workspace: _SnippetWorkspace | _CrateWorkspace,
    operator: Operator,
    mutation: Mutation,
    key: str,
    origin: str,
    stats: dict[str, Any],
) -> TrainingExample | str:
    """The mutant's example (or rejection), from the content-keyed cache when this mutant was checked before."""
    cached = _cache_get(settings, key)
    if cached is not None:
        stats["cache_hits"] += 1
        if "rejected" in cached:
            return str(cached["rejected"])
        try:
            example = TrainingExample.from_json(cached)
        except ExampleFormatError:
            cached = None  # written by an older version: check again
    if cached is None:
        stats["checks"] += 1
        try:
            made = _example_from_mutant(workspace, operator, mutation, origin)
        except (SleepyCoderError, UnicodeDecodeError) as exc:
            return f"check failed: {exc}"
        if isinstance(made, str):
            _cache_put(settings, key, {"rejected": made})
            return made
        example = dataclasses.replace(made, id=key[:16])
        _cache_put(settings, key, example.to_json())
    # The edition is part of the workspace's cache key; the origin is where this run found the source.
    return dataclasses.replace(example, origin=origin, edition=workspace.edition)


def _write_sets(settings: Settings, examples: dict[str, list[TrainingExample]], record: bool) -> dict[str, Path]:
    from learner.store import Store

    settings.training_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    with Store.open(settings) as store:
        for route, rows in examples.items():
            if not rows:
                continue
            blob = "".join(json.dumps(row.to_json(), sort_keys=True) + "\n" for row in rows).encode()
            sha = hashlib.sha256(blob).hexdigest()
            path = settings.training_dir / f"{route}-{sha[:12]}.jsonl"
            if not path.exists():
                write_atomic(path, blob)
            fix_ids = [row.fix_id for row in rows if row.fix_id]
            store.record_training_set(route, path, n_examples=len(rows), sha=sha, source_fix_ids=fix_ids)
            files[route] = path
    return files


def load_training_set(path: Path) -> list[TrainingExample]:
    """Read a training set written by :func:`build_curriculum`; a bad line is a clear error."""
    try:
        return [TrainingExample.from_json(row) for _, row in read_jsonl(Path(path))]
    except JsonLinesError as exc:
        raise CurriculumError(f"cannot read training set: {exc}") from exc
    except ExampleFormatError as exc:
        raise CurriculumError(f"{path}: {exc}") from exc
