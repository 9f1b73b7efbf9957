"""Trials stopped early on dev: Optuna's successive-halving pruner (asynchronous successive
halving, Li et al. 2020), run one trial after another.

A pruned sweep runs each (model, task, row) group's trials on a trial seed one after another, in
the space's order (harness.sweep.grid holds the next one back until the last is over). A trial
evaluates dev when its training passes a rung (`min_epochs` x `reduction_factor`^k epochs) and goes
on only while Optuna's pruner, given the rungs of the group's earlier trials, promotes it. So a
trial's fate is a function of the trials before it, which its run id names (`Trial.follows`), and
of its own curve: rerunning a sweep prunes the same trials. Every trial's dev curve and whether it
was stopped are kept in its record (`info.pruning`); a stopped trial's setting is no candidate, as
in Optuna (the best trial is a complete one). The choice stays sweep.selection's, from the store.

Optuna counts a trial's progress in integer steps: here thousandths of an epoch, so that rungs mean
the same training in every trial, whatever its batch size.
"""

from __future__ import annotations

import math
from typing import Any

from transformers import TrainerCallback

STEPS_PER_EPOCH = 1000  # Optuna's integer steps: a trial reports its progress in thousandths of an epoch


def rungs(prune, epochs: float) -> list[float]:
    """The epochs at which a trial of `epochs` epochs is evaluated on dev: min_epochs x factor^k,
    below `epochs` (its end is scored anyway)."""
    out, at = [], prune.min_epochs
    while at < epochs - 1e-9:
        out.append(round(at, 6))
        at *= prune.reduction_factor
    return out


def study_of(prune, earlier: list[dict[str, Any]]):
    """An in-memory Optuna study holding the group's earlier trials on this seed, as their records
    keep them (`pruning` info: rung values, dev curve, whether stopped; `value`: the final dev)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = optuna.pruners.SuccessiveHalvingPruner(
        min_resource=max(1, round(prune.min_epochs * STEPS_PER_EPOCH)), reduction_factor=prune.reduction_factor,
        min_early_stopping_rate=0)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    State = optuna.trial.TrialState
    for trial in earlier:
        value = trial.get("value")
        state = State.PRUNED if trial["pruned"] else State.COMPLETE if _finite(value) else State.FAIL
        study.add_trial(optuna.trial.create_trial(
            state=state, value=value if state == State.COMPLETE else None,
            intermediate_values={int(step): v for step, v in trial["steps"].items()},
            system_attrs={f"completed_rung_{rung}": v for rung, v in trial["rungs"].items()}))
    return study


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


class Pruning(TrainerCallback):
    """Evaluates dev at each rung, reports the primary metric to Optuna, and stops training when
    the pruner says so. `record()` is what the run keeps."""

    def __init__(self, prune, earlier: list[dict[str, Any]], metric: str, epochs: float):
        self.study = study_of(prune, earlier)
        self.trial = self.study.ask()
        self.metric = metric
        self.rungs = rungs(prune, epochs)
        self.curve: list[list[float]] = []  # [epoch, dev score] at each rung evaluated
        self.steps: dict[str, float] = {}
        self.pruned_at: float | None = None
        self.next = 0  # the next rung to evaluate at

    def on_step_end(self, args, state, control, **kwargs):
        passed = 0
        while self.next < len(self.rungs) and (state.epoch or 0.0) >= self.rungs[self.next] - 1e-9:
            self.next, passed = self.next + 1, passed + 1
        if passed:  # one evaluation however many rungs this step passed (Optuna then checks each)
            control.should_evaluate = True
        return control

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        key = f"eval_{self.metric}"
        if self.pruned_at is not None:
            return control
        if key not in (metrics or {}):
            raise ValueError(f"sweep.prune: the dev evaluation gave no {self.metric!r} (it gave {sorted(metrics or {})})")
        value, epoch = float(metrics[key]), round(float(state.epoch), 4)
        step = round(epoch * STEPS_PER_EPOCH)
        self.curve.append([epoch, value])
        self.steps[str(step)] = value
        self.trial.report(value, step)
        if self.trial.should_prune():
            self.pruned_at = epoch
            control.should_training_stop = True
        return control

    def record(self) -> dict[str, Any]:
        """The run's `info.pruning`: its dev curve at the rungs, the pruner's rung values (what later
        trials compete with), and where it was stopped (None: it ran to the end)."""
        attrs = self.study.trials[-1].system_attrs
        found = {k.removeprefix("completed_rung_"): v for k, v in attrs.items() if k.startswith("completed_rung_")}
        return {"pruned": self.pruned_at is not None, "stopped_at_epoch": self.pruned_at, "curve": self.curve,
                "steps": self.steps, "rungs": found, "rung_epochs": self.rungs}


def earlier_of(record_info: dict[str, Any], dev: float | None) -> dict[str, Any]:
    """What a later trial's study needs of one done trial: its `info.pruning` and its final dev score."""
    pruning = record_info.get("pruning") or {"pruned": False, "steps": {}, "rungs": {}}
    return {"pruned": bool(pruning.get("pruned")), "steps": pruning.get("steps", {}),
            "rungs": pruning.get("rungs", {}), "value": None if record_info.get("diverged") else dev}


def trial_pruning(spec, metric: str) -> Pruning | None:
    """The callback that prunes `spec` on dev by `metric` (its task's primary), or None when it is
    not a trial of a pruned sweep (a final always runs to the end)."""
    trial = spec.sweep
    if trial is None or trial.prune is None or spec.seed not in trial.seeds:
        return None
    return Pruning(trial.prune, trial.earlier, metric, spec.train.epochs)
