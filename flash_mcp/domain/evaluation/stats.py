"""Paired statistics for "did it improve?": bootstrap interval, exact McNemar, MDE, one verdict.

Pure functions over per-row numbers. Two evaluations are compared row by row (the same held-out
rows, measured with the same ruler), so every number here is about the per-row differences
d_i = b_i - a_i, where a_i and b_i are a row's mean score over its samples.

- Interval: the percentile bootstrap of mean(d) (rows resampled with replacement, seeded).
- McNemar: on per-row success, the exact two-sided binomial test of the discordant pairs.
- MDE: the smallest true mean difference a paired test on these rows would detect with 80%
  power at alpha 0.05: (z_{1-alpha/2} + z_{power}) * sd(d) / sqrt(n).
- Verdict: mean reward `improved` / `regressed` when the interval excludes 0, else `no detectable difference`;
  success `improved` / `regressed` when McNemar's p < alpha. `headline` says one word only when both agree,
  else each signal with its own word ("mean reward improved; success no detectable difference (0/200 → 0/200)").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

IMPROVED, REGRESSED, NO_DIFFERENCE = "improved", "regressed", "no detectable difference"
UNSTABLE = "unstable or target-aware reward"
RESAMPLES = 10_000
LEVEL = 0.95
ALPHA, POWER = 0.05, 0.8
# Below this many paired rows the percentile bootstrap covers far less than its nominal 95%
# (three rows that all improved give the interval [1, 1]); no verdict but "no detectable difference".
MIN_ROWS = 10
_CHUNK_CELLS = 2_000_000  # resamples x rows drawn at once: bounds memory for large evaluations


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class McNemar:
    improved: int  # rows that failed in A and succeed in B
    regressed: int  # rows that succeeded in A and fail in B
    p_value: float


@dataclass(frozen=True)
class PairedResult:
    rows: int
    mean_a: float
    mean_b: float
    difference: float
    interval: Interval
    sd: float
    mde: float | None
    mcnemar: McNemar
    verdict: str
    reason: str


def mean(values: list[float]) -> float:
    return math.fsum(values) / len(values) if values else 0.0


def sample_sd(values: list[float]) -> float:
    """Standard deviation with n-1 in the denominator; 0 for fewer than two values."""
    if len(values) < 2:
        return 0.0
    centre = mean(values)
    return math.sqrt(math.fsum((v - centre) ** 2 for v in values) / (len(values) - 1))


def bootstrap_interval(
    differences: list[float], *, resamples: int = RESAMPLES, seed: int = 0, level: float = LEVEL
) -> Interval:
    """Percentile bootstrap interval of the mean of `differences`; the same seed gives the same interval."""
    import numpy as np

    values = np.asarray(differences, dtype=float)
    n = len(values)
    if n == 0:
        return Interval(0.0, 0.0)
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // n)
    means = np.concatenate(
        [values[rng.integers(0, n, size=(min(chunk, resamples - start), n))].mean(axis=1)
         for start in range(0, resamples, chunk)]
    )  # fmt: skip
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(float(low), float(high))


def mcnemar_exact(improved: int, regressed: int) -> McNemar:
    """Exact two-sided McNemar test: under no difference each discordant row flips either way with p = 1/2,
    so p = min(1, 2 * P(Binomial(n, 1/2) <= min(improved, regressed))) with n the discordant rows."""
    n = improved + regressed
    if n == 0:
        return McNemar(improved, regressed, 1.0)
    tail = sum(math.comb(n, k) for k in range(min(improved, regressed) + 1))
    return McNemar(improved, regressed, min(1.0, 2 * tail / 2**n))


def minimum_detectable_difference(sd: float, rows: int, alpha: float = ALPHA, power: float = POWER) -> float | None:
    """The paired MDE: (z_{1-alpha/2} + z_{power}) * sd / sqrt(rows), about 2.8 * sd / sqrt(rows).

    None when it cannot be estimated: fewer than two rows, or every row moved by exactly the same
    amount (sd 0), where any spread estimate would be invented."""
    if rows < 2 or sd == 0:
        return None
    normal = NormalDist()
    return (normal.inv_cdf(1 - alpha / 2) + normal.inv_cdf(power)) * sd / math.sqrt(rows)


def verdict(interval: Interval, rows: int) -> tuple[str, str]:
    """The one-word verdict and why."""
    if rows < MIN_ROWS:
        return NO_DIFFERENCE, f"only {rows} paired row(s); a verdict needs at least {MIN_ROWS}"
    if interval.low > 0:
        return IMPROVED, "the 95% interval of the paired difference lies above 0"
    if interval.high < 0:
        return REGRESSED, "the 95% interval of the paired difference lies below 0"
    return NO_DIFFERENCE, "the 95% interval of the paired difference contains 0"


def paired(
    scores_a: list[float], scores_b: list[float], success_a: list[bool], success_b: list[bool], *, seed: int = 0
) -> PairedResult:
    """Compare B against A on the same rows (row i of each list is the same row)."""
    if not (len(scores_a) == len(scores_b) == len(success_a) == len(success_b)):
        raise ValueError("paired lists must have one entry per row, in the same order")
    differences = [b - a for a, b in zip(scores_a, scores_b, strict=True)]
    rows = len(differences)
    interval = bootstrap_interval(differences, seed=seed)
    sd = sample_sd(differences)
    if sd <= 1e-12 * max(1.0, abs(mean(differences))):
        sd = 0.0  # every row moved by the same amount; what is left is rounding
    improved = sum(1 for a, b in zip(success_a, success_b, strict=True) if b and not a)
    regressed = sum(1 for a, b in zip(success_a, success_b, strict=True) if a and not b)
    word, reason = verdict(interval, rows)
    return PairedResult(
        rows=rows, mean_a=mean(scores_a), mean_b=mean(scores_b), difference=mean(differences), interval=interval,
        sd=sd, mde=minimum_detectable_difference(sd, rows), mcnemar=mcnemar_exact(improved, regressed),
        verdict=word, reason=reason,
    )  # fmt: skip


def row_mean(scores: list[float]) -> float:
    """A row's score: the mean over its samples (so each row counts once, whatever samples_per_row is)."""
    return mean(scores)


def row_success(successes: list[bool]) -> bool:
    """A row succeeds when more than half of its samples succeed (the only sample, with one per row)."""
    return sum(successes) * 2 > len(successes)


def success_verdict(test: McNemar, rows: int) -> str:
    """Success's own word: a direction only when the exact McNemar test finds one (and there are enough rows)."""
    if rows < MIN_ROWS or test.p_value >= ALPHA:
        return NO_DIFFERENCE
    return IMPROVED if test.improved > test.regressed else REGRESSED


def headline(reward: str, success: str | None, successes: tuple[int, int] | None, rows: int) -> str:
    """The comparison's verdict: one word when every measured signal says it (or success is not measured),
    else each signal named with its own word, so `improved` is said only of what improved."""
    if success is None or success == reward:
        return reward
    counts = f" ({successes[0]}/{rows} → {successes[1]}/{rows})" if successes else ""
    return f"mean reward {reward}; success {success}{counts}"
