"""Pruned sweeps (harness.sweep.pruning): a group's trials run one after another, each stopped on
dev by Optuna's successive-halving pruner rebuilt from the records of the trials before it; the
budget is trial-epochs; stopped trials are kept with their dev curve and are no candidates."""

from __future__ import annotations

import random
from types import SimpleNamespace

import optuna
import pytest

from harness.base.errors import ConfigError
from harness.cli.commands import main
from harness.config.schemas import Prune
from harness.config.suite import load_suite
from harness.report.leaderboard import boards
from harness.report.results import Results
from harness.store.database import Store
from harness.sweep.grid import grid, is_trial
from harness.sweep.pruning import STEPS_PER_EPOCH, Pruning, earlier_of, rungs
from harness.testing import fake_record

RATES = [1.0e-4, 1.0e-3, 3.0e-3, 1.0e-2]
GROUP = ("tiny", "small_sentiment", "full")


def pruned_suite(small_suite, prune=None, sweep_seeds=(0,), **changes):
    return small_suite(**{"seeds": [0, 1], "train": {"epochs": 1, "learning_rate": 2.0e-3, "batch_size": 32,
                                                      "max_length": 48},
                          "sweep": {"budget": 4, "seeds": list(sweep_seeds), "prune": prune or {"min_epochs": 0.25},
                                    "spaces": [{"space": {"learning_rate": RATES}}]}, **changes})


def to_run(found, store) -> list[str]:
    return [s.id for s in found.cells if s.id not in store.done([s.id])]


def run_trial(prune: Prune, earlier: list[dict], curve: list[float], epochs: float) -> Pruning:
    """Drive the callback as Trainer does: a step at each rung's epoch, an evaluation, the stop."""
    pruning = Pruning(prune, earlier, "accuracy", epochs)
    control = SimpleNamespace(should_evaluate=False, should_training_stop=False)
    for at, value in zip(pruning.rungs, curve):
        state = SimpleNamespace(epoch=at, global_step=round(at * 100))
        pruning.on_step_end(None, state, control)
        assert control.should_evaluate
        control.should_evaluate = False
        pruning.on_evaluate(None, state, control, metrics={"eval_accuracy": value})
        if control.should_training_stop:
            break
    return pruning


def test_rebuilding_the_study_from_records_gives_optunas_own_decisions():
    """Sweeps of random dev curves: each trial judged by a study rebuilt from the records of the
    trials before it stops exactly where Optuna's pruner stops it in one study run trial after trial."""
    rng = random.Random(0)
    for sweep in range(60):
        prune = Prune(min_epochs=rng.choice([0.1, 0.25]), reduction_factor=rng.choice([2, 3]))
        epochs = rng.choice([1.0, 3.0])
        marks = rungs(prune, epochs)
        curves = [[round(rng.uniform(40, 95), 1) for _ in marks] for _ in range(rng.randint(2, 9))]
        finals = [round(rng.uniform(40, 95), 1) for _ in curves]

        own = optuna.create_study(direction="maximize", pruner=optuna.pruners.SuccessiveHalvingPruner(
            min_resource=round(prune.min_epochs * STEPS_PER_EPOCH), reduction_factor=prune.reduction_factor))
        expected = []
        for curve, final in zip(curves, finals):
            trial, stopped = own.ask(), None
            for at, value in zip(marks, curve):
                trial.report(value, round(at * STEPS_PER_EPOCH))
                if trial.should_prune():
                    stopped = at
                    break
            own.tell(trial, state=optuna.trial.TrialState.PRUNED) if stopped else own.tell(trial, final)
            expected.append(stopped)

        records, found = [], []
        for curve, final in zip(curves, finals):
            pruning = run_trial(prune, records, curve, epochs)
            found.append(pruning.pruned_at)
            record = pruning.record()
            assert record["curve"] == [[at, v] for at, v in zip(marks, curve)][:len(record["curve"])]
            records.append(earlier_of({"pruning": record}, final))
        assert found == expected, f"sweep {sweep}"
        assert found[0] is None  # the first trial has nothing to lose to


