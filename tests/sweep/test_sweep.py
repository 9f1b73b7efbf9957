"""Sweeps: trials are cells scored on dev, the choice is the best mean dev score (a pure function of
the store), the chosen setting runs on every suite seed and reports eval, and the expected best
score for a budget equals a computation by hand."""

from __future__ import annotations

import json
from itertools import combinations

import pytest

from harness.base.errors import ConfigError
from harness.cli.commands import main
from harness.config.schemas import Range
from harness.config.suite import load_suite
from harness.report.leaderboard import boards
from harness.report.results import Results
from harness.report.tuning import expected_at_best, expected_max
from harness.store.database import Store
from harness.sweep.grid import grid, is_trial
from harness.sweep.space import points
from harness.testing import fake_record

LEARNING_RATES = [1.0e-4, 1.0e-3, 3.0e-3]


def sweep_suite(small_suite, **sweep):
    return small_suite(strategies={"full": {}, "lora": {"r": 8}}, seeds=[0, 1, 2], sweep={
        "budget": 3, "seeds": [0, 5],
        "spaces": [{"when": {"strategy": "full"}, "space": {"learning_rate": LEARNING_RATES}},
                   {"when": {"strategy": "lora"}, "space": {"r": [2, 4], "learning_rate": [2.0e-3]}}],
        **sweep})


# dev accuracy (of 200 examples) of each full-fine-tuning learning rate on trial seeds 0 and 5: 1e-3 is best
# on seed 0 alone, 3e-3 has the best mean; 1e-4 has the best eval score, which the choice must not read
DEV = {(1.0e-4, 0): 60.0, (1.0e-4, 5): 62.0, (1.0e-3, 0): 90.0, (1.0e-3, 5): 70.0, (3.0e-3, 0): 85.0,
       (3.0e-3, 5): 84.0}
EVAL_CORRECT = {1.0e-4: 199, 1.0e-3: 150, 3.0e-3: 160}


def record_trials(store, specs, skip=()):
    for spec in specs:
        if spec.strategy == "full" and (spec.train.learning_rate, spec.seed) not in skip:
            lr = spec.train.learning_rate
            store.write(fake_record(spec, EVAL_CORRECT[lr], dev_metrics={"accuracy": DEV[lr, spec.seed], "f1_macro": 0}))


def test_trials_are_cells_and_the_best_mean_dev_setting_runs_on_every_seed(small_suite):
    loaded = load_suite(sweep_suite(small_suite))
    with Store(loaded.store_path) as store:
        before = grid(loaded, store)
        assert all(is_trial(s) for s in before.cells) and len(before.cells) == 3 * 2 + 2 * 2  # settings x trial seeds
        assert before.waiting == {("tiny", "small_sentiment", "full"): 6, ("tiny", "small_sentiment", "lora"): 4}
        assert len({s.id for s in before.cells}) == 10 and not before.reported

        record_trials(store, before.trials, skip={(3.0e-3, 5)})  # one trial still to run: no finals yet
        partial = grid(loaded, store)
        assert partial.waiting[("tiny", "small_sentiment", "full")] == 1
        assert partial.choices[("tiny", "small_sentiment", "full")].setting == "learning_rate=0.001"  # of those done
        assert not [s for s in partial.cells if not is_trial(s)]
        board = boards(Results.from_suite(loaded, partial.reported, store, partial.trials))[0]
        assert any(n.startswith("⚠ 1 of 1 tuned cells chose from a sweep not yet done") for n in board.notes)

        record_trials(store, before.trials)
        after = grid(loaded, store)
        choice = after.choices[("tiny", "small_sentiment", "full")]
        assert choice.setting == "learning_rate=0.003" and choice.dev == pytest.approx(84.5) and choice.tried == 3
        finals = [s for s in after.cells if not is_trial(s)]
        assert [(s.strategy, s.seed, s.train.learning_rate) for s in finals] == [("full", 1, 3e-3), ("full", 2, 3e-3)]
        reported = [(s.seed, s.train.learning_rate) for s in after.reported]
        assert reported == [(0, 3e-3), (1, 3e-3), (2, 3e-3)]  # seed 0's trial is seed 0's final: not run twice
        assert ("tiny", "small_sentiment", "full") not in after.waiting
        # the store alone decides: a whole-store read chooses the same setting and reports the same runs
        for spec in finals:
            store.write(fake_record(spec, 170, dev_metrics={"accuracy": 0.0}))
        suite_runs = Results.from_suite(loaded, after.reported, store, after.trials).runs
        store_runs = Results.from_store(store).runs
        assert sorted(store_runs.run_id) == sorted(suite_runs.run_id) == sorted(s.id for s in after.reported)
        notes = boards(Results.from_suite(loaded, after.reported, store, after.trials), "tuning")[0].notes
        assert any("tiny · full · small_sentiment (learning_rate=0.003 is the largest tried)" in n for n in notes)


