"""What the user did with a fix after applying it: kept it (``accepted``), changed it
(``edited``) or undid it (``reverted``); and what they wrote instead of a fix they turned down.

After an accept the watcher follows exactly the ranges the fix changed, in every file it changed
(a derive added to another file included), plus the enclosing items around them. Each later
edit of a watched file shifts them: a change before a range moves it, a change overlapping it
touches it (the range grows or shrinks with the change), a change after it or beside it leaves
it alone, so a second fix further down the same function is never an edit of the first.

Decisions:

- ``reverted`` as soon as every touched range reads as it did before the fix (an undo);
- ``edited`` when a touched range differs from what the fix put there and a check of the crate
  shows no error in the enclosing items: the final text of the ranges and of the items is kept;
- otherwise the accept stands: the watch ends quietly when its window closes untouched.

A *rejected* offer's error item is watched the same way (:func:`item_files`): when the user then
fixes the error by hand and a check shows that item free of errors, the rejection becomes
``edited`` with the item as the user wrote it, the most valuable example there is (the fix the
model should have offered). One such watch per error (the last offer rejected), dropped when the
user accepts another offer for the error instead.

Changes arrive as LSP ``didChange`` content changes (ranges in the negotiated position
encoding, applied in order); a full-text change, or a file that is not open in the editor and
changed on disk, is located by diffing against the previous text. Pure bookkeeping: no LSP
types, no store, no timers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from learner.records import Edit
from learner.rust.source import edits_by_file
from learner.store import KeptRange
from lsp_server.fixes import REGION_SEPARATOR, Offer


@dataclass(frozen=True)
class Outcome:
    offer_id: str
    kind: str
    final_code: str | None = None
    final_ranges: tuple[KeptRange, ...] = ()


@dataclass
class Tracked:
    """A range ``[start, end)`` (character offsets into the file's current text)."""

    start: int
    end: int
    #: For a range the fix changed: its text before the fix and right after it.
    original: str = ""
    applied: str = ""


@dataclass(frozen=True)
class TextChange:
    """One content change: ``start``/``end`` as (line, character) in the text it applies to, or
    None for a whole-document change; ``text`` is the new text."""

    start: tuple[int, int] | None
    end: tuple[int, int] | None
    text: str


@dataclass
class WatchedFile:
    """One file an accepted fix changed."""

    uri: str
    file: str
    #: The file's text as last seen.
    text: str
    #: The file's text right after the fix, before any later edit.
    expected: str
    edits: list[Tracked]
    #: The enclosing items of the edits, in the order of the offer's regions.
    regions: list[Tracked]
    #: Whether ``text`` shows the fix yet (the editor may report the applied edit after the accept).
    active: bool = True

    def edit_texts(self) -> list[str]:
        return [self.text[r.start : r.end] for r in self.edits]


@dataclass
class Watch:
    offer_id: str
    files: list[WatchedFile]
    touched: bool = False
    window_closed: bool = False
    #: The offer's regions in order: ``(file index, region index)`` of a watched region, or the
    #: region's text after the fix where the fix did not change that file (the error's own item).
    region_order: list[tuple[int, int] | str] = field(default_factory=list)
    #: A rejected offer's item, watched for the user's own fix (nothing was applied to revert).
    rewrite: bool = False

    def file(self, uri: str) -> WatchedFile | None:
        return next((f for f in self.files if f.uri == uri), None)

    def is_original(self) -> bool:
        return all(t == r.original for f in self.files for t, r in zip(f.edit_texts(), f.edits, strict=True))

    def is_applied(self) -> bool:
        return all(t == r.applied for f in self.files for t, r in zip(f.edit_texts(), f.edits, strict=True))


# ----------------------------------------------------------------------------- pure helpers


def offset_at(text: str, line: int, character: int, encoding: str = "utf-16") -> int:
    """The character offset of an LSP position (0-based line, ``character`` in ``encoding`` code
    units) in ``text``; clamped to the line and the text."""
    offset = 0
    for _ in range(max(line, 0)):
        nl = text.find("\n", offset)
        if nl < 0:
            return len(text)
        offset = nl + 1
    end = text.find("\n", offset)
    line_text = text[offset : len(text) if end < 0 else end]
    if encoding == "utf-32":
        return offset + min(character, len(line_text))
    count = 0
    for i, ch in enumerate(line_text):
        if count >= character:
            return offset + i
        count += len(ch.encode("utf-8")) if encoding == "utf-8" else (2 if ord(ch) > 0xFFFF else 1)
    return offset + len(line_text)


def changed_span(old: str, new: str) -> tuple[int, int, int]:
    """``(start, old_end, new_end)``: ``old[start:old_end]`` became ``new[start:new_end]``."""
    limit = min(len(old), len(new))
    start = 0
    while start < limit and old[start] == new[start]:
        start += 1
    tail = 0
    while tail < limit - start and old[len(old) - 1 - tail] == new[len(new) - 1 - tail]:
        tail += 1
    return start, len(old) - tail, len(new) - tail


def shift(tracked: Tracked, start: int, end: int, length: int) -> bool:
    """Follow ``tracked`` through replacing ``[start, end)`` with ``length`` characters; True if
    the change touches it. Changes that only meet a non-empty range at its edge leave it alone
    (typing right before or after a fix is not editing it); an empty range (a deletion the fix
    made) is touched by an insertion at its place."""
    delta = length - (end - start)
    empty = tracked.start == tracked.end
    if end < tracked.start or (end == tracked.start and not (empty and start == end)):
        tracked.start += delta
        tracked.end += delta
        return False
    if start > tracked.end or (start == tracked.end and not empty):
        return False
    tracked.start = min(tracked.start, start)
    tracked.end = max(tracked.end, end) + delta
    return True


def char_index(data: bytes, byte_offset: int) -> int:
    return len(data[:byte_offset].decode("utf-8", "replace"))


def layout(
    data: bytes, edits: Sequence[Edit], regions: Sequence[tuple[int, int]]
) -> tuple[str, list[Tracked], list[Tracked]]:
    """The text of a file after ``edits`` as an editor applies them (the new texts verbatim), the
    ranges the edits occupy in it, and where the ``regions`` (byte ranges before the edits) end up.

    An insertion exactly at a region's start belongs to the region (a derive added above a
    struct), one exactly at its end does not, as in :func:`lsp_server.fixes.shifted`.
    """
    before = data.decode("utf-8", "replace")
    ordered = sorted(edits, key=lambda e: (e.byte_start, e.byte_end))
    spans = [(char_index(data, e.byte_start), char_index(data, e.byte_end), e.new_text) for e in ordered]
    parts: list[str] = []
    tracked: list[Tracked] = []
    pos = delta = 0
    for start, end, new_text in spans:
        parts.append(before[pos:start])
        tracked.append(Tracked(start + delta, start + delta + len(new_text), before[start:end], new_text))
        parts.append(new_text)
        delta += len(new_text) - (end - start)
        pos = end
    parts.append(before[pos:])

    def moved(offset: int, *, is_end: bool) -> int:
        return offset + sum(
            len(t) - (e - s) for s, e, t in spans if (s < offset if is_end else e <= offset and s < offset)
        )

    placed = []
    for byte_start, byte_end in regions:
        start, end = char_index(data, byte_start), char_index(data, byte_end)
        placed.append(Tracked(moved(start, is_end=False), moved(end, is_end=True)))
    return "".join(parts), tracked, placed


def watched_files(
    offer: Offer, uri_of: Callable[[str], str], text_of: Callable[[str, str], str | None]
) -> tuple[list[WatchedFile], list[tuple[int, int] | str]]:
    """What to watch once ``offer`` is applied: each file it edits (``uri_of(rel)``, its current
    text ``text_of(uri, rel)`` or None when unknown) and the order of the offer's regions."""
    files: list[WatchedFile] = []
    index: dict[str, int] = {}
    for file, edits in edits_by_file(offer.candidate.edits).items():
        data = offer.sources.get(file)
        if data is None:
            continue
        regions = [(r.byte_start, r.byte_end) for r in offer.regions if r.file == file]
        expected, tracked, placed = layout(data, edits, regions)
        uri = uri_of(file)
        current = text_of(uri, file)
        files.append(WatchedFile(uri, file, expected if current is None else current, expected, tracked, placed))
        index[file] = len(files) - 1
    order: list[tuple[int, int] | str] = []
    seen: dict[str, int] = {}
    for region in offer.regions:
        if region.file in index:
            order.append((index[region.file], seen.get(region.file, 0)))
            seen[region.file] = seen.get(region.file, 0) + 1
        else:
            order.append(region.after)
    return files, order


def item_files(
    offer: Offer, uri_of: Callable[[str], str], text_of: Callable[[str, str], str | None]
) -> tuple[list[WatchedFile], list[tuple[int, int] | str]]:
    """What to watch once ``offer`` is rejected: the error's own item, as it was checked, followed
    to the file's current text (the whole item is the watched range: any edit in it counts)."""
    primary = offer.primary
    data = offer.sources.get(primary.file) if primary is not None else None
    if primary is None or data is None:
        return [], []
    text = data.decode("utf-8", "replace")
    start, end = char_index(data, primary.byte_start), char_index(data, primary.byte_end)
    item = text[start:end]
    uri = uri_of(primary.file)
    watched = WatchedFile(uri, primary.file, text, text, [Tracked(start, end, item, item)], [Tracked(start, end)])
    current = text_of(uri, primary.file)
    if current is not None and current != text:
        _replay(watched, (), current, "utf-32")
    if watched.edit_texts() != [item]:
        return [], []  # the item changed since it was checked (another fix applied): not the user's own
    return [watched], [(0, 0)]


def _replay(watched: WatchedFile, changes: Iterable[TextChange], new_text: str, encoding: str) -> bool:
    """Apply ``changes`` to the watched file's ranges; True if any touched an edited range.

    A file still waiting for the fix becomes active at the change that makes it show the fix (an
    editor may send the fix and the user's next edit, an undo say, in one notification)."""
    text = watched.text
    touched = False
    for change in changes:
        if change.start is None or change.end is None:
            start, old_end, new_end = changed_span(text, change.text)
            replaced, length, after = (start, old_end), new_end - start, change.text
        else:
            start = offset_at(text, *change.start, encoding)
            end = max(start, offset_at(text, *change.end, encoding))
            replaced, length, after = (start, end), len(change.text), text[:start] + change.text + text[end:]
        touched |= _shift_all(watched, *replaced, length)
        text = after
        if not watched.active and text == watched.expected:
            watched.active = True
    if text != new_text:  # the client's changes and its text disagree: trust the text
        start, old_end, new_end = changed_span(text, new_text)
        touched |= _shift_all(watched, start, old_end, new_end - start)
        if not watched.active and new_text == watched.expected:
            watched.active = True
    watched.text = new_text
    return touched


def _shift_all(watched: WatchedFile, start: int, end: int, length: int) -> bool:
    if not watched.active:
        return False
    for region in watched.regions:
        shift(region, start, end, length)
    return any([shift(r, start, end, length) for r in watched.edits])


def _overlaps(ranges: Iterable[Tracked], errors: Iterable[tuple[int, int]]) -> bool:
    spans = list(errors)
    return any(s <= r.end and e >= r.start for r in ranges for s, e in spans)


# ----------------------------------------------------------------------------- the tracker


class FeedbackTracker:
    """Shown offers, decided offers, and the ranges of accepted fixes being watched."""

    def __init__(self) -> None:
        self._shown: set[str] = set()
        self._decided: set[str] = set()
        self._watches: dict[str, Watch] = {}
        #: error key -> the rejected offer whose item is watched for the user's own fix.
        self._rewrites: dict[str, str] = {}

    def shown(self, offer_id: str) -> bool:
        """Note that ``offer_id`` was shown; True the first time (start its ignore timer then)."""
        if offer_id in self._shown:
            return False
        self._shown.add(offer_id)
        return True

    def ignored(self, offer_id: str) -> bool:
        """Called when the ignore timer fires: True when the offer was neither applied nor rejected."""
        if offer_id in self._decided:
            return False
        self._decided.add(offer_id)
        return True

    def decided(self, offer_id: str) -> None:
        self._decided.add(offer_id)

    def rejected(
        self,
        offer_id: str,
        files: list[WatchedFile] | None = None,
        region_order: list[tuple[int, int] | str] | None = None,
        error_key: str | None = None,
    ) -> Watch | None:
        """Note a rejection; with ``files`` (:func:`item_files`), watch the error's item for the
        user's own fix. A later rejection for the same ``error_key`` takes the watch over."""
        self._decided.add(offer_id)
        self._watches.pop(offer_id, None)
        if not files:
            return None
        if error_key is not None:
            self.drop_rewrite(error_key)
            self._rewrites[error_key] = offer_id
        watch = Watch(offer_id, files, region_order=region_order or [], rewrite=True)
        self._watches[offer_id] = watch
        return watch

    def drop_rewrite(self, error_key: str) -> None:
        """Stop waiting for a hand-written fix of this error (the user took another offer)."""
        previous = self._rewrites.pop(error_key, None)
        if previous is not None:
            self._watches.pop(previous, None)

    def accepted(self, offer_id: str, files: list[WatchedFile], region_order: list[tuple[int, int] | str]) -> Watch:
        """Start watching an applied fix. A file whose current text does not show the fix yet waits
        for it (``active`` False); one that shows it with other changes is followed from there."""
        self._decided.add(offer_id)
        watch = Watch(offer_id, files, region_order=region_order)
        for watched in files:
            current, watched.text = watched.text, watched.expected
            if current != watched.expected:
                if current == _unapplied(watched):
                    watched.active, watched.text = False, current
                else:
                    _replay(watched, (), current, "utf-32")
        self._watches[offer_id] = watch
        return watch

    def watching(self, uri: str | None = None) -> list[Watch]:
        return [w for w in self._watches.values() if uri is None or w.file(uri) is not None]

    def watched_uris(self) -> set[str]:
        return {f.uri for w in self._watches.values() for f in w.files}

    def document_changed(
        self, uri: str, changes: Sequence[TextChange], text: str, encoding: str = "utf-16"
    ) -> list[Outcome]:
        """Follow an edit of ``uri``; an undo back to what was there before the fix is ``reverted``."""
        outcomes = []
        for watch in self.watching(uri):
            watched = watch.file(uri)
            assert watched is not None
            watch.touched |= _replay(watched, changes, text, encoding)
            if watch.rewrite:
                continue  # nothing was applied, so nothing to revert: only a clean check decides
            if watch.touched and all(f.active for f in watch.files) and watch.is_original():
                outcomes.append(Outcome(watch.offer_id, "reverted"))
                del self._watches[watch.offer_id]
        return outcomes

    def file_replaced(self, uri: str, text: str) -> list[Outcome]:
        """A watched file changed outside the editor (it is not open): diff it."""
        return self.document_changed(uri, [TextChange(None, None, text)], text)

    def crate_checked(self, texts: Mapping[str, str], errors: Mapping[str, Sequence[tuple[int, int]]]) -> list[Outcome]:
        """After a check that compiled ``texts`` (uri -> text) with ``errors`` (uri -> character
        spans): decide touched watches whose enclosing items are now free of errors."""
        outcomes = []
        for watch in list(self._watches.values()):
            if not watch.touched or any(texts.get(f.uri) != f.text or not f.active for f in watch.files):
                continue
            if any(_overlaps(f.regions or f.edits, errors.get(f.uri, ())) for f in watch.files):
                continue
            if watch.is_applied():  # a rejected item typed back as it was: still waiting
                watch.touched = False  # changed and changed back: still the fix as applied
                if watch.window_closed:
                    del self._watches[watch.offer_id]
                continue
            if watch.is_original():
                outcomes.append(Outcome(watch.offer_id, "reverted"))
            else:
                outcomes.append(Outcome(watch.offer_id, "edited", _final_code(watch), _kept(watch)))
            del self._watches[watch.offer_id]
            self._rewrites = {k: v for k, v in self._rewrites.items() if v != watch.offer_id}
        return outcomes

    def window_closed(self, offer_id: str) -> None:
        """The edit window of an accepted fix ended: untouched, the accept stands and watching stops;
        touched, the next clean check still decides it."""
        watch = self._watches.get(offer_id)
        if watch is None:
            return
        if watch.touched:
            watch.window_closed = True
        else:
            del self._watches[offer_id]

    def clear(self) -> None:
        self._shown.clear()
        self._decided.clear()
        self._watches.clear()
        self._rewrites.clear()


def _unapplied(watched: WatchedFile) -> str:
    """The file's text before the fix, rebuilt from the expected text and the applied ranges."""
    text = watched.expected
    for r in sorted(watched.edits, key=lambda r: r.start, reverse=True):
        text = text[: r.start] + r.original + text[r.end :]
    return text


def _kept(watch: Watch) -> tuple[KeptRange, ...]:
    return tuple(KeptRange(f.file, t) for f in watch.files for t in f.edit_texts())


def _final_code(watch: Watch) -> str:
    """The enclosing items as the user left them, in the order of the offer's regions."""
    parts = []
    for entry in watch.region_order:
        if isinstance(entry, str):
            parts.append(entry)
        else:
            watched = watch.files[entry[0]]
            region = watched.regions[entry[1]]
            parts.append(watched.text[region.start : region.end])
    return REGION_SEPARATOR.join(parts)
