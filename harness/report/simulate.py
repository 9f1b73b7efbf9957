"""Simulated leaderboard columns with a known truth, to check the statistics' claims (the tests in
tests/report/test_stats_simulation.py and benchmarks/best_set.py use the same model).

An example's difficulty is logit-normal and shared by every row (hard examples are hard for all);
row r with seed s is right on example e with probability sigmoid(a_r + shift_rs + d_e), where a_r
sets the row's accuracy and shift_rs, the training noise, moves a seed's accuracy by about
`seed_points` (standard deviation, in points).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.report.best import BestSet, best_set_of
from harness.report.stats import SeedNoise, covariance_from, pooled_noise

DIFFICULTY = 2.5  # standard deviation of an example's logit difficulty


@dataclass(frozen=True)
class Column:
    scores: list[np.ndarray]  # per row: seeds x examples, in points (0 or 100)

    @property
    def seed_scores(self) -> list[list[float]]:
        return [list(x.mean(axis=1)) for x in self.scores]

    @property
    def noise(self) -> SeedNoise:
        return pooled_noise(self.seed_scores)

    def best_set(self, draws: int = 1000, seed: int = 0, alpha: float = 0.05) -> BestSet:
        n = self.scores[0].shape[1]
        means = np.array([x.mean() for x in self.scores])
        seeds = np.array([len(x) for x in self.scores], dtype=float)
        return best_set_of(means, seeds, covariance_from(self.scores, n), self.noise, alpha, draws, seed)


def column(rng: np.random.Generator, accuracies, seeds: int, seed_points: float, examples: int = 872) -> Column:
    """One column: a row per accuracy (0-1), each trained `seeds` times, evaluated on the same examples."""
    accuracies = np.asarray(accuracies, dtype=float)
    difficulty = rng.normal(0, DIFFICULTY, examples)
    intercept = _intercepts(difficulty, accuracies)
    p = _sigmoid(intercept[:, None] + difficulty[None, :])
    slope = (p * (1 - p)).mean(axis=1)  # d accuracy / d intercept, per row
    shift = rng.normal(0, 1, (len(accuracies), seeds)) * (seed_points / 100 / slope)[:, None]
    logits = intercept[:, None, None] + shift[:, :, None] + difficulty[None, None, :]
    right = rng.random(logits.shape) < _sigmoid(logits)
    return Column([100.0 * r for r in right])


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _intercepts(difficulty: np.ndarray, accuracies: np.ndarray) -> np.ndarray:
    lo, hi = np.full(len(accuracies), -20.0), np.full(len(accuracies), 20.0)
    for _ in range(50):
        mid = (lo + hi) / 2
        low = _sigmoid(mid[:, None] + difficulty[None, :]).mean(axis=1) < accuracies
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    return (lo + hi) / 2
