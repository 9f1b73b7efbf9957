"""Statistics for leaderboards: seed summaries with Student-t intervals, paired tests between cells
on the same examples that count both sources of variance (seeds and examples), Holm's correction,
ranks and win rates. scipy does the numerics.

Seed interval: the mean over seeds ± t(0.975, n−1) · s / √n, Student's t interval for the mean of
n seeds (n ≥ 2): it covers the true mean in 95% of draws when seed scores are normal, where a
percentile bootstrap over 2-5 seeds is no wider than their range.

Paired test of cells A and B (same examples, seeds paired by seed value). The difference D̄ is
the mean over seed pairs of metric(A) − metric(B). Its variance has two parts: training randomness
(how D moves from seed to seed) and the evaluation examples (how D would move on other examples
drawn like these). With S ≥ 2 seed pairs, the seed part is the variance of the per-seed
differences over seeds / S; the example part is, for a metric that is a mean over examples
(accuracy, exact match, SQuAD F1, ROUGE), the variance of the seed-averaged per-example
differences / n, and for any other metric (F1, MCC, BLEU, entity F1) the variance of D̄ over paired
bootstrap resamples of the examples (the same resampled examples for both cells and every seed).
Each part also holds the seed-by-example noise, so the sum errs on the large side. D̄ / √(sum) is
referred to Student's t with Welch–Satterthwaite degrees of freedom (S − 1 for the seed part, n − 1
for the example part): "t (seeds + examples)". With one seed there is no seed part: McNemar's exact
test when every per-example score is 0 or 1, a paired t-test over examples for other per-example
scores, and a normal test on the bootstrap standard error for the rest. p-values come from
distributions, not from counting resamples, so they have no floor that a correction cannot pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from harness.metrics import Metric

CONFIDENCE = 0.95
RESAMPLES = 2000  # bootstrap resamples of the examples, for the standard error of corpus-level metrics
INTERVAL = "95% Student-t interval of the mean over seeds"


@dataclass(frozen=True)
class SeedSummary:
    n: int
    mean: float
    std: float  # sample standard deviation (ddof=1); nan for one seed
    low: float  # 95% Student-t confidence interval of the mean over seeds; nan for one seed
    high: float


def summarize(values: Sequence[float]) -> SeedSummary:
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if len(x) == 0:
        return SeedSummary(0, math.nan, math.nan, math.nan, math.nan)
    if len(x) == 1:
        return SeedSummary(1, float(x[0]), math.nan, math.nan, math.nan)
    mean, std = float(x.mean()), float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(x) - 1)) * std / math.sqrt(len(x))
    return SeedSummary(len(x), mean, std, mean - half, mean + half)


@dataclass(frozen=True)
class PairedTest:
    test: str  # "t (seeds + examples)" | "McNemar (exact)" | "paired t (examples)" | "bootstrap SE (normal)"
    difference: float  # metric(A) - metric(B), in points, averaged over seed pairs
    p_value: float
    seeds: int  # seed pairs used
    examples: int
    std_error: float = math.nan  # of the difference, in points (nan for McNemar)
    seed_variance: float = math.nan  # the seed part of the difference's variance (points²)
    example_variance: float = math.nan  # the example part


Run = tuple[int, list, list]  # (seed, predictions, references)


def paired_test(a: list[Run], b: list[Run], metric: Metric, resamples: int = RESAMPLES, seed: int = 0) -> PairedTest | None:
    """Are cells A and B different on the same examples? None if they share no comparable runs."""
    by_seed_b = {s: (p, r) for s, p, r in b}
    pairs = [(pa, by_seed_b[s][0], ra) for s, pa, ra in a if s in by_seed_b and list(by_seed_b[s][1]) == list(ra)]
    if not pairs:
        return None
    refs = pairs[0][2]
    if any(list(r) != list(refs) for _, _, r in pairs):
        return None
    n, k = len(refs), len(pairs)
    per_seed = np.array([metric(pa, refs) - metric(pb, refs) for pa, pb, _ in pairs])
    diff = float(per_seed.mean())
    if metric.per_example is not None:
        score_a = np.array([[metric.per_example(p, r) for p, r in zip(pa, refs)] for pa, _, _ in pairs])
        score_b = np.array([[metric.per_example(p, r) for p, r in zip(pb, refs)] for _, pb, _ in pairs])
        if k == 1 and np.isin(score_a, (0.0, 1.0)).all() and np.isin(score_b, (0.0, 1.0)).all():
            wins, losses = int(np.sum(score_a > score_b)), int(np.sum(score_a < score_b))
            p = 1.0 if wins + losses == 0 else stats.binomtest(wins, wins + losses, 0.5).pvalue
            return PairedTest("McNemar (exact)", diff, float(p), 1, n)
        d = (score_a - score_b).mean(axis=0) * metric.scale  # per example, averaged over seeds
        example_variance = float(d.var(ddof=1)) / n if n > 1 else math.nan
    else:
        example_variance = _bootstrap_variance(pairs, refs, metric, resamples, seed)
    seed_variance = float(per_seed.var(ddof=1)) / k if k > 1 else 0.0
    parts = [(seed_variance, k - 1), (example_variance, n - 1)] if k > 1 else [(example_variance, n - 1)]
    variance = sum(v for v, _ in parts)
    name = "t (seeds + examples)" if k > 1 else "paired t (examples)" if metric.per_example else "bootstrap SE (normal)"
    if math.isnan(variance):
        return PairedTest(name, diff, math.nan, k, n)
    if variance == 0:
        return PairedTest(name, diff, 1.0 if diff == 0 else 0.0, k, n, 0.0, seed_variance, example_variance)
    dof = variance ** 2 / sum(v ** 2 / df for v, df in parts if v > 0)
    statistic = abs(diff) / math.sqrt(variance)
    if metric.per_example is None and k == 1:
        p = 2 * stats.norm.sf(statistic)
    else:
        p = 2 * stats.t.sf(statistic, dof)
    return PairedTest(name, diff, float(p), k, n, math.sqrt(variance), seed_variance, example_variance)


def _bootstrap_variance(pairs, refs, metric: Metric, resamples: int, seed: int) -> float:
    """Variance (points²) of the seed-averaged difference over paired bootstrap resamples of the
    examples: the same resampled examples for both cells and every seed."""
    n = len(refs)
    idx = np.random.default_rng(seed).integers(0, n, (resamples, n))
    if metric.stats is not None:  # corpus-level metrics: resample each example's sufficient statistics
        def resampled(p):
            return np.asarray(metric.from_stats(np.asarray(metric.stats(p, refs))[idx].sum(axis=1))) * metric.scale
    else:
        ref = np.asarray(refs)

        def resampled(p):
            return metric.many(np.asarray(p)[idx], ref[idx])
    deltas = np.mean([resampled(pa) - resampled(pb) for pa, pb, _ in pairs], axis=0)
    deltas = deltas[~np.isnan(deltas)]
    return float(deltas.var(ddof=1)) if len(deltas) > 1 else math.nan
def holm(p_values: dict) -> dict:
    """Holm's step-down adjustment of a family of p-values (keys are kept)."""
    items = sorted(((p, k) for k, p in p_values.items() if not math.isnan(p)), key=lambda x: x[0])
    m = len(items)
    adjusted, running = {}, 0.0
    for i, (p, key) in enumerate(items):
        running = max(running, min(1.0, (m - i) * p))
        adjusted[key] = running
    for key in p_values:
        adjusted.setdefault(key, math.nan)
    return adjusted


def ranks(table: np.ndarray) -> np.ndarray:
    """Rank of each row (1 = best, ties share the mean rank) per column, nan where a score is missing."""
    out = np.full(table.shape, np.nan)
    for j in range(table.shape[1]):
        present = ~np.isnan(table[:, j])
        out[present, j] = stats.rankdata(-table[present, j])
    return out


def win_rates(table: np.ndarray) -> np.ndarray:
    """Share of (column, other row) comparisons each row wins (ties count one half)."""
    rows = table.shape[0]
    wins = np.zeros(rows)
    games = np.zeros(rows)
    for j in range(table.shape[1]):
        for a in range(rows):
            for b in range(rows):
                if a == b or np.isnan(table[a, j]) or np.isnan(table[b, j]):
                    continue
                games[a] += 1
                wins[a] += 1.0 if table[a, j] > table[b, j] else 0.5 if table[a, j] == table[b, j] else 0.0
    with np.errstate(invalid="ignore"):
        return np.where(games > 0, wins / np.maximum(games, 1), np.nan)
