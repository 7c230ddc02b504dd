"""Offered fixes: a verified candidate with the code around it before and after, and their caches.

An :class:`Offer` is a verified fix with what the store keeps of it (the enclosing items before
and after, never whole files). Each time one is shown for a document version it becomes a
:class:`ShownOffer` with its own ``offer_id``: the identity of that event, which the accept and
reject commands carry and the outcomes are recorded against. The :class:`FixRegistry` keeps
the shown offers and caches model results per document version and error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from learner.errors import SleepyCoderError
from learner.fix.verifier import Verifier
from learner.records import Edit, FixCandidate, RustDiagnostic, Verdict, VerifiedFix
from learner.rust.items import region_at
from learner.store import new_offer_id

#: Shown offers kept for the accept/reject commands; an older one is answered "unknown offer".
MAX_SHOWN = 1000
#: Separates the regions of a fix that touches several items, in before/after texts.
REGION_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class RegionChange:
    """One item (or window of lines) a fix touches: its text before and after the fix."""

    file: str
    before: str
    after: str
    #: Where the region is in the file before the fix (bytes), so it can be followed after it.
    byte_start: int = 0
    byte_end: int = 0


@dataclass(frozen=True)
class Offer:
    """A candidate fix for one error, ready to show, record and watch."""

    candidate: FixCandidate
    verdict: Verdict
    diagnostic: RustDiagnostic
    root: Path
    #: The error's own region first, then any other region the edits touch.
    regions: tuple[RegionChange, ...]
    #: The bytes the edits apply to (``rel -> bytes``), to place them as LSP ranges.
    sources: Mapping[str, bytes]

    @property
    def fix_id(self) -> str:
        return self.candidate.fix_id

    @property
    def before_text(self) -> str:
        return REGION_SEPARATOR.join(r.before for r in self.regions)

    @property
    def after_text(self) -> str:
        return REGION_SEPARATOR.join(r.after for r in self.regions)

    @property
    def primary(self) -> RegionChange | None:
        return self.regions[0] if self.regions else None


def shifted(offset: int, edits: list[Edit], *, is_end: bool) -> int:
    """Where byte ``offset`` lands after ``edits``. An insertion exactly at a region's start belongs
    to the region (a derive added above a struct), one exactly at its end does not."""
    delta = 0
    for e in edits:
        before = e.byte_start < offset if is_end else e.byte_end <= offset and e.byte_start < offset
        if before:
            delta += len(e.new_text.encode("utf-8")) - (e.byte_end - e.byte_start)
    return offset + delta


def regions_changed(diag: RustDiagnostic, edits: tuple[Edit, ...], before: dict[str, bytes], after: dict[str, bytes]):
    """The regions around the error and around each edit, before and after the edits."""
    wanted: list[tuple[str, int, int]] = []
    span = diag.primary_span
    if span is not None and span.file in before:
        wanted.append((span.file, span.byte_start, span.byte_end))
    wanted.extend((e.file, e.byte_start, e.byte_end) for e in edits)
    seen: list[tuple[str, int, int]] = []
    changes = []
    for file, start, end in wanted:
        data = before.get(file)
        if data is None:
            continue
        region = region_at(file, data, start, end)
        if any(f == file and s < region.byte_end and region.byte_start < e for f, s, e in seen):
            continue
        seen.append((file, region.byte_start, region.byte_end))
        file_edits = sorted((e for e in edits if e.file == file), key=lambda e: e.byte_start)
        new_start = shifted(region.byte_start, file_edits, is_end=False)
        new_end = shifted(region.byte_end, file_edits, is_end=True)
        changes.append(
            RegionChange(
                file,
                region.text(data),
                after[file][new_start:new_end].decode("utf-8", "replace"),
                region.byte_start,
                region.byte_end,
            )
        )
    return tuple(changes)


def make_offer(verifier: Verifier, verified: VerifiedFix, diag: RustDiagnostic) -> Offer | None:
    """The offer for a candidate, or None when its edits no longer apply to the files."""
    candidate = verified.candidate
    try:
        before, after = verifier.apply(candidate.edits)
    except (SleepyCoderError, OSError, UnicodeDecodeError):  # the files changed or vanished since the check
        return None
    if span := diag.primary_span:
        path = verifier.crate.root / span.file
        if span.file not in before and path.is_file():
            before[span.file] = after[span.file] = path.read_bytes()
    regions = regions_changed(diag, candidate.edits, before, after)
    return Offer(candidate, verified.verdict, diag, verifier.crate.root, regions, before)


@dataclass(frozen=True)
class ShownOffer:
    """An offer as shown in one document version: the event the user's decision belongs to."""

    offer_id: str
    offer: Offer
    uri: str
    version: int | None

    @property
    def fix_id(self) -> str:
        return self.offer.fix_id

    @property
    def title(self) -> str:
        return self.offer.candidate.title


