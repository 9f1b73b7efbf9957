"""Statistics for leaderboards: seed summaries with Student-t intervals, the seed variance pooled
over a column's rows, seeds far from their row's others, paired tests between cells on the same
examples, Holm's correction, ranks and win rates. scipy does the numerics; the confidence set for
a column's best (the † marks) is harness.report.best.

Seed interval: the mean over seeds ± t(0.975, n−1) · s / √n, Student's t interval for the mean of
n seeds (n ≥ 2): it covers the true mean in 95% of draws when seed scores are normal and none is an
outlier (`outliers` names those that sit far off), where a percentile bootstrap over 2-5 seeds is no
wider than their range.

Pooled seed variance: training noise is mostly a property of the task and backbone, so a column's
rows share one estimate, the within-row variance of seed scores on Σ (seeds − 1) degrees of freedom
(`pooled_noise`): two or three seeds per row still estimate it usefully, where one pair of rows
would give 1 or 2 degrees of freedom.

Paired test of cells A and B (same examples; runs with a NaN score are left out, and counted, by
every statistic alike). The difference D is A's mean over its seeds minus B's. Its variance has two
parts: training randomness, the pooled seed variance σ̂² · (1/S_A + 1/S_B), and the evaluation
examples: for a metric that is a mean over examples (accuracy, exact match, SQuAD F1, ROUGE) the
variance of the per-example differences of seed-averaged scores / n, for any other metric (F1, MCC,
BLEU, entity F1) the variance of D over paired bootstrap resamples of the examples (the same
resampled examples for both cells and every seed). D / √(sum) is referred, not to Welch–
Satterthwaite degrees of freedom (which take a seed variance estimated near zero as known to be
zero: two seeds whose gaps agree gave p = 6e-9), but to its exact law when σ² lies at the upper
(1 − γ) bound of its χ² interval, plus γ (Berger & Boos 1994; `pooled_p_value`): "t (pooled seeds +
examples)". With one seed everywhere there is no seed part: McNemar's exact test when every
per-example score is 0 or 1, a paired t-test over examples for other per-example scores, and a
normal test on the bootstrap standard error for the rest. p-values come from distributions, not
from counting resamples, so they have no floor that a correction cannot pass.
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
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
class SeedNoise:
    """Training (seed) noise of a column, pooled over its rows: the within-row variance of seed
    scores (points²) on `dof` = Σ (seeds − 1) degrees of freedom, from `rows` rows with 2 seeds or more."""
    variance: float = 0.0
    dof: int = 0
    rows: int = 0


def pooled_noise(groups: Sequence[Sequence[float]]) -> SeedNoise:
    """The seed variance pooled over a column's rows (each a list of seed scores; NaN dropped)."""
    squares, dof, rows = 0.0, 0, 0
    for values in groups:
        x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
        if len(x) > 1:
            squares += float(((x - x.mean()) ** 2).sum())
            dof += len(x) - 1
            rows += 1
    return SeedNoise(squares / dof if dof else 0.0, dof, rows)


OUTLIER_SPREADS = 4.0  # a seed further than this many robust standard deviations from its row's median
OUTLIER_POINTS = 1.0  # ... and further than this many points is marked


def outliers(groups: Sequence[Sequence[float]]) -> list[list[int]]:
    """Per row, the positions of seeds that sit far from the row's others: more than OUTLIER_SPREADS
    robust standard deviations of the column (1.4826 x the median absolute distance of its seeds from
    their row's median, over the rows with 2 seeds or more) and more than OUTLIER_POINTS from the
    row's median. With 2 seeds both are marked: nothing says which one is off."""
    residuals = []
    arrays = [np.asarray([math.nan if v is None else v for v in values], dtype=float) for values in groups]
    for x in arrays:
        finite = x[~np.isnan(x)]
        if len(finite) > 1:
            distance = np.abs(finite - np.median(finite))
            residuals += [d for d in distance if d > 0]
    scale = 1.4826 * float(np.median(residuals)) if residuals else 0.0
    out = []
    for x in arrays:
        finite = ~np.isnan(x)
        if finite.sum() < 2:
            out.append([])
            continue
        distance = np.abs(x - np.median(x[finite]))
        out.append([int(i) for i in np.flatnonzero(finite & (distance > OUTLIER_SPREADS * scale)
                                                   & (distance > OUTLIER_POINTS))])
    return out


