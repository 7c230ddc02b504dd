"""Statistics for honest reporting: Wilson intervals, the unbiased pass@k, exact McNemar.

Pure functions on counts, tested against hand-computed values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: z for a two-sided 95% interval.
Z95 = 1.959963984540054


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion; ``successes`` may be fractional (mean of per-case rates).

    Unlike the normal approximation it stays inside [0, 1] and is sensible at 0/n and n/n,
    which matters for small per-route counts.
    """
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within [0, {n}], got {successes}")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At 0/n and n/n the bound is exactly 0 or 1; rounding would leave 5e-17, and a gate comparing
    # "0/3 after" with "the interval of 0/3 before" would then call no change a regression.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def percentile(values: Iterable[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0..1) of ``values``, NaN for none: what latency tables print."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of pass@k from ``n`` samples of which ``c`` passed: ``1 - C(n-c,k)/C(n,k)``."""
    if not 0 <= c <= n or n < 1:
        raise ValueError(f"need 0 <= c <= n and n >= 1, got n={n}, c={c}")
    if k < 1 or k > n:
        raise ValueError(f"k must be within [1, n={n}], got {k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value: discordant pairs ``b`` (A only) and ``c`` (B only) ~ Bin(b+c, 1/2)."""
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be >= 0")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def sign_test_greater(gains: int, losses: int) -> float:
    """One-sided exact sign test: the chance of ``gains`` or more of ``gains + losses`` discordant
    pairs going one way if a change made no difference (each way with probability 1/2)."""
    if gains < 0 or losses < 0:
        raise ValueError("counts must be >= 0")
    n = gains + losses
    if n == 0:
        return 1.0
    return sum(math.comb(n, i) for i in range(gains, n + 1)) / 2**n


@dataclass(frozen=True)
class Rate:
    """A pass rate over ``n`` cases with its Wilson 95% interval."""

    successes: float
    n: int

    @property
    def value(self) -> float:
        return self.successes / self.n if self.n else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.successes, self.n)

    def format(self) -> str:
        lo, hi = self.interval
        count = f"{self.successes:g}" if self.successes != int(self.successes) else str(int(self.successes))
        return f"{100 * self.value:.1f}% ({count}/{self.n}) [{100 * lo:.1f}, {100 * hi:.1f}]"


@dataclass(frozen=True)
class CaseSamples:
    """All samples of one case: per seed, whether the first attempt passed and whether any attempt did."""

    case_id: str
    source: str
    route: str
    first_attempt: tuple[bool, ...]
    within_k: tuple[bool, ...]

    @property
    def n(self) -> int:
        return len(self.within_k)

    def pass_at_1(self) -> float:
        """Expected first-attempt success of one sample (pass@1 over seeds, unbiased)."""
        return pass_at_k(self.n, sum(self.first_attempt), 1)

    def pass_at_k_attempts(self) -> float:
        """Expected success of one sample within the run's K attempts (with compiler feedback)."""
        return pass_at_k(self.n, sum(self.within_k), 1)

    def pass_at_all_seeds(self) -> float:
        """pass@n over seeds: at least one of the n seeded samples passed within K attempts."""
        return pass_at_k(self.n, sum(self.within_k), self.n)


@dataclass(frozen=True)
class GroupSummary:
    name: str
    pass_at_1: Rate
    pass_at_k: Rate
    any_seed: Rate


def summarise(samples: Iterable[CaseSamples], key: str = "all") -> dict[str, GroupSummary]:
    """Pass rates per group: ``key`` is ``all``, ``source`` or ``route``."""
    groups: dict[str, list[CaseSamples]] = {}
    for s in samples:
        name = "all" if key == "all" else str(getattr(s, key))
        groups.setdefault(name, []).append(s)
    out: dict[str, GroupSummary] = {}
    for name in sorted(groups):
        members = groups[name]
        n = len(members)
        out[name] = GroupSummary(
            name,
            Rate(sum(m.pass_at_1() for m in members), n),
            Rate(sum(m.pass_at_k_attempts() for m in members), n),
            Rate(sum(m.pass_at_all_seeds() for m in members), n),
        )
    return out


@dataclass(frozen=True)
class PairedComparison:
    """Two runs on the same cases: which flipped each way, and the exact McNemar p-value."""

    both: int
    neither: int
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def p_value(self) -> float:
        return mcnemar_exact(len(self.only_a), len(self.only_b))


def paired_comparison(a: Mapping[str, bool], b: Mapping[str, bool]) -> PairedComparison:
    """Compare per-case outcomes of run A and run B on the cases both ran."""
    common = sorted(set(a) & set(b))
    return PairedComparison(
        both=sum(1 for c in common if a[c] and b[c]),
        neither=sum(1 for c in common if not a[c] and not b[c]),
        only_a=tuple(c for c in common if a[c] and not b[c]),
        only_b=tuple(c for c in common if b[c] and not a[c]),
        missing=tuple(sorted(set(a) ^ set(b))),
    )
