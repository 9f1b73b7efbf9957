"""The robustness view's test of a drop (harness.report.stats.drop_test), by simulation: boards of
400 examples with per-example difficulty, 1 to 3 seeds whose models differ far more than a
perturbation's effect (seed noise that dominates), a perturbation with no effect (the null: a
rejection rate at most α, within Monte Carlo error) and with one (power)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.config.registry import METRICS
from harness.report.stats import drop_test

N, ALPHA = 400, 0.05


def _board(rng, seeds: int, effect: float, kept: float):
    """(clean runs, perturbed runs) of one row: each seed's model right on example i with probability
    sigmoid(1 + difficulty_i + seed shift), the perturbed copy `kept` of the time giving the clean
    answer and otherwise drawing again, with `effect` logits less."""
    refs = list(rng.integers(0, 2, N))
    difficulty = rng.normal(0, 1.5, N)
    clean, changed = [], []
    for seed in range(seeds):
        shift = rng.normal(0, 1.0)  # training noise: ±1 logit between seeds
        right = rng.random(N) < 1 / (1 + np.exp(-(1 + difficulty + shift)))
        again = rng.random(N) < 1 / (1 + np.exp(-(1 + difficulty + shift - effect)))
        if effect == 0:
            right_p = np.where(rng.random(N) < kept, right, again)
        else:  # with an effect the perturbed answer is drawn with the shifted probability
            right_p = again
        clean.append((seed, [r if ok else 1 - r for r, ok in zip(refs, right)], refs))
        changed.append((seed, [r if ok else 1 - r for r, ok in zip(refs, right_p)], refs))
    return clean, changed


@pytest.mark.parametrize("seeds", [1, 2, 3])
@pytest.mark.parametrize("metric", ["accuracy", "f1_macro"])
def test_a_perturbation_without_effect_is_rejected_at_most_alpha_of_the_time(seeds, metric):
    rng = np.random.default_rng(seeds)
    boards = 300 if metric == "accuracy" else 100
    resamples = 300
    rejected = 0
    for b in range(boards):
        clean, changed = _board(rng, seeds, 0.0, kept=0.5 if b % 2 else 0.0)
        tested = drop_test(clean, changed, METRICS.get(metric), resamples=resamples, seed=b)
        rejected += tested.p_value < ALPHA
    error = np.sqrt(ALPHA * (1 - ALPHA) / boards)
    assert rejected / boards <= ALPHA + 3 * error


@pytest.mark.parametrize("seeds", [1, 2, 3])
def test_a_perturbation_that_costs_a_logit_is_found(seeds):
    rng = np.random.default_rng(10 + seeds)
    found = sum(drop_test(*_board(rng, seeds, 1.0, 0.0), METRICS.get("accuracy")).p_value < ALPHA for _ in range(100))
    assert found >= 80
    clean, changed = _board(rng, seeds, 0.5, 0.0)
    tested = drop_test(clean, changed, METRICS.get("accuracy"))
    accuracy = METRICS.get("accuracy")
    assert tested.difference == pytest.approx(np.mean([accuracy(c[1], c[2]) - accuracy(p[1], p[2])
                                                       for c, p in zip(clean, changed)]))


def test_one_seed_of_right_and_wrong_is_mcnemars_exact_test():
    from scipy.stats import binomtest

    refs = [0, 1] * 50
    clean = [(0, refs[:], refs)]
    flipped = [1 - r if i < 12 else r for i, r in enumerate(refs)]  # 12 right on eval, wrong perturbed
    changed = [(0, flipped, refs)]
    tested = drop_test(clean, changed, METRICS.get("accuracy"))
    assert tested.test == "McNemar (exact)" and tested.difference == pytest.approx(12.0)
    assert tested.p_value == pytest.approx(binomtest(12, 12, 0.5).pvalue)
    assert drop_test(clean, [(1, flipped, refs)], METRICS.get("accuracy")) is None  # no seed has both