def test_a_tie_on_dev_goes_to_the_first_setting_and_eval_is_never_read(small_suite):
    loaded = load_suite(sweep_suite(small_suite))
    with Store(loaded.store_path) as store:
        for spec in grid(loaded, store).trials:
            if spec.strategy == "lora":  # r=4 has the better eval, and ties r=2 on dev
                store.write(fake_record(spec, 190 if spec.strategy_args["r"] == 4 else 100,
                                        dev_metrics={"accuracy": 70.0}))
        assert grid(loaded, store).choices[("tiny", "small_sentiment", "lora")].setting == "learning_rate=0.002, r=2"


def test_sweeps_that_cannot_run_are_refused_in_one_line(small_suite):
    def refused(**changes):
        with pytest.raises(ConfigError) as info:
            load_suite(sweep_suite(small_suite, **changes))
        assert "\n" not in str(info.value)
        return str(info.value)

    assert "the grid has 3 points, more than sweep.budget (2)" in refused(budget=2)
    assert "a range (low / high) can only be drawn from: use search: random" in refused(
        spaces=[{"space": {"learning_rate": {"low": 1e-5, "high": 1e-3, "log": True}}}])
    assert "sweep.spaces.space.learning_rate" in refused(spaces=[{"space": {"learning_rate": [1e-3, -1.0]}}])
    assert "'rank' is not a train setting, and as an argument of strategy 'lora'" in refused(
        spaces=[{"when": {"strategy": "lora"}, "space": {"rank": [2, 4]}}])
    assert "'lr' is not a train setting (did you mean 'learning_rate'" in refused(spaces=[{"space": {"lr": [1e-3]}}])
    assert "sweep.spaces.0.when.strategy: unknown strategy 'lroa'" in refused(
        spaces=[{"when": {"strategy": "lroa"}, "space": {"r": [2]}}])


def test_random_search_is_seeded_prefix_stable_and_recorded_in_the_ids(small_suite):
    space = {"learning_rate": Range(low=1.0e-5, high=1.0e-2, log=True), "r": [2, 4, 8, 16]}
    three, five = points(space, "random", 3, seed=0), points(space, "random", 5, seed=0)
    assert five[:3] == three and len({json.dumps(p) for p in five}) == 5
    assert points(space, "random", 3, seed=1) != three
    assert all(1e-5 <= p["learning_rate"] <= 1e-2 and p["r"] in (2, 4, 8, 16) for p in five)
    grid_points = points({"r": [2, 4, 8, 16]}, "random", 2, seed=0)
    assert len(grid_points) == 2 and len({p["r"] for p in grid_points}) == 2  # without replacement

    # a space no larger than the budget is tried whole, whatever the seed: the same two points each time
    random = {"search": "random", "budget": 2, "spaces": [{"space": {"learning_rate": [1e-4, 1e-3]}}]}
    ids = {}
    for seed in (0, 1):  # the same points drawn with another seed are other cells: the seed is in their ids
        loaded = load_suite(sweep_suite(small_suite, **random, seed=seed))
        ids[seed] = {s.id for s in grid(loaded, Store(loaded.store_path)).trials if s.strategy == "lora"}
    assert len(ids[0]) == 2 * 2 and not ids[0] & ids[1]  # 2 draws x 2 trial seeds


