"""The leaderboard's statistics as claims, checked by simulation (seeded): the seed interval
covers, the paired test holds its level under the null and finds real effects, Holm's correction
over a whole board leaves strong effects significant, and a board marks what it should."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sp

from harness.config.registry import METRICS
from harness.report import simulate, stats

ACCURACY = METRICS.get("accuracy")


def cell(rng, refs, difficulty, accuracy: float, seeds: int, seed_points: float):
    """Runs of one cell: each seed's predictions are right on an example with a probability set by
    the example's difficulty (shared by every cell: hard examples are hard for all) and the cell's
    accuracy, shifted per seed so that seed scores spread by about `seed_points`."""
    intercept = _intercept(difficulty, accuracy)
    p = 1 / (1 + np.exp(-(intercept + difficulty)))
    slope = float((p * (1 - p)).mean())
    runs = []
    for s in range(seeds):
        shift = rng.normal(0, seed_points / 100 / slope) if seed_points else 0.0
        right = rng.random(len(refs)) < 1 / (1 + np.exp(-(intercept + shift + difficulty)))
        runs.append((s, [r if ok else 1 - r for r, ok in zip(refs, right)], refs))
    return runs


def _intercept(difficulty, accuracy: float) -> float:
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if (1 / (1 + np.exp(-(mid + difficulty)))).mean() < accuracy else (lo, mid)
    return (lo + hi) / 2


def task(rng, n: int):
    return [int(x) for x in rng.integers(0, 2, n)], rng.normal(0, 2.5, n)


def test_the_seed_interval_covers_the_true_mean():
    rng = np.random.default_rng(0)
    for n, least in ((2, 0.93), (3, 0.93), (5, 0.93)):
        covered = 0
        for _ in range(2000):
            s = stats.summarize(list(rng.normal(85.0, 1.5, n)))
            covered += s.low <= 85.0 <= s.high
        assert covered / 2000 >= least, (n, covered / 2000)
    three = stats.summarize([90.0, 91.0, 92.0])  # the issue's example: wider than the seeds' range
    assert (three.low, three.high) == (91 - sp.t.ppf(0.975, 2) / 3 ** 0.5, 91 + sp.t.ppf(0.975, 2) / 3 ** 0.5)


def test_under_the_null_the_paired_test_rejects_at_most_alpha():
    """Two cells drawn from one distribution (the same accuracy, seed noise of a point): the share
    of p-values under 0.05 stays at or under 5% (plus 2.5 points for simulation error, 300 draws).
    One seed cannot see seed noise: there the null is two models equally good on each example."""
    rng = np.random.default_rng(1)
    for seeds, noise in ((1, 0.0), (2, 1.0), (3, 1.0), (5, 1.0), (5, 3.0)):
        rejected = 0
        for _ in range(300):
            refs, difficulty = task(rng, 500)
            a, b = (cell(rng, refs, difficulty, 0.85, seeds, noise) for _ in range(2))
            rejected += stats.paired_test(a, b, ACCURACY).p_value < 0.05
        assert rejected / 300 <= 0.075, (seeds, noise, rejected / 300)


def test_a_corpus_metric_holds_its_level_under_the_null():
    rng = np.random.default_rng(2)
    rejected = 0
    for _ in range(120):
        refs, difficulty = task(rng, 300)
        a, b = (cell(rng, refs, difficulty, 0.8, 3, 1.0) for _ in range(2))
        rejected += stats.paired_test(a, b, METRICS.get("mcc"), resamples=400).p_value < 0.05
    assert rejected / 120 <= 0.09, rejected / 120


def test_at_two_seeds_with_three_points_of_seed_noise_the_paired_test_holds_its_level():
    """The issue's case: Welch-Satterthwaite took two seeds whose gaps agree as a seed variance known
    to be 0 (11.8% false positives). Pooled over the column and bounded (Berger-Boos): at most 6%."""
    rng = np.random.default_rng(4)
    rejected = 0
    for _ in range(600):
        column = simulate.column(rng, [0.85] * 2, 2, 3.0, examples=400)
        a, b = ([(s, list(x[s] / 100), [1] * 400) for s in range(2)] for x in column.scores)
        rejected += stats.paired_test(a, b, ACCURACY).p_value < 0.05
    assert rejected / 600 <= 0.06, rejected / 600


def test_real_effects_are_found_and_survive_a_correction_over_a_large_board():
    rng = np.random.default_rng(3)
    # 92% against 50% on 872 examples, 3 seeds: significant after Holm over 88 tests, every time
    # (each test spends γ = α / 10m on bounding the seed variance, as `harness check` does)
    for _ in range(20):
        refs, difficulty = task(rng, 872)
        test = stats.paired_test(cell(rng, refs, difficulty, 0.92, 3, 1.0), cell(rng, refs, difficulty, 0.5, 3, 1.0),
                                 ACCURACY, gamma=0.1 * 0.05 / 88)
        assert test.p_value * 88 < 0.05, test
    # 85% against 82% on 1,000 examples, 5 seeds (seeds half a point apart): significant in 80% of
    # draws, and still so in a board of 100 tests whose other 99 rows are clearly behind the best
    found = kept = 0
    for _ in range(100):
        refs, difficulty = task(rng, 1000)
        p = stats.paired_test(cell(rng, refs, difficulty, 0.85, 5, 0.5), cell(rng, refs, difficulty, 0.82, 5, 0.5),
                              ACCURACY, gamma=0.1 * 0.05 / 100).p_value
        others = {i: float(q) for i, q in enumerate(rng.uniform(0, 1e-6, 99))}
        found += p < 0.05
        kept += stats.holm(others | {"modest": p})["modest"] < 0.05
    assert found >= 80 and kept >= 80, (found, kept)


def excluded_share(rng, accuracies, seeds: int, seed_points: float, boards: int) -> float:
    """The share of simulated boards whose best set leaves out some row."""
    out = 0
    for b in range(boards):
        found = simulate.column(rng, accuracies, seeds, seed_points).best_set(draws=600, seed=b)
        out += not all(found.members)
    return out / boards


def test_a_board_of_equal_rows_leaves_a_row_out_of_the_best_set_at_most_alpha_of_the_time():
    """31 equal rows, 3 seeds, n = 872, a point of seed noise: the issue measured 32.5% of boards
    marking some row as different from the best under "test against the observed best, then Holm".
    The max-t step-down's set leaves out a row in at most 5% of boards (+ 2 simulation SEs)."""
    share = excluded_share(np.random.default_rng(5), [0.85] * 31, 3, 1.0, 400)
    assert share <= 0.05 + 2 * (0.05 * 0.95 / 400) ** 0.5, share


