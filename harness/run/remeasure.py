"""A kept run's serving cost measured again, on this machine (`harness measure`).

A run's record holds what was measured where it trained; latency is a property of the result on one
machine, so measuring it elsewhere (the CPU server it will run on, another GPU) is a new measurement
of the same result, not a new result: the run id and the record stay, and the measurement is kept
beside them in the store, one per (run, device) (Store.add_measurement). It needs the fine-tuned
model, so only runs kept with `train: {save_model: true}` can be measured again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.base.device import autocast, training_device
from harness.config.registry import task_type_of
from harness.config.spec import RunSpec
from harness.run.finetuned import load_finetuned
from harness.run.serving import serving_of
from harness.run.training import preprocessed
from harness.tasks.data import load_splits


@dataclass
class EvalTask:
    """What serving_of reads of a task: its type (bound to the model) and the features of its eval rows."""

    task_type: object
    eval_set: object


def kept_model(runs: Path, run_id: str) -> Path | None:
    """The folder `save_model` kept run `run_id`'s model in, under the store's runs folder; None if not kept."""
    folder = runs / run_id / "model"
    return folder if (folder / "run_spec.json").is_file() else None


def remeasure(spec: RunSpec, folder: Path) -> dict:
    """The serving cost of the run kept in `folder` on this machine's training device, on the same
    seeded eval rows as when it trained, in the precision it evaluated in where this device has it."""
    model, tokenizer = load_finetuned(spec, folder)
    model = model.to(training_device())
    card = spec.task_card()
    task_type, data = task_type_of(card), load_splits(card)
    rows = data.eval.select(range(min(spec.train.max_eval_samples, len(data.eval)))) if spec.train.max_eval_samples \
        else data.eval
    task_type.bind(model)
    features, _ = preprocessed(task_type, rows, data.eval_source, tokenizer, spec.train, model,
                               folder.parent.parent.parent / "cache" / "preprocessed")
    with autocast(spec.compute):
        return serving_of(model, EvalTask(task_type, features), tokenizer, spec)