def test_expected_best_score_equals_a_computation_by_hand():
    scores = [70.0, 80.5, 60.0, 90.0, 75.0]
    for k in range(1, 6):  # the mean, over every k-subset of the trials, of its best
        by_hand = sum(max(c) for c in combinations(scores, k)) / len(list(combinations(scores, k)))
        assert expected_max(scores, k) == pytest.approx(by_hand)
    curve = [expected_max(scores, k) for k in range(1, 6)]
    assert curve == sorted(curve) and curve[0] == pytest.approx(sum(scores) / 5) and curve[-1] == max(scores)
    # the eval score of the dev-best, ties on dev sharing their weight: subsets of 2 of (1, 2, 2, 3)
    dev, evals = [1, 2, 2, 3], [10, 20, 40, 30]
    # 3 pairs hold dev 3 (eval 30); the pair (2, 2) gives the tie's mean 30; 2 pairs (1, 2) give 20 or 40
    assert expected_at_best(dev, evals, 2) == pytest.approx((3 * 30 + 30 + 20 + 40) / 6)
    assert expected_at_best(dev, evals, 4) == 30


def test_a_sweep_runs_resumes_and_reports_its_choice(small_suite, tmp_path, capsys):
    """Trained end to end on the tiny backbone: trials scored on dev, finals on eval, a rerun runs
    nothing, a new value in the space runs only its trials, and every report shows the tuning."""
    path = small_suite(strategies={"full": {}}, seeds=[0, 1],
                       train={"epochs": 1, "learning_rate": 2.0e-3, "batch_size": 32, "max_length": 48},
                       sweep={"budget": 3, "spaces": [{"space": {"learning_rate": [1.0e-5, 2.0e-3]}}]})
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "3 ran" in out and "the sweep chose; 1 more cells" in out
    loaded = load_suite(path)
    with Store(loaded.store_path) as store:
        frame = store.frame()
        found = grid(loaded, store)
    assert len(frame) == 3 and all("accuracy" in info["dev_metrics"] for info in frame["info"])
    assert all(info["reported_on"] == "validation" and info["dev_scored_on"].startswith("train")
               and "dev" in cost["seconds"] for info, cost in zip(frame["info"], frame["cost"]))
    choice = found.choices[("tiny", "small_sentiment", "full")]
    trials = {r["spec"]["train"]["learning_rate"]: r["info"]["dev_metrics"]["accuracy"] for _, r in frame.iterrows()
              if r["seed"] == 0}
    assert choice.dev == max(trials.values()) and choice.tried == 2

    assert main(["run", str(path)]) == 0
    assert "0 ran, 3 already done" in capsys.readouterr().out

    path = small_suite(strategies={"full": {}}, seeds=[0, 1],
                       train={"epochs": 1, "learning_rate": 2.0e-3, "batch_size": 32, "max_length": 48},
                       sweep={"budget": 3, "spaces": [{"space": {"learning_rate": [1.0e-5, 2.0e-3, 1.0e-6]}}]})
    assert main(["run", str(path)]) == 0
    assert "1 ran, 3 already done" in capsys.readouterr().out  # the new trial only (1e-6 does not win)

    out_dir = tmp_path / "report"
    assert main(["report", str(path), "--out", str(out_dir)]) == 0
    tuning = json.loads((out_dir / "leaderboard-tuning.json").read_text())[0]
    assert tuning["rows"][0][3] == choice.setting and tuning["columns"][0]["cells"][0]["mean"] == 3
    assert "tuned on dev: full" in (out_dir / "leaderboard.md").read_text()
    assert (out_dir / "plots" / "budget_small_sentiment.png").exists()
    assert "Tuning" in (out_dir / "report.html").read_text()
    assert main(["export", str(path), "--out", str(out_dir / "results.json")]) == 0
    exported = json.loads((out_dir / "results.json").read_text())
    assert exported["tuning"][0]["k"] == [1, 2, 3] and exported["tuning"][0]["dev"][-1] == pytest.approx(choice.dev)
    again = Results.from_json(out_dir / "results.json")
    assert again.choices()[("tiny", "small_sentiment", "full")].point == choice.point
    assert boards(again, "tuning")[0].rows[0][3] == choice.setting