@dataclass
class ModelResult:
    """What ``codeAction/resolve`` found for one error: the verified model fix, or why there is none."""

    offers: list[Offer] = field(default_factory=list)
    #: Candidates the verifier refused (recorded as unverified suggestions).
    refused: list[Offer] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    #: The adapter version that answered (None: the base model), so the title says who tried.
    adapter_version: str | None = None

    @property
    def offer(self) -> Offer | None:
        return self.offers[0] if self.offers else None

    @property
    def explanation(self) -> str:
        """One line for the action title when there is no verified fix."""
        if self.notes:
            return self.notes[0]
        by = f"adapter {self.adapter_version}; " if self.adapter_version else ""
        if self.refusals:
            return f"no verified fix ({by}the compiler refused the model's answer: {self.refusals[-1]})"
        return f"no verified fix ({by.removesuffix('; ')})" if by else "no verified fix"

    @classmethod
    def stale(cls) -> ModelResult:
        return cls(notes=["the file changed since it was checked; save it and ask again"])


@dataclass(frozen=True)
class ErrorOffers:
    """What a code-action request shows for one error."""

    diagnostic: RustDiagnostic
    route: str
    #: rustc's verified suggestions as shown now (empty while they are still being verified).
    offers: list[ShownOffer]
    #: The model's finished answer for this document version, if it was asked already.
    model: ModelResult | None
    #: Its verified fix as shown now, if it has one.
    model_offer: ShownOffer | None = None


def document_key(uri: str, version: int | None) -> str:
    return f"{uri}@{version}"


class FixRegistry:
    """Shown offers by offer id (and by what they show, so a repeated request reuses the id), and
    model results by ``uri@version`` + error key."""

    def __init__(self) -> None:
        self._shown: dict[str, ShownOffer] = {}
        self._ids: dict[tuple[str, int | None, str, str], str] = {}
        self._model: dict[tuple[str, str], ModelResult] = {}

    def show(self, offer: Offer, uri: str, version: int | None) -> tuple[ShownOffer, bool]:
        """The offer as shown in ``uri@version``; True the first time (record it then).

        The same fix for the same error in the same document version is the same offer, however
        many times the editor asks for code actions; a new version, crate or day is a new one.
        """
        key = (uri, version, offer.diagnostic.key, offer.fix_id)
        if (offer_id := self._ids.get(key)) is not None:
            return self._shown[offer_id], False
        shown = ShownOffer(new_offer_id(), offer, uri, version)
        self._ids[key] = shown.offer_id
        self._shown[shown.offer_id] = shown
        while len(self._shown) > MAX_SHOWN:  # each holds its files' bytes: keep the newest only
            oldest = next(iter(self._shown.values()))
            del self._shown[oldest.offer_id]
            self._ids.pop((oldest.uri, oldest.version, oldest.offer.diagnostic.key, oldest.fix_id), None)
        return shown, True

    def get(self, offer_id: str) -> ShownOffer | None:
        return self._shown.get(offer_id)

    def model_result(self, uri: str, version: int | None, key: str) -> ModelResult | None:
        return self._model.get((document_key(uri, version), key))

    def keep_model_result(self, uri: str, version: int | None, key: str, result: ModelResult) -> None:
        self._model[(document_key(uri, version), key)] = result

    def drop_document(self, uri: str, keep_version: int | None) -> None:
        """Forget model results of other versions of ``uri`` (their offsets no longer apply)."""
        keep = document_key(uri, keep_version)
        prefix = f"{uri}@"
        for k in [k for k in self._model if k[0].startswith(prefix) and k[0] != keep]:
            del self._model[k]

    def clear_model_results(self) -> None:
        """New adapters or a new model: earlier answers no longer say what the model would do."""
        self._model.clear()

    def clear(self) -> None:
        self._shown.clear()
        self._ids.clear()
        self._model.clear()
