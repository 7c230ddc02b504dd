"""The user's own fix of an error, wherever in the file they wrote it.

After a rejection, and for an error nothing verified was offered for, the user fixes it by hand.
The rejection's item watch (:mod:`lsp_server.feedback`) sees a fix inside the error's item; many
fixes are elsewhere: the missing ``use`` line at the top of the file, the signature of the
function the error's call goes to. So each such error is also *pending* here with the text of
its file as it was checked; after a later check in which no error with the same code and message
is left in the crate, the change in that file (from its first to its last changed character) is
the user's fix, recorded as the enclosing item before and after. Pure bookkeeping: no LSP, no store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from learner.records import Edit, FixCandidate, RustDiagnostic, Verdict
from learner.rust import items
from lsp_server.feedback import changed_span, char_index
from lsp_server.fixes import Offer, RegionChange

#: The source of a fix the user wrote by hand (the store's ``suggestions.source``).
OWN_FIX_SOURCE = "user"

#: A change spanning more lines than this is not one fix (a rewrite, a paste): nothing is recorded.
MAX_FIX_LINES = items.MAX_REGION_LINES


@dataclass(frozen=True)
class PendingFix:
    """An error the user is expected to fix by hand, and its file as it was checked."""

    offer_id: str
    diagnostic: RustDiagnostic
    uri: str
    file: str
    #: The file's text as checked (what the user's change is measured against).
    before: str
    edition: str
    context: str


@dataclass(frozen=True)
class WrittenFix:
    """The item the user changed: its byte range in the checked file, its text before and after."""

    file: str
    byte_start: int
    byte_end: int
    before: str
    after: str


def still_reported(pending: PendingFix, errors: list[RustDiagnostic]) -> bool:
    """Is the error (same code and message; its position may have moved) still among ``errors``?"""
    diag = pending.diagnostic
    return any(d.code == diag.code and d.message == diag.message for d in errors)


def _with_import_block(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen ``[start, end)`` of ``text`` to whole lines, then to the ``use`` lines around it, so an
    added import is seen among its neighbours (the prompt side of the example is never empty)."""
    start = text.rfind("\n", 0, start) + 1
    end = len(text) if (nl := text.find("\n", max(end - 1, start))) < 0 else nl + 1
    if not text[start:end].lstrip().startswith("use "):
        return start, end
    while start > 0:
        prev = text.rfind("\n", 0, start - 1) + 1
        if not text[prev:start].lstrip().startswith("use "):
            break
        start = prev
    while end < len(text):
        nxt = text.find("\n", end)
        stop = len(text) if nxt < 0 else nxt + 1
        if not text[end:stop].lstrip().startswith("use "):
            break
        end = stop
    return start, end


def written_fix(pending: PendingFix, now: str) -> WrittenFix | None:
    """The item around what changed between the checked text and ``now`` (an import: the import
    block), before and after; None when nothing changed or the change is too large to be one fix.

    The text before the change and after it is the same in both, so the item found in ``now`` maps
    back exactly: it starts at the same place and ends as far from the change's end.
    """
    before_text = pending.before
    if now == before_text:
        return None
    start, old_end, new_end = changed_span(before_text, now)
    now_data = now.encode("utf-8")

    def byte(offset: int) -> int:
        return len(now[:offset].encode("utf-8"))

    a, b = _with_import_block(now, start, new_end)
    if not now[a:b].lstrip().startswith("use "):  # not an import: the enclosing item
        region = items.region_at(pending.file, now_data, byte(start), max(byte(start), byte(new_end)))
        a = min(start, char_index(now_data, region.byte_start))
        b = max(new_end, char_index(now_data, region.byte_end))
    delta = new_end - old_end
    if not before_text[a : b - delta].strip():  # a pure insertion (the file's first import): add the next item
        following = items.region_at(pending.file, now_data, byte(b))
        b = max(b, char_index(now_data, following.byte_end))
    before, after = before_text[a : b - delta], now[a:b]
    if before == after or not before.strip() or not after.strip() or after.count("\n") > MAX_FIX_LINES:
        return None
    b_from = len(before_text[:a].encode("utf-8"))
    return WrittenFix(pending.file, b_from, b_from + len(before.encode("utf-8")), before, after)


def own_fix_offer(root: Path, route: str, pending: PendingFix, fix: WrittenFix) -> Offer:
    """The user's fix as an offer of its own, verified by the check that no longer reports the
    error; never shown, only recorded (with its ``edited`` outcome)."""
    edit = Edit(fix.file, fix.byte_start, fix.byte_end, fix.after)
    candidate = FixCandidate(source=OWN_FIX_SOURCE, title="your own fix", edits=(edit,), route=route)
    region = RegionChange(fix.file, fix.before, fix.after, fix.byte_start, fix.byte_end)
    verdict = Verdict(True, "your own fix (cargo check)")
    return Offer(candidate, verdict, pending.diagnostic, root, (region,), {fix.file: pending.before.encode("utf-8")})