@dataclass(frozen=True)
class PairedTest:
    test: str  # "t (pooled seeds + examples)" | "McNemar (exact)" | "paired t (examples)" | "bootstrap SE (normal)"
    difference: float  # metric(A) - metric(B), in points: the difference of the means over each one's seeds
    p_value: float
    seeds: int  # seeds of A and B together that were compared
    examples: int
    std_error: float = math.nan  # of the difference, in points (nan for McNemar)
    seed_variance: float = math.nan  # the seed part of the difference's variance (points²)
    example_variance: float = math.nan  # the example part
    dropped: int = 0  # runs left out: a NaN score, or other examples than the rest


Run = tuple[int, list, list]  # (seed, predictions, references)


def comparable(groups: Sequence[Sequence[Run]], metric: Metric) -> tuple[list[list[Run]], int]:
    """Each group's runs with a finite score on the references most runs share, and how many runs
    were left out: every statistic drops the same runs (a NaN score is never 'different')."""
    keys = [[_key(refs) for _, _, refs in runs] for runs in groups]
    counts = Counter(key for found in keys for key in found)
    if not counts:
        return [[] for _ in groups], 0
    shared = max(counts, key=counts.get)
    on_shared = [[run for run, key in zip(runs, found) if key == shared] for runs, found in zip(groups, keys)]
    values = iter(scores([run for runs in on_shared for run in runs], metric))
    kept = [[run for run in runs if not math.isnan(next(values))] for runs in on_shared]
    return kept, sum(len(runs) for runs in groups) - sum(len(runs) for runs in kept)


def scores(runs: Sequence[Run], metric: Metric) -> list[float]:
    """`metric` of each run (in points): at once through the metric's batch form (held equal to its
    library's by the metric tests) where it has one and the runs are on the same references, which
    spares the library's input checks per run (most of a board's time with scikit-learn)."""
    if metric.batch is not None and len(runs) > 1 and all(r is runs[0][2] or r == runs[0][2] for _, _, r in runs):
        try:
            predictions = np.asarray([p for _, p, _ in runs])
            references = np.asarray([runs[0][2]] * len(runs))
        except ValueError:  # ragged: runs on other lengths than their references, scored one by one
            pass
        else:
            if predictions.shape == references.shape and predictions.ndim == 2:
                return [float(v) for v in metric.many(predictions, references)]
    return [metric(p, r) for _, p, r in runs]


def _key(refs) -> str:
    return json.dumps(list(refs), sort_keys=True, default=str)


