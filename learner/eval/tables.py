"""Result tables of one run (overall, per source, per route), shared by the CLI and ``summary.md``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from learner.stats import CaseSamples, Rate, summarise
from learner.store import EvalCaseResult


@dataclass(frozen=True)
class TableRow:
    kind: str
    group: str
    n: int
    pass_at_1: Rate
    pass_at_k: Rate
    any_seed: Rate
    #: (exact matches, cases with a reference fix) over the cases' first seed.
    exact: tuple[int, int]
    #: Mean changed lines of passing fixes and of the references of those same cases.
    edit_size: tuple[float, float] | None


def _samples(results: Sequence[EvalCaseResult]) -> list[CaseSamples]:
    from learner.eval.runner import samples_from_results

    return samples_from_results(results)


def run_rows(results: Sequence[EvalCaseResult]) -> list[TableRow]:
    """Rows for ``all``, then each source, then each route."""
    samples = _samples(results)
    first_seed: dict[str, EvalCaseResult] = {}
    for r in sorted(results, key=lambda r: r.seed):
        first_seed.setdefault(r.case_id, r)
    rows: list[TableRow] = []
    for kind in ("all", "source", "route"):
        for name, summary in summarise(samples, kind).items():
            members = [r for r in first_seed.values() if kind == "all" or getattr(r, kind) == name]
            with_ref = [r for r in members if r.exact_match is not None]
            sized = [r for r in members if r.passed and r.edit_size is not None and r.ref_edit_size is not None]
            edit = (
                (
                    sum(r.edit_size or 0 for r in sized) / len(sized),
                    sum(r.ref_edit_size or 0 for r in sized) / len(sized),
                )
                if sized
                else None
            )
            rows.append(
                TableRow(
                    kind,
                    name,
                    summary.pass_at_1.n,
                    summary.pass_at_1,
                    summary.pass_at_k,
                    summary.any_seed,
                    (sum(1 for r in with_ref if r.exact_match), len(with_ref)),
                    edit,
                )
            )
    return rows


def headers(k: int, seeds: int) -> list[str]:
    cols = ["group", "n", "pass@1 [95% CI]"] + ([f"pass@{k} [95% CI]"] if k > 1 else [])
    if seeds > 1:
        cols.append(f"any of {seeds} seeds [95% CI]")
    return [*cols, "exact (rustfmt)", "edit lines (ref)"]


def cells(row: TableRow, k: int, seeds: int) -> list[str]:
    label = row.group if row.kind == "all" else f"{row.kind}: {row.group}"
    out = [label, str(row.n), row.pass_at_1.format(), *([row.pass_at_k.format()] if k > 1 else [])]
    if seeds > 1:
        out.append(row.any_seed.format())
    out.append(f"{row.exact[0]}/{row.exact[1]}" if row.exact[1] else "-")
    out.append(f"{row.edit_size[0]:.1f} ({row.edit_size[1]:.1f})" if row.edit_size else "-")
    return out


def to_markdown(rows: Sequence[TableRow], k: int, seeds: int) -> str:
    head = headers(k, seeds)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines.extend("| " + " | ".join(cells(r, k, seeds)) + " |" for r in rows)
    return "\n".join(lines) + "\n"