def test_two_seeds_with_three_points_of_seed_noise_keep_the_best_set_honest():
    share = excluded_share(np.random.default_rng(6), [0.85] * 10, 2, 3.0, 500)
    assert share <= 0.06, share


def test_a_row_clearly_ahead_is_alone_in_the_best_set_and_a_true_best_is_never_left_out():
    """One row ahead of 30 equal rows (n = 872, a point of seed noise). 6 points ahead, that row alone
    is the set in most boards: measured 82% at 3 seeds and 100% at 5 (benchmarks/best_set.py), and
    it is always kept. 4 points ahead is beyond the column's reach as a whole at 3 seeds (alone in 5%
    of boards, 51% at 5 seeds): each of the 30 rows behind must be excluded, after allowing for the
    best of its 30 rivals."""
    rng = np.random.default_rng(7)
    for seeds, gap, least in ((3, 0.06, 0.7), (5, 0.06, 0.9)):
        alone = kept = 0
        for b in range(100):
            found = simulate.column(rng, [0.85 + gap] + [0.85] * 30, seeds, 1.0).best_set(draws=600, seed=b)
            alone += found.members[0] and sum(found.members) == 1
            kept += found.members[0]
        assert alone / 100 >= least and kept == 100, (seeds, gap, alone, kept)


def test_a_large_board_puts_a_near_row_in_the_best_set_and_a_chance_row_out(tmp_path):
    """12 rows x 8 tasks x 3 seeds through a store: the row one example behind the best in every
    seed is in every column's best set (†), the chance-level row is not; the marks are those of
    best.best_set on the same runs."""
    from harness.config.suite import expand, load_suite
    from harness.report.best import best_set
    from harness.report.leaderboard import boards
    from harness.report.results import Results
    from harness.store.database import Store
    from harness.testing import REFS, SENTIMENT_CARD, fake_record, predictions, write_suite, write_yaml

    cards = [str(write_yaml(tmp_path / "tasks" / f"t{i}.yaml", dict(SENTIMENT_CARD, name=f"t{i}")))
             for i in range(8)]
    path = write_suite(tmp_path, tasks=cards, seeds=[0, 1, 2],
                       strategies={f"r{r:02d}": {"use": "lora", "r": r} for r in range(1, 13)})
    loaded = load_suite(path)
    specs = expand(loaded)
    correct = {1: 180, 2: 179, 12: 100} | {r: 176 - 6 * r for r in range(3, 12)}
    offset = {r: 100 if r == 12 else 0 for r in range(1, 13)}  # the chance row is wrong on other examples
    with Store(loaded.store_path) as store:
        for spec in specs:
            r = int(spec.strategy_key[1:])
            store.write(fake_record(spec, correct[r] - spec.seed, offset=offset[r]))
        board = boards(Results.from_suite(loaded, specs, store))[0]
    rows = {row[1]: i for i, row in enumerate(board.rows)}
    runs = [[(s, predictions(correct[int(row[1][1:])] - s, offset[int(row[1][1:])]), REFS) for s in range(3)]
            for row in board.rows]
    expected = best_set(runs, ACCURACY, stats.pooled_noise([[100 * (correct[int(row[1][1:])] - s) / 200
                                                             for s in range(3)] for row in board.rows]))
    for i in range(8):
        column = board.column(f"t{i}")
        near, chance = column.cells[rows["r02"]], column.cells[rows["r12"]]
        assert near.best_set and near.tied and not chance.best_set and chance.p_value < 0.01, (near, chance)
        assert [c.best_set for c in column.cells] == expected.members
        assert [c.p_value for c in column.cells] == pytest.approx(expected.p_values)
        assert column.noise.dof == 24
    assert any("max-t step-down over the column's rows" in note for note in board.notes)