def paired_test(a: list[Run], b: list[Run], metric: Metric, noise: SeedNoise | None = None,
                resamples: int = RESAMPLES, seed: int = 0, gamma: float | None = None) -> PairedTest | None:
    """Is cell A different from cell B on the same examples? `noise`: the seed variance pooled over
    the column the two belong to (by default over the two alone). Runs with a NaN score are left
    out and counted. `gamma`: what bounding the seed variance may spend (GAMMA; a family of m tests
    corrected together gives each GAMMA / m, so that no p-value sits above what the correction
    needs). None if they share no comparable runs."""
    (a, b), dropped = comparable([a, b], metric)
    if not a or not b:
        return None
    refs = a[0][2]
    n, k = len(refs), len(a) + len(b)
    scores_a, scores_b = (scores([(s, p, refs) for s, p, _ in runs], metric) for runs in (a, b))
    diff = float(np.mean(scores_a) - np.mean(scores_b))
    noise = noise if noise is not None else pooled_noise([scores_a, scores_b])
    if metric.per_example is not None:
        score_a = np.array([[metric.per_example(p, r) for p, r in zip(pa, refs)] for _, pa, _ in a])
        score_b = np.array([[metric.per_example(p, r) for p, r in zip(pb, refs)] for _, pb, _ in b])
        if (len(a) == len(b) == 1 and noise.dof == 0 and np.isin(score_a, (0.0, 1.0)).all()
                and np.isin(score_b, (0.0, 1.0)).all()):
            wins, losses = int(np.sum(score_a > score_b)), int(np.sum(score_a < score_b))
            p = 1.0 if wins + losses == 0 else stats.binomtest(wins, wins + losses, 0.5).pvalue
            return PairedTest("McNemar (exact)", diff, float(p), k, n, dropped=dropped)
        if n > 1:  # the seed-averaged scores' covariance, less each cell's seed noise on single examples
            c = covariance_from([score_a * metric.scale, score_b * metric.scale], n)
            example_variance = float(max(0.0, c[0, 0] + c[1, 1] - 2 * c[0, 1]))
        else:
            example_variance = math.nan
    else:
        example_variance = _bootstrap_variance(a, b, refs, metric, resamples, seed)
    both = 1 / len(a) + 1 / len(b)
    seeded = noise.dof > 0 and noise.variance > 0  # seeds that all agree: training added no noise
    seed_variance = noise.variance * both if seeded else 0.0
    name = ("t (pooled seeds + examples)" if seeded else
            "paired t (examples)" if metric.per_example else "bootstrap SE (normal)")
    variance = example_variance + seed_variance
    if math.isnan(variance):
        return PairedTest(name, diff, math.nan, k, n, dropped=dropped)
    if variance == 0:
        return PairedTest(name, diff, 1.0 if diff == 0 else 0.0, k, n, 0.0, seed_variance, example_variance, dropped)
    statistic = abs(diff) / math.sqrt(variance)
    if seeded:
        p = pooled_p_value(statistic, example_variance, noise, both, GAMMA if gamma is None else gamma)
    elif metric.per_example is not None:
        p = float(2 * stats.t.sf(statistic, n - 1))
    else:
        p = float(2 * stats.norm.sf(statistic))
    return PairedTest(name, diff, p, k, n, math.sqrt(variance), seed_variance, example_variance, dropped)


