"""Statistics against scipy and hand-computed values on fixed inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sp

from harness.config.registry import METRICS
from harness.report import stats


def test_seed_summary_is_students_t_interval():
    values = [81.0, 84.5, 83.0, 86.0]
    s = stats.summarize(values)
    assert s.n == 4 and s.mean == pytest.approx(83.625) and s.std == pytest.approx(np.std(values, ddof=1))
    low, high = sp.t.interval(0.95, 3, loc=np.mean(values), scale=sp.sem(values))
    assert (s.low, s.high) == pytest.approx((low, high))


def test_seed_summary_edge_cases():
    one = stats.summarize([70.0])
    assert one.mean == 70.0 and math.isnan(one.std) and math.isnan(one.low)
    same = stats.summarize([70.0, 70.0])
    assert (same.std, same.low, same.high) == (0.0, 70.0, 70.0)
    assert stats.summarize([]).n == 0


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 with m = 3: 3*0.01, max(.03, 2*0.03), max(.06, 1*0.04)
    assert stats.holm({"a": 0.01, "b": 0.04, "c": 0.03}) == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06})
    assert stats.holm({"a": 0.6, "b": 0.9}) == {"a": 1.0, "b": 1.0}


def run(seed, correct_mask):
    refs = [1] * len(correct_mask)
    return (seed, [1 if c else 0 for c in correct_mask], refs)


def test_one_seed_accuracy_uses_mcnemar_exact():
    # A right and B wrong on 12 examples, the reverse on 3, the rest agree
    a = [True] * 12 + [False] * 3 + [True] * 50
    b = [False] * 12 + [True] * 3 + [True] * 50
    test = stats.paired_test([run(0, a)], [run(0, b)], METRICS.get("accuracy"))
    assert test.test == "McNemar (exact)"
    assert test.p_value == pytest.approx(sp.binomtest(12, 15, 0.5).pvalue)
    assert test.difference == pytest.approx(100 * 9 / 65)


def test_several_seeds_count_seed_and_example_variance():
    """By hand: the seed part is the seed variance pooled over both cells (on S_a + S_b − 2 degrees
    of freedom) x (1/S_a + 1/S_b); the example part the variance over examples of the seed-averaged
    per-example difference / n, less each cell's seed noise on single examples."""
    a = [run(s, [True] * (40 + s) + [False] * (10 - s)) for s in range(3)]
    b = [run(s, [False] * (15 + s % 2) + [True] * 25 + [False] * (10 - s % 2)) for s in range(3)]
    test = stats.paired_test(a, b, METRICS.get("accuracy"))
    sa = np.array([[100.0 * x for x in preds] for _, preds, _ in a])
    sb = np.array([[100.0 * x for x in preds] for _, preds, _ in b])
    pooled = (sa.mean(axis=1).var(ddof=1) + sb.mean(axis=1).var(ddof=1)) / 2
    seed_part = pooled * (1 / 3 + 1 / 3)

    def own(x):  # a cell's seed noise on single examples, as it reaches the seed average
        return (x.var(axis=1, ddof=1).mean() - x.mean(axis=0).var(ddof=1)) / 2

    d = sa.mean(axis=0) - sb.mean(axis=0)
    example_part = (d.var(ddof=1) - own(sa) - own(sb)) / 50
    assert test.test == "t (pooled seeds + examples)" and test.seeds == 6
    assert (test.difference, test.seed_variance, test.example_variance) == pytest.approx(
        (d.mean(), seed_part, example_part))
    # the p-value: |D| / SE where D ~ N(0, E + σ²c) and σ̂² ~ σ² χ²_4 / 4, σ² at its upper 99.5% bound
    noise = stats.SeedNoise(pooled, 4, 2)
    bound = 4 * pooled / sp.chi2.ppf(stats.GAMMA, 4) * (2 / 3)
    rng = np.random.default_rng(0)
    draws = rng.standard_normal(400_000) * np.sqrt(example_part + bound)
    se = np.sqrt(example_part + bound * rng.chisquare(4, 400_000) / 4)
    simulated = np.mean(np.abs(draws) / se >= abs(d.mean()) / np.sqrt(example_part + seed_part)) + stats.GAMMA
    assert test.p_value == pytest.approx(simulated, abs=0.003)
    assert stats.paired_test(a, b, METRICS.get("accuracy"), noise=noise).p_value == pytest.approx(test.p_value)
    # two seeds whose scores agree exactly: a pooled variance of 0 on 2 degrees of freedom is not
    # taken as known to be 0 (Welch-Satterthwaite would give p ≈ 1e-8 here)
    two_a = [run(s, [True] * 45 + [False] * 5) for s in range(2)]
    two_b = [run(s, [True] * 40 + [False] * 10) for s in range(2)]
    assert stats.paired_test(two_a, two_b, METRICS.get("accuracy")).p_value > 0.01
    # identical seeds: no seed part, and the test is a paired t over the examples
    same = [run(s, [True] * 40 + [False] * 10) for s in range(3)]
    one_b = [run(s, [False] * 15 + [True] * 25 + [False] * 10) for s in range(3)]
    flat = stats.paired_test(same, one_b, METRICS.get("accuracy"))
    paired = sp.ttest_rel([100.0 * x for x in same[0][1]], [100.0 * y for y in one_b[0][1]])
    assert flat.test == "paired t (examples)" and flat.seed_variance == 0
    assert flat.p_value == pytest.approx(paired.pvalue)


