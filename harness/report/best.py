"""The rows of a leaderboard column that the data cannot exclude from being best: the † marks.

A column's rows are cells evaluated on the same examples, each a list of runs (seed, predictions,
references). The best set is a confidence set for the best: with probability at least 1 − α, no
row that is truly a best (tied at the highest mean a row could reach with unlimited seeds and
examples) is left out of it, for the whole column at once (Hansen, Lunde & Nason's guarantee for
a model confidence set, reached here by a max-t step-down over the column, Romano & Wolf 2005).

Model. Row k's score M_k (the mean over its seeds) is μ_k + e_k + x_k: e_k is training noise with
variance σ²/S_k, σ² pooled over the column's rows (stats.pooled_noise: training noise is mostly a
property of the task and backbone, so two or three seeds per row still estimate it with ν =
Σ(S_k − 1) degrees of freedom), and x_k is the noise of the evaluation examples, correlated between
rows because they share the examples (pairing over examples): its covariance comes from the
seed-averaged per-example scores for metrics that are a mean over examples, and from paired
bootstrap resamples of the examples otherwise.

Test. H_i: "row i is a best". Its statistic is t_i = max over j ≠ i of (M_j − M_i) / SE_ij, with
SE_ij² = Var(x_j − x_i) + σ̂²·(1/S_i + 1/S_j). Under the least favourable case (every row equal)
the joint law of the t's is simulated (`DRAWS` seeded draws of the example noise, the seed noise
and the χ² of the variance estimate), and the step-down adjusted p-value of row i is the largest,
over the rows at least as far behind as it, of the share of draws whose maximum over those rows
reaches their t. Rows with an adjusted p-value above α form the set; the row with the best mean
is always in it.

σ² is estimated, and with few degrees of freedom an estimate near zero would make the test far too
liberal (two seeds whose gaps agree). The draws therefore take σ² at its upper (1 − γ) χ² bound
and the p-values add γ (Berger & Boos 1994): the level holds whatever the true σ² is, and with few
degrees of freedom the reference becomes Student-like. With one seed everywhere (ν = 0) there is no
training noise to see, and the set says which trained models the examples cannot separate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sp

from harness.metrics import Metric
from harness.report.stats import GAMMA, RESAMPLES, Run, SeedNoise, covariance_from, resampler, scores

ALPHA = 0.05
DRAWS = 4000  # simulated draws of the column under the least favourable case
METHOD = "max-t step-down"
_CELLS = 2_000_000  # draws x rows x rows held in memory at once


@dataclass(frozen=True)
class BestSet:
    members: list[bool]  # per row: in the set
    p_values: list[float]  # per row: step-down adjusted p-value of "row i is a best"
    noise: SeedNoise  # the pooled seed variance used
    draws: int


def best_set(rows: list[list[Run]], metric: Metric, noise: SeedNoise, alpha: float = ALPHA, draws: int = DRAWS,
             seed: int = 0) -> BestSet:
    """The best set of a column whose rows all hold runs on the same references (one per seed,
    each with a finite score; stats.comparable checks both)."""
    means = np.array([np.mean(scores(runs, metric)) for runs in rows])
    seeds = np.array([len(runs) for runs in rows], dtype=float)
    return best_set_of(means, seeds, example_covariance(rows, metric, seed=seed), noise, alpha, draws, seed)


def best_set_of(means: np.ndarray, seeds: np.ndarray, covariance: np.ndarray, noise: SeedNoise,
                alpha: float = ALPHA, draws: int = DRAWS, seed: int = 0) -> BestSet:
    """The set from its sufficient statistics: each row's mean and seed count, the covariance of the
    rows' example noise (points²) and the pooled seed variance."""
    k = len(means)
    if k == 1:
        return BestSet([True], [1.0], noise, 0)
    spread = np.diag(covariance)
    pair = spread[:, None] + spread[None, :] - 2 * covariance  # Var(x_j − x_i)
    np.fill_diagonal(pair, 0.0)
    pair = np.maximum(pair, 0.0)
    both = 1 / seeds[:, None] + 1 / seeds[None, :]
    variance, bound, gamma = noise.variance, noise.variance, 0.0
    if noise.dof > 0 and noise.variance > 0:  # seeds that all agree: training added no noise
        bound = noise.dof * noise.variance / sp.chi2.ppf(GAMMA, noise.dof)
        gamma = GAMMA
    observed = _statistics(means[None, :], pair, both, np.array([variance]))[0]
    reference = _null_draws(covariance, seeds, bound, noise.dof, pair, both, draws, seed)
    p_values = _step_down(observed, reference, gamma)
    return BestSet([bool(p > alpha) for p in p_values], p_values, noise, draws)