def drop_test(clean: list[Run], changed: list[Run], metric: Metric, resamples: int = RESAMPLES,
              seed: int = 0) -> PairedTest | None:
    """Do these trained models score lower on a changed copy of eval (a perturbation: the same examples,
    the same references) than on eval itself? The runs of each seed are paired, and the examples are
    the unit: the models are held fixed, so seed noise has no part (whether another training run would
    drop as much is the seed spread of each set's own score). A mean-over-examples metric: McNemar's
    exact test with one seed of 0/1 scores, else a t-test over the examples' seed-averaged
    differences; any other metric: a normal test on the paired bootstrap standard error of the drop
    (the same resampled examples for both sets and every seed). None when no seed has both."""
    seeds = {s for s, _, _ in clean} & {s for s, _, _ in changed}
    a = sorted((run for run in clean if run[0] in seeds), key=lambda run: run[0])
    b = sorted((run for run in changed if run[0] in seeds), key=lambda run: run[0])
    if not a or any(list(x[2]) != list(y[2]) for x, y in zip(a, b)):
        return None
    refs, n = a[0][2], len(a[0][2])
    diff = float(np.mean([metric(x[1], refs) - metric(y[1], refs) for x, y in zip(a, b)]))
    if metric.per_example is not None:
        per = np.array([[metric.per_example(p, r) - metric.per_example(q, r) for p, q, r in zip(x[1], y[1], refs)]
                        for x, y in zip(a, b)]) * metric.scale
        if len(a) == 1 and np.isin(np.abs(per) / metric.scale, (0.0, 1.0)).all():
            wins, losses = int((per > 0).sum()), int((per < 0).sum())
            p = 1.0 if wins + losses == 0 else stats.binomtest(wins, wins + losses, 0.5).pvalue
            return PairedTest("McNemar (exact)", diff, float(p), 2 * len(a), n)
        averaged = per.mean(axis=0)
        error = float(averaged.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        test, tail = "paired t (examples)", (lambda z: 2 * stats.t.sf(z, n - 1))
    else:
        resampled = resampler(metric, refs, np.random.default_rng(seed).integers(0, n, (resamples, n)))
        deltas = np.mean([resampled(x[1]) - resampled(y[1]) for x, y in zip(a, b)], axis=0)
        deltas = deltas[~np.isnan(deltas)]
        error = float(deltas.std(ddof=1)) if len(deltas) > 1 else math.nan
        test, tail = "bootstrap SE (normal)", (lambda z: 2 * stats.norm.sf(z))
    if math.isnan(error):
        return PairedTest(test, diff, math.nan, 2 * len(a), n)
    p = (1.0 if diff == 0 else 0.0) if error == 0 else float(tail(abs(diff) / error))
    return PairedTest(test, diff, p, 2 * len(a), n, error, 0.0, error ** 2)


# the share of α spent bounding a pooled seed variance (Berger & Boos 1994): harness.report.best's too
GAMMA = 0.005


def pooled_p_value(statistic: float, example_variance: float, noise: SeedNoise, both: float,
                   gamma: float = GAMMA) -> float:
    """Two-sided p-value of |D| / sqrt(E + σ̂²·c) when D ~ N(0, E + σ²·c) and σ̂² ~ σ² χ²_ν / ν, with σ²
    at the upper (1 − GAMMA) bound of its χ² interval, plus GAMMA: valid whatever the true seed
    variance (Berger & Boos), where Welch–Satterthwaite degrees of freedom take a seed variance
    estimated near zero as known to be zero. A scale mixture of normals, integrated over the χ²."""
    bound = noise.dof * noise.variance / stats.chi2.ppf(gamma, noise.dof) * both
    if bound == 0:
        return float(min(1.0, 2 * stats.norm.sf(statistic) + gamma))
    w = _chi2_nodes(noise.dof)  # E over w = χ²_ν / ν, by the midpoints of its quantiles
    tails = 2 * stats.norm.sf(statistic * np.sqrt((example_variance + bound * w) / (example_variance + bound)))
    return float(min(1.0, tails.mean() + gamma))


@functools.lru_cache(maxsize=64)
def _chi2_nodes(dof: int, nodes: int = 4096) -> np.ndarray:
    return stats.chi2.ppf((np.arange(nodes) + 0.5) / nodes, dof) / dof


def _bootstrap_variance(a: list[Run], b: list[Run], refs, metric: Metric, resamples: int, seed: int) -> float:
    """Variance (points²) of the difference of seed-averaged scores over paired bootstrap resamples
    of the examples: the same resampled examples for both cells and every seed."""
    n = len(refs)
    resampled = resampler(metric, refs, np.random.default_rng(seed).integers(0, n, (resamples, n)))
    deltas = np.mean([resampled(p) for _, p, _ in a], axis=0) - np.mean([resampled(p) for _, p, _ in b], axis=0)
    deltas = deltas[~np.isnan(deltas)]
    return float(deltas.var(ddof=1)) if len(deltas) > 1 else math.nan


def resampler(metric: Metric, refs, idx: np.ndarray):
    """predictions -> the metric on each bootstrap resample of the examples (`idx`: resamples x n
    example indices); corpus-level metrics resample each example's sufficient statistics."""
    if metric.stats is not None:
        def resampled(p):
            return np.asarray(metric.from_stats(np.asarray(metric.stats(p, refs))[idx].sum(axis=1))) * metric.scale
        return resampled
    ref = np.asarray(refs)

    def resampled(p):
        return metric.many(np.asarray(p)[idx], ref[idx])
    return resampled


def covariance_from(per: list[np.ndarray], divisor: int) -> np.ndarray:
    """The covariance of rows' seed-averaged scores over draws of the evaluation examples, from each
    row's seeds x units array (units: examples, divisor n; or bootstrap resamples, divisor 1),
    without the part that is seed noise: a row's seeds disagree on single examples, and that noise
    is in the seed variance already. Per row with S ≥ 2 seeds, (mean over seeds of one seed's
    variance − the seed average's variance) / (S − 1) is taken off the diagonal."""
    covariance = np.atleast_2d(np.cov(np.array([x.mean(axis=0) for x in per]))) / divisor
    for k, x in enumerate(per):
        if len(x) > 1:
            single = x.var(axis=1, ddof=1).mean() / divisor
            covariance[k, k] -= max(0.0, (single - covariance[k, k]) / (len(x) - 1))
    return covariance


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