def test_one_seed_continuous_scores_use_a_paired_t_test():
    refs = [["the cat"]] * 4
    good = ["the cat", "cat sat", "big cat", "cat"]
    bad = ["dog", "cat dog sat", "big cat", "dog"]
    metric = METRICS.get("squad_f1")
    test = stats.paired_test([(0, good, refs)], [(0, bad, refs)], metric)
    scores = [[100 * metric.per_example(p, r) for p, r in zip(preds, refs)] for preds in (good, bad)]
    assert test.test == "paired t (examples)"
    assert test.p_value == pytest.approx(sp.ttest_rel(*scores).pvalue)


def test_other_metrics_use_a_paired_bootstrap_and_see_no_difference_between_equals():
    rng = np.random.default_rng(1)
    refs = list(rng.integers(0, 2, 300))
    preds = [r if rng.random() < 0.8 else 1 - r for r in refs]
    same = stats.paired_test([(0, preds, refs)], [(0, list(preds), refs)], METRICS.get("mcc"))
    assert same.test == "bootstrap SE (normal)" and same.difference == 0 and same.p_value == 1.0
    worse = [r if rng.random() < 0.55 else 1 - r for r in refs]
    test = stats.paired_test([(0, preds, refs)], [(0, worse, refs)], METRICS.get("mcc"))
    assert test.difference > 0 and test.p_value < 0.01


def test_runs_on_different_examples_are_not_compared():
    assert stats.paired_test([(0, [1, 0], [1, 0])], [(0, [1, 0], [0, 1])], METRICS.get("accuracy")) is None
    # different seed numbers on the same examples are compared: the test pools seeds, it does not pair them
    assert stats.paired_test([(0, [1, 0], [1, 0])], [(1, [1, 1], [1, 0])], METRICS.get("accuracy")) is not None


def test_ranks_and_win_rates_by_hand():
    table = np.array([[90.0, 80.0], [85.0, 85.0], [85.0, math.nan]])
    assert stats.ranks(table).tolist()[0] == [1.0, 2.0]
    assert stats.ranks(table)[1].tolist() == [2.5, 1.0]  # tied with row 3 on the first task
    # row 0 beats both on task 1, loses to row 1 on task 2: 2 of 3 games
    # row 1: loses to row 0 and ties row 2 on task 1, beats row 0 on task 2
    assert stats.win_rates(table).tolist() == pytest.approx([2 / 3, (0 + 0.5 + 1) / 3, (0 + 0.5) / 2])


@pytest.mark.parametrize("name", ["accuracy", "f1_macro", "mcc", "pearson", "seqeval_f1"])
def test_scores_of_many_runs_at_once_are_each_runs_own(name):
    """stats.scores takes the metric's batch form for runs on the same references; each value is the
    library's own for that run, NaN included (a constant prediction has no correlation), and runs on
    other references, of other lengths or of a metric without a batch form are scored one by one."""
    metric = METRICS.get(name)
    rng = np.random.default_rng(3)
    if name == "seqeval_f1":
        refs = [["B-PER", "O"], ["O", "B-LOC", "I-LOC"]] * 10
        runs = [(s, [r if rng.random() < 0.8 else ["O"] * len(r) for r in refs], refs) for s in range(3)]
    elif name == "pearson":
        refs = list(rng.normal(size=50))
        runs = [(s, list(np.asarray(refs) + rng.normal(size=50)), refs) for s in range(3)] + [(3, [0.5] * 50, refs)]
    else:
        refs = list(rng.integers(0, 3, 60))
        runs = [(s, [r if rng.random() < 0.7 else int(rng.integers(0, 3)) for r in refs], refs) for s in range(4)]
    expected = [metric(p, r) for _, p, r in runs]
    got = stats.scores(runs, metric)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-9)
    if name == "pearson":
        assert math.isnan(got[-1])
        kept, dropped = stats.comparable([runs], metric)
        assert dropped == 1 and len(kept[0]) == 3
    if metric.batch is not None:  # other references, and a run shorter than its references: one by one
        other = [(0, runs[0][1], runs[0][2]), (1, runs[1][1][:-1], runs[1][2][:-1])]
        assert stats.scores(other, metric) == pytest.approx([metric(p, r) for _, p, r in other], abs=1e-9)
