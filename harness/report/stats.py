"""Statistics for leaderboards: seed summaries with bootstrap intervals, paired tests between cells
on the same examples, Holm's correction, ranks and win rates. scipy does the numerics.

Paired tests use the per-example predictions stored with every run. Seeds are paired by seed
value. For a metric that is a mean over examples (accuracy), each example's score is averaged over
the seed pairs and the two cells are compared example by example: McNemar's exact test for one
seed, a sign-flip permutation test for several. Any other metric (F1, MCC, Pearson) gets a paired
bootstrap over examples: the same resampled examples for both cells and every seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from harness.metrics import Metric

CONFIDENCE = 0.95
RESAMPLES = 2000


@dataclass(frozen=True)
class SeedSummary:
    n: int
    mean: float
    std: float  # sample standard deviation (ddof=1); nan for one seed
    low: float  # 95% bootstrap confidence interval of the mean; nan for one seed
    high: float


def summarize(values: Sequence[float], seed: int = 0) -> SeedSummary:
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if len(x) == 0:
        return SeedSummary(0, math.nan, math.nan, math.nan, math.nan)
    if len(x) == 1:
        return SeedSummary(1, float(x[0]), math.nan, math.nan, math.nan)
    mean, std = float(x.mean()), float(x.std(ddof=1))
    if std == 0:
        return SeedSummary(len(x), mean, 0.0, mean, mean)
    ci = stats.bootstrap((x,), np.mean, confidence_level=CONFIDENCE, n_resamples=RESAMPLES,
                         method="percentile", random_state=seed).confidence_interval
    return SeedSummary(len(x), mean, std, float(ci.low), float(ci.high))


@dataclass(frozen=True)
class PairedTest:
    test: str  # mcnemar | permutation | paired bootstrap
    difference: float  # metric(A) - metric(B), in points, averaged over seed pairs
    p_value: float
    seeds: int  # seed pairs used
    examples: int


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
    n = len(refs)
    diff = float(np.mean([metric(pa, refs) - metric(pb, refs) for pa, pb, _ in pairs]))
    if metric.per_example is not None:
        score_a = np.mean([[metric.per_example(p, r) for p, r in zip(pa, refs)] for pa, _, _ in pairs], axis=0)
        score_b = np.mean([[metric.per_example(p, r) for p, r in zip(pb, refs)] for _, pb, _ in pairs], axis=0)
        if len(pairs) == 1:
            wins, losses = int(np.sum(score_a > score_b)), int(np.sum(score_a < score_b))
            p = 1.0 if wins + losses == 0 else stats.binomtest(wins, wins + losses, 0.5).pvalue
            return PairedTest("mcnemar", diff, float(p), 1, n)
        d = score_a - score_b
        if not np.any(d):
            return PairedTest("permutation", diff, 1.0, len(pairs), n)
        result = stats.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=resamples,
                                        alternative="two-sided", random_state=seed)
        return PairedTest("permutation", diff, float(result.pvalue), len(pairs), n)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, (resamples, n))  # the same resampled examples for both cells and every seed
    if metric.stats is not None:  # corpus-level metrics: resample each example's sufficient statistics
        def resampled(p):
            return np.asarray(metric.from_stats(np.asarray(metric.stats(p, refs))[idx].sum(axis=1))) * metric.scale
    else:
        ref = np.asarray(refs)

        def resampled(p):
            return metric.many(np.asarray(p)[idx], ref[idx])
    deltas = np.mean([resampled(pa) - resampled(pb) for pa, pb, _ in pairs], axis=0)
    deltas = deltas[~np.isnan(deltas)]
    # two-sided: how often the resampled difference falls on either side of zero, never exactly 0
    k = len(deltas)
    p = min(1.0, 2 * min((np.sum(deltas <= 0) + 1) / (k + 1), (np.sum(deltas >= 0) + 1) / (k + 1))) if k else math.nan
    return PairedTest("paired bootstrap", diff, float(p), len(pairs), n)


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