def test_a_pruned_sweeps_trials_run_one_after_another_and_stop_within_the_compute(small_suite):
    loaded = load_suite(pruned_suite(small_suite, prune={"min_epochs": 0.25, "compute": 3.0}))
    with Store(loaded.store_path) as store:
        first = grid(loaded, store)
        assert [s.train.learning_rate for s in first.cells] == [1.0e-4] and first.waiting == {GROUP: 4}
        assert first.cells[0].sweep.earlier == [] and first.cells[0].sweep.follows is None
        trials = sorted(first.trials, key=lambda s: s.sweep.order)
        assert [t.sweep.follows for t in trials[1:]] == [t.id for t in trials[:-1]]  # each names the one before

        stopped = {"pruned": True, "stopped_at_epoch": 0.5, "curve": [[0.25, 50.0], [0.75, 51.0]],
                   "steps": {"250": 50.0, "750": 51.0}, "rungs": {"0": 50.0, "1": 51.0}}
        store.write(fake_record(trials[0], 150, dev_metrics={"accuracy": 80.0}, epochs=1.0,
                                pruning={**stopped, "pruned": False, "stopped_at_epoch": None}))
        second = grid(loaded, store)
        assert to_run(second, store) == [trials[1].id] and second.waiting == {GROUP: 3}
        assert second.cells[1].sweep.earlier == [{"pruned": False, "steps": stopped["steps"], "rungs": stopped["rungs"],
                                                  "value": 80.0}]
        assert second.cells[1].id == trials[1].id  # what the grid adds is not hashed

        store.write(fake_record(trials[1], 100, dev_metrics={"accuracy": 50.0}, epochs=0.75, pruning=stopped))
        third = grid(loaded, store)
        assert to_run(third, store) == [trials[2].id] and len(third.cells[2].sweep.earlier) == 2
        choice = third.choices[GROUP]
        assert choice.tried == 1 and choice.pruned == 1 and choice.epochs == 1.75 and not choice.spent

        # 1.75 + 1 epoch fits in 3; then 2.75 + 1 would not: the last setting never runs, the finals do
        store.write(fake_record(trials[2], 180, dev_metrics={"accuracy": 90.0}, epochs=1.0, pruning={}))
        over = grid(loaded, store)
        choice = over.choices[GROUP]
        assert choice.setting == "learning_rate=0.003" and choice.spent and choice.epochs == 2.75
        assert not over.waiting and trials[3].id not in {s.id for s in over.cells}
        # the chosen setting's trial is seed 0's final; seed 1's final runs to the end, pruned sweep or not
        final, = [s for s in over.cells if s.id in to_run(over, store)]
        assert (final.seed, final.train.learning_rate, is_trial(final), final.sweep.prune) == (1, 3.0e-3, False, None)
        board = boards(Results.from_suite(loaded, over.reported, store, over.trials), "tuning")[0]
        assert [c.cells[0].mean for c in board.columns if c.key in ("trials", "pruned", "epochs")] == [2, 1, 2.75]
        assert not [n for n in board.notes if "not yet done" in n or "chosen before" in n]
        assert not [n for n in board.notes if "diverged" in n]  # a stopped trial is no failed one


def test_pruning_is_hashed_only_into_the_trials(small_suite):
    loaded = load_suite(pruned_suite(small_suite))
    plain = load_suite(small_suite(seeds=[0, 1], train={"epochs": 1, "learning_rate": 2.0e-3, "batch_size": 32,
                                                        "max_length": 48},
                                   sweep={"budget": 4, "spaces": [{"space": {"learning_rate": RATES}}]}))
    with Store(loaded.store_path) as store:
        pruned_ids = {s.id for s in grid(loaded, store).trials}
        plain_ids = {s.id for s in grid(plain, store).trials}
    assert len(pruned_ids) == 4 and not pruned_ids & plain_ids
    other = load_suite(pruned_suite(small_suite, prune={"min_epochs": 0.25, "reduction_factor": 2}))
    assert not {s.id for s in grid(other, Store(other.store_path)).trials} & pruned_ids


