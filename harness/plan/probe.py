"""How long a cell will take, from a short probe: the cell itself, cut to a few optimizer steps and
two evaluation batches, run through the same code path on this machine, then scaled up.

The probe times each optimizer step (the first, which warms caches up, is left out), and the
evaluation and preprocessing per row; the cell's whole time is the steps it will take times the
step time, plus evaluation and preprocessing scaled to its row counts, plus loading.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.base.errors import first_line
from harness.config.registry import task_type_of
from harness.config.spec import RunSpec
from harness.tasks.data import load_splits


@dataclass(frozen=True)
class TimeEstimate:
    seconds: float  # the whole cell
    step_seconds: float
    steps: int
    load_seconds: float
    preprocess_seconds: float
    eval_seconds: float
    probe_seconds: float  # what the probe itself took


def probe(spec: RunSpec, artifacts: Path | None, steps: int = 6) -> TimeEstimate:
    """The estimated wall time of `spec`'s cell, from running `steps` optimizer steps of it."""
    from harness.run.cell import run_cell

    cfg = spec.train
    card = spec.task_card()
    task_type = task_type_of(card)
    data = load_splits(card)
    train_rows = min(len(data.train), cfg.max_train_samples or len(data.train))
    if cfg.shots:
        train_rows = len(task_type.few_shot(data.train.select(range(train_rows)), cfg.shots, spec.seed))
    eval_rows = min(len(data.eval), cfg.max_eval_samples or len(data.eval))
    # what training evaluates on while it selects (early stopping, curves): dev, drawn as run.cell.load_task does
    dev_rows = len(task_type.few_shot(data.dev, cfg.shots, spec.seed)) if cfg.shots and cfg.few_shot_dev \
        else len(data.dev)
    per_step = cfg.batch_size * cfg.gradient_accumulation_steps
    probe_train = min(train_rows, steps * per_step)
    probe_eval = min(eval_rows, 2 * cfg.eval_batch_size)
    short = cfg.model_copy(update={
        "max_steps": steps, "max_train_samples": probe_train, "max_eval_samples": probe_eval,
        "early_stopping": None, "eval_every_steps": None, "save_model": False, "shots": None,
    })
    stamps: list[float] = []
    started = time.perf_counter()
    record = run_cell(spec.model_copy(update={"train": short, "sweep": None}), lambda done, total: stamps.append(time.perf_counter()),
                      artifacts)
    took = time.perf_counter() - started
    seconds = record.cost["seconds"]
    if not spec.build_strategy().trains:  # prompting: evaluation is the whole cell
        evaluate = seconds["evaluate"] * (eval_rows + (dev_rows if spec.sweep else 0)) / max(probe_eval, 1)
        return TimeEstimate(seconds["load"] + evaluate, 0.0, 0, seconds["load"], 0.0, evaluate, took)
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    step = statistics.median(gaps) if gaps else seconds["train"] / max(len(stamps), 1)
    # preprocessing may turn rows into more (QA windows) or fewer model rows: the probe's ratio
    made = record.info.get("train", {}).get("rows", probe_train) / max(probe_train, 1)
    batches = math.ceil(train_rows * made / cfg.batch_size)  # as Trainer counts its update steps
    total_steps = cfg.max_steps or math.ceil(cfg.epochs * max(math.ceil(batches / cfg.gradient_accumulation_steps), 1))
    on_dev = 0  # evaluations on dev during training; the final one is on eval
    if cfg.early_stopping:  # at most one evaluation per epoch
        on_dev = math.ceil(cfg.epochs)
    elif cfg.eval_every_steps:
        on_dev = total_steps // cfg.eval_every_steps
    on_dev += spec.sweep is not None  # a sweep's cell scores dev once more, after training
    per_row = seconds["evaluate"] / max(probe_eval, 1)
    evaluate = per_row * (eval_rows + on_dev * dev_rows)
    rows = train_rows + eval_rows + (dev_rows if on_dev else 0)  # dev is preprocessed only when it is read
    preprocess = seconds["preprocess"] * rows / max(probe_train + probe_eval, 1)
    total = seconds["load"] + preprocess + step * total_steps + evaluate
    return TimeEstimate(total, step, total_steps, seconds["load"], preprocess, evaluate, took)


def probe_cells(specs: list[RunSpec], artifacts: Path | None,
                started: Callable[[int, int, RunSpec], None] | None = None) -> tuple[dict, dict[str, str]]:
    """({run id: TimeEstimate}, {run id: why its probe failed}): one probe per cell shape (seeds
    share theirs); the cells of joint models are not probed. `started(i, n, spec)` hears of each probe."""
    keys = {s.id: (s.model, s.task, s.strategy_key, s.train.model_dump_json()) for s in specs if not s.partners}
    firsts: dict[tuple, RunSpec] = {}
    for spec in specs:
        if spec.id in keys:
            firsts.setdefault(keys[spec.id], spec)
    shapes: dict[tuple, TimeEstimate | str] = {}
    for i, (key, spec) in enumerate(firsts.items(), 1):
        if started:
            started(i, len(firsts), spec)
        try:
            shapes[key] = probe(spec, artifacts)
        except Exception as exc:  # noqa: BLE001 - the reason is shown; the plan goes on
            shapes[key] = f"{spec.label}: {first_line(exc)}"
    times = {run_id: shapes[key] for run_id, key in keys.items() if isinstance(shapes.get(key), TimeEstimate)}
    errors = {run_id: shapes[key] for run_id, key in keys.items() if isinstance(shapes.get(key), str)}
    return times, errors
