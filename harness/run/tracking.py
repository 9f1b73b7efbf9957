"""Experiment trackers (`train.report_to`): Trainer's own integrations, with each cell one tracked
run, named after the cell's label and tagged with its model, task, strategy, seed and run id, and
the cell's scores logged to it before the integration ends the run.

Trainer's integrations end their run when training ends, and a cell is scored after that; so the
integrations' end of run is held until `finish` has logged the scores (MLflow would otherwise open
a second, unnamed run for them).
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path


def trackers(cfg) -> list[str]:
    return [name for name in cfg.report_to if name != "none"]


def tags(spec) -> dict[str, str]:
    return {"model": spec.model, "task": spec.task, "strategy": spec.strategy, "seed": str(spec.seed),
            "run_id": spec.id}


@contextmanager
def tracking(spec, artifacts: Path | None):
    """The integrations' settings for one cell, set in the environment they read them from, and put
    back afterwards: the tags (MLflow, W&B), the TensorBoard folder (<artifacts>/<run id>/tensorboard,
    or <TENSORBOARD_LOGGING_DIR>/<run id> when the user set one) and MLflow's experiment ("harness"
    unless MLFLOW_EXPERIMENT_NAME is set)."""
    if not trackers(spec.train):
        yield
        return
    cell_tags = tags(spec)
    base = os.environ.get("TENSORBOARD_LOGGING_DIR")
    board = Path(base) / spec.id if base else (artifacts or Path("results") / "runs") / spec.id / "tensorboard"
    settings = {"MLFLOW_TAGS": json.dumps(cell_tags), "WANDB_TAGS": ",".join(f"{k}:{v}" for k, v in cell_tags.items()),
                "TENSORBOARD_LOGGING_DIR": str(board),
                "MLFLOW_EXPERIMENT_NAME": os.environ.get("MLFLOW_EXPERIMENT_NAME", "harness")}
    before = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def hold_ends(trainer) -> list:
    """Hold the end of run of the trainer's tracker integrations; `finish` ends them."""
    from transformers.integrations import get_reporting_integration_callbacks

    kinds = tuple(get_reporting_integration_callbacks(trainer.args.report_to))
    held = []
    for callback in trainer.callback_handler.callbacks:
        if kinds and isinstance(callback, kinds):
            held.append((callback, callback.on_train_end))
            callback.on_train_end = lambda *args, **kwargs: None
    return held


def finish(trainer, held: list, scores: dict[str, dict]) -> None:
    """Log the cell's scores ({"eval": metrics, "dev": metrics}) to each held integration as its
    last step, then let it end its run."""
    if not held:
        return
    logs = {f"{split}_{name}": value for split, metrics in scores.items() for name, value in (metrics or {}).items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}
    args, state, control = trainer.args, trainer.state, trainer.control
    for callback, end in held:
        callback.on_log(args, state, control, logs=dict(logs), model=trainer.model)
        end(args, state, control)