def test_prune_settings_that_cannot_work_are_refused_in_one_line(small_suite):
    def refused(**changes):
        with pytest.raises(ConfigError) as info:
            load_suite(pruned_suite(small_suite, **changes))
        assert "\n" not in str(info.value)
        return str(info.value)

    assert "the method does not train" in refused(strategies={"zero_shot": {}})
    assert "early_stopping" in refused(
        train={"epochs": 2, "learning_rate": 1e-3, "early_stopping": {"patience": 1}})
    assert "train.max_steps" in refused(prune={"compute": 3}, train={"epochs": 1, "max_steps": 10})
    assert "sweep.prune.reduction_factor" in refused(prune={"reduction_factor": 1})
    assert "sweep.prune.min_epochs" in refused(prune={"min_epochs": 0})
    assert "sweep.prune.min_epochs" in refused(prune={"min_epochs": 1e-9})  # below Optuna's step of 1/1000 epoch
    assert "sweep.prune.compute" in refused(prune={"compute": float("inf")})


def test_a_pruned_sweep_trains_stops_a_hopeless_trial_and_resumes(small_suite, capsys):
    """End to end on the tiny backbone: a learning rate of 1e-7 stays at chance where 3e-3 learns
    (the tiny model learns this task late: both are at chance until about 1.5 epochs, measured), so
    it is stopped at its rung and its dev curve kept; a rerun runs nothing."""
    path = small_suite(seeds=[0], train={"epochs": 2, "learning_rate": 2.0e-3, "batch_size": 32, "max_length": 48},
                       sweep={"budget": 2, "prune": {"min_epochs": 1.9, "reduction_factor": 2},
                              "spaces": [{"space": {"learning_rate": [3.0e-3, 1.0e-7]}}]})
    assert main(["run", str(path)]) == 0
    assert "a pruned sweep's next trials follow the ones before them" in capsys.readouterr().out
    with Store(load_suite(path).store_path) as store:
        frame = store.frame()
    frame = frame.set_index(frame.spec.map(lambda s: s["train"]["learning_rate"]))
    good, bad = frame.loc[3.0e-3], frame.loc[1.0e-7]
    assert good["info"]["pruning"]["pruned"] is False and good["info"]["epochs"] == 2.0
    (at, value), = bad["info"]["pruning"]["curve"]
    assert bad["info"]["pruning"]["pruned"] is True and abs(bad["info"]["epochs"] - at) < 1e-3 and at < 2
    assert at >= 1.9 and value < good["info"]["pruning"]["curve"][0][1]
    assert bad["info"]["pruning"]["rungs"] == {"0": value}
    assert any(log.get("eval_accuracy") == value for log in bad["info"]["log_history"])  # the Trainer's own evaluation
    assert main(["run", str(path)]) == 0
    assert "0 ran, 2 already done" in capsys.readouterr().out


def test_a_trial_that_runs_to_the_end_trains_as_it_would_without_pruning(small_suite):
    """Its rung evaluations draw nothing from the RNG training reads (a DataLoader's iterator draws
    its seed from it, which moved every later dropout mask): the first trial of a pruned sweep,
    evaluated at 0.25, 0.5 and 1 epochs, ends with the same loss and predictions as the same
    setting in a sweep without pruning."""
    train = {"epochs": 2, "learning_rate": 3.0e-3, "batch_size": 32, "max_length": 48, "dropout": 0.1}
    space = [{"space": {"learning_rate": [3.0e-3]}}]
    found = []
    for prune in ({"min_epochs": 0.25, "reduction_factor": 2}, None):
        path = small_suite(seeds=[0], train=train, sweep={"budget": 1, "spaces": space,
                                                           **({"prune": prune} if prune else {})})
        assert main(["run", str(path)]) == 0
        with Store(load_suite(path).store_path) as store:
            record = store.frame()
            record = record[~record.id.isin([r[0] for r in found])].iloc[0]
            found.append((record.id, record["info"], store.predictions(record.id)))
    (_, pruned, predicted), (_, plain, expected) = found
    assert [at for at, _ in pruned["pruning"]["curve"]] == pytest.approx([0.29, 0.53, 1.0], abs=0.03)
    assert "pruning" not in plain and pruned["train_loss"] == plain["train_loss"] and predicted == expected