def _statistics(scores: np.ndarray, pair: np.ndarray, both: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """t[b, i] = max over j ≠ i of (scores[b, j] − scores[b, i]) / SE_ij, with the seed variance of
    draw b. A pair with no variance is +inf when j is ahead, 0 when level."""
    out = np.empty(scores.shape)
    k = scores.shape[1]
    step = max(1, _CELLS // (k * k))
    off = ~np.eye(k, dtype=bool)
    for start in range(0, len(scores), step):
        block = scores[start:start + step]
        gap = block[:, None, :] - block[:, :, None]  # [b, i, j] = score_j − score_i
        se = np.sqrt(pair[None] + variances[start:start + step, None, None] * both[None])
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(se > 0, gap / np.where(se > 0, se, 1.0), np.sign(gap) * np.inf)
        t = np.where(off[None], np.nan_to_num(t, nan=0.0, posinf=np.inf, neginf=-np.inf), -np.inf)
        out[start:start + step] = t.max(axis=2)
    return out


def _null_draws(covariance: np.ndarray, seeds: np.ndarray, variance: float, dof: int, pair: np.ndarray,
                both: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """The statistics of `draws` columns whose rows are all equal: example noise with the observed
    covariance, seed noise with the bounded pooled variance, and that variance re-estimated on
    `dof` degrees of freedom in each draw."""
    rng, k = np.random.default_rng(seed), len(covariance)
    values, vectors = np.linalg.eigh((covariance + covariance.T) / 2)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    scores = rng.standard_normal((draws, k)) @ root.T
    if variance > 0:
        scores += rng.standard_normal((draws, k)) * np.sqrt(variance / seeds)
    estimated = variance * rng.chisquare(dof, draws) / dof if dof > 0 else np.full(draws, variance)
    return _statistics(scores, pair, both, estimated)


def _step_down(observed: np.ndarray, reference: np.ndarray, gamma: float) -> list[float]:
    """Adjusted p-values: row i's is the largest, over rows with t at least t_i, of the share of
    draws whose maximum over the rows with t at most that row's reaches it (plus γ)."""
    order = np.argsort(observed, kind="stable")  # ascending: the rows nearest the best first
    ranked = observed[order]
    running = np.maximum.accumulate(reference[:, order], axis=1)  # max over the rows up to each position
    last = np.searchsorted(ranked, ranked, side="right") - 1  # ties share the largest family
    raw = np.array([(np.sum(running[:, last[m]] >= ranked[m]) + 1) / (len(reference) + 1) for m in range(len(order))])
    adjusted = np.maximum.accumulate(raw[::-1])[::-1]  # a row further behind never has a larger p
    out = np.empty(len(order))
    out[order] = np.minimum(1.0, adjusted + gamma)
    return [float(p) for p in out]


def example_covariance(rows: list[list[Run]], metric: Metric, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """Covariance (points²) of the rows' seed-averaged scores over draws of the evaluation examples,
    without the part that is seed noise: a row's seeds disagree on single examples, and that noise
    is in its seed variance already. Per row with S ≥ 2 seeds it is (mean over seeds of one seed's
    variance − the seed average's variance) / (S − 1), taken off the diagonal."""
    refs = rows[0][0][2]
    n = len(refs)
    if metric.per_example is not None:
        per = [np.array([[metric.per_example(p, r) for p, r in zip(preds, refs)] for _, preds, _ in runs]) * metric.scale
               for runs in rows]  # rows of seeds x examples
        return covariance_from(per, n) if n > 1 else np.zeros((len(rows), len(rows)))
    else:
        resampled = resampler(metric, refs, np.random.default_rng(seed).integers(0, n, (resamples, n)))
        per = [np.array([resampled(p) for _, p, _ in runs]) for runs in rows]  # rows of seeds x resamples
        finite = ~np.any([np.isnan(x).any(axis=0) for x in per], axis=0)
        if finite.sum() < 2:
            return np.full((len(rows), len(rows)), math.nan)
        return covariance_from([x[:, finite] for x in per], 1)
