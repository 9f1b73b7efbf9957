"""One run spec end to end: data, backbone, strategy, the one training path, evaluation, cost.

The runner raises on failure; the executor records the failure and goes on.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import datasets

from harness.base.device import autocast, training_device
from harness.config.registry import task_type_of
from harness.config.spec import RunSpec
from harness.hub.reach import commits_used
from harness.run.backbones import resolve
from harness.run.cost import PeakMemory, PhaseTimer, parameter_counts
from harness.run.environment import environment
from harness.run.finetuned import load_start, save_finetuned, start_body
from harness.run.tracking import finish, hold_ends, tracking
from harness.run.training import (
    Progress,
    TrainerInputs,
    build_trainer,
    preprocessed,
    set_dropout,
    train,
    training_info,
    weights_dtype,
)
from harness.store.database import RunRecord
from harness.strategies import Context
from harness.tasks.data import TaskData, load_splits
from harness.tasks.types import TaskType


def run_cell(spec: RunSpec, progress: Progress | None = None, artifacts: Path | None = None) -> RunRecord:
    """Train and score one cell: set up (rows, backbone, features, the strategy applied), train,
    evaluate, record. With `train.save_model`, the model goes to <artifacts>/<run id>/model.
    A strategy that does not train (zero-shot, in-context) predicts instead of the Trainer.
    joint.run_joint is the same structure for the cells of one joint model."""
    started, timer, cfg = time.perf_counter(), PhaseTimer(), spec.train
    strategy = spec.build_strategy()
    with PeakMemory() as memory:
        with timer("load"):
            task = load_task(spec.task_card(), strategy, cfg, spec.seed)
            backbone = resolve(spec.model, spec.model_spec)
            start, start_tokenizer = start_body(strategy, artifacts)  # (None, None): the pretrained backbone
            model, tokenizer = backbone.load(
                *strategy.architecture(task.task_type), task.task_type.texts(task.train_rows),
                spec.seed, tokenizer=start_tokenizer, base=strategy.base)
            if start is not None:
                load_start(model, start)
        if not strategy.trains:
            params, tokens, result_metrics, scores = parameter_counts(model, set()), 0, {}, None
            predictions, references, info = _predict(spec, strategy, model, tokenizer, task, timer)
        else:
            with timer("preprocess"):
                preprocess_task(task, tokenizer, cfg, model, artifacts, dev=spec.sweep is not None)
            if cfg.dropout is not None:
                set_dropout(model, cfg.dropout)
            strategy.prepare(Context(spec, task.task_type, tokenizer, artifacts))
            model = strategy.apply(model, task.task_type)
            params = parameter_counts(model, strategy.trained(model))
            with tempfile.TemporaryDirectory(prefix="harness-") as workdir, tracking(spec, artifacts):
                trainer = build_trainer(spec, strategy, TrainerInputs(model, tokenizer, task.task_type, task.train_set,
                                                                          task.dev_set), workdir, progress)
                held = hold_ends(trainer)
                with timer("train"):
                    result = train(trainer, cfg)
                with timer("evaluate"):
                    trainer.model = strategy.before_evaluate(trainer.model)
                    predictions = trainer.predictions(task.eval_set)
                references = task.task_type.references(task.eval_set)
                dev_metrics = scores = None
                if spec.sweep is not None:  # a sweep's cell: the dev scores that selection reads
                    with timer("dev"):
                        dev_metrics = task.task_type.score(trainer.predictions(task.dev_set),
                                                         task.task_type.references(task.dev_set))
                if held:  # scored once: the trackers' last step and the record
                    scores = task.task_type.score(predictions, references)
                    finish(trainer, held, {"eval": scores, "dev": dev_metrics})
                saved = save_if_asked(trainer.model, tokenizer, artifacts, strategy, spec)
            tokens, result_metrics = int(trainer.state.num_input_tokens_seen or 0), result.metrics
            info = task.info(trainer, result, cfg, saved)
            info |= recipe_info(strategy, trainer.model)
            if spec.sweep is not None:
                info["dev_metrics"] = dev_metrics
    cost = cost_of(params, memory, timer, started, result_metrics, tokens, len(task.eval_rows),
                   timer.seconds["evaluate"])
    if used := commits_used(backbone, spec.task_card()):  # what an unpinned hub source resolved to
        info["hub_commits"] = used
    return record_of(spec, task.task_type, task.data, predictions, references, cost, info, scores)


def _predict(spec: RunSpec, strategy, model, tokenizer, task, timer) -> tuple[list, list, dict]:
    """A strategy that does not train (zero-shot, in-context): its predictions on eval (and a sweep
    cell's dev scores), references and info, on the training device in the cell's precision."""
    model = model.to(training_device())  # on the accelerator, as a trained cell evaluates there
    with timer("evaluate"), autocast(spec.compute):
        predictions, info = strategy.predict(model, tokenizer, task.task_type, task.eval_rows, task.train_rows,
                                             spec.seed, spec.train)
    references = task.task_type.references_of(task.eval_rows, task.data.eval_source)
    info["weights_dtype"] = weights_dtype(model)
    if spec.sweep is not None:
        with timer("dev"), autocast(spec.compute):
            found, _ = strategy.predict(model, tokenizer, task.task_type, task.dev_rows, task.train_rows, spec.seed,
                                        spec.train)
            info["dev_metrics"] = task.task_type.score(found, task.task_type.references_of(task.dev_rows,
                                                                                      task.data.dev_source))
    return predictions, references, info


@dataclass
class PreparedTask:
    """One task of a cell made ready: its task_type, splits and rows, then its model-ready features."""

    task_type: TaskType
    data: TaskData
    train_rows: datasets.Dataset
    dev_rows: datasets.Dataset
    eval_rows: datasets.Dataset
    augmented: dict | None  # what the strategy's data augmentation did
    train_set: datasets.Dataset | None = None
    dev_set: datasets.Dataset | None = None  # only when training selects on it or a sweep scores it
    eval_set: datasets.Dataset | None = None
    counts: tuple[dict, dict] = ({}, {})  # what preprocessing did to train and eval

    def info(self, trainer, result, cfg, saved) -> dict:
        """What training did, for this task's record (training.training_info, and augmentation)."""
        info = training_info(trainer, result, *self.counts, self.data, cfg, saved)
        return info | ({"augmentation": self.augmented} if self.augmented else {})


def load_task(card, strategy, cfg, seed: int) -> PreparedTask:
    """A task's rows for one cell: the first N rows if asked, the few-shot draw (of dev as well, so
    that selection sees no more labelled rows than training), the strategy's data augmentation."""
    task_type = task_type_of(card)
    data = load_splits(card)
    train_rows, dev_rows = _head(data.train, cfg.max_train_samples), data.dev
    if cfg.shots:
        train_rows = task_type.few_shot(train_rows, cfg.shots, seed)
        dev_rows = task_type.few_shot(dev_rows, cfg.shots, seed) if cfg.few_shot_dev else dev_rows
    train_rows, augmented = strategy.augment(train_rows, task_type, seed)
    return PreparedTask(task_type, data, train_rows, dev_rows, _head(data.eval, cfg.max_eval_samples), augmented)


def preprocess_task(task: PreparedTask, tokenizer, cfg, model, artifacts: Path | None, dev: bool = False) -> None:
    """The task's features for `model` (its task type bound to it), through the preprocessing cache
    beside the store's runs folder; dev's when training selects on it, or with `dev` (a sweep
    scores it)."""
    task.task_type.bind(model)
    cache = artifacts.parent / "cache" / "preprocessed" if artifacts else None
    task.train_set, train_info = preprocessed(task.task_type, task.train_rows, task.data.train_source, tokenizer, cfg,
                                              model, cache)
    task.eval_set, eval_info = preprocessed(task.task_type, task.eval_rows, task.data.eval_source, tokenizer, cfg,
                                            model, cache)
    # dev rows are checked as train and eval rows are (a label outside the card's is refused), used or not
    dev_set, _ = preprocessed(task.task_type, task.dev_rows, task.data.dev_source, tokenizer, cfg, model, cache)
    if dev or cfg.early_stopping or cfg.eval_every_steps:  # what training evaluates on: never eval
        task.dev_set = dev_set
    task.counts = (train_info, eval_info)


def save_if_asked(model, tokenizer, artifacts: Path | None, strategy, spec: RunSpec) -> Path | None:
    """With `train.save_model`: the fine-tuned model in <artifacts>/<run id>/model (see finetuned)."""
    if not (spec.train.save_model and artifacts):
        return None
    return save_finetuned(model, tokenizer, artifacts / spec.id / "model", strategy, spec)


def cost_of(params: dict, memory: PeakMemory, timer: PhaseTimer, started: float, result_metrics: dict,
            tokens: int, eval_rows: int, eval_seconds: float) -> dict:
    train_seconds = timer.seconds.get("train", 0.0)
    return {
        **params,
        "peak_memory_mb": memory.megabytes,
        "memory_kind": memory.kind,
        "seconds": {k: round(timer.seconds.get(k, 0.0), 3) for k in ("load", "preprocess", "train", "evaluate")}
        | ({"dev": round(timer.seconds["dev"], 3)} if "dev" in timer.seconds else {}),
        "wall_seconds": round(time.perf_counter() - started, 3),  # the whole cell, phases and the rest
        "train_samples_per_second": round(result_metrics.get("train_samples_per_second", 0.0), 2),
        "train_tokens_per_second": round(tokens / train_seconds, 1) if train_seconds else 0.0,
        "eval_samples_per_second": round(eval_rows / eval_seconds, 2) if eval_seconds else 0.0,
    }


def record_of(spec: RunSpec, task_type, data, predictions: list, references: list, cost: dict, info: dict,
              metrics: dict | None = None) -> RunRecord:
    """The finished record of one cell: its predictions scored with the card's metrics (`metrics`
    when they were scored already)."""
    metrics = metrics if metrics is not None else task_type.score(predictions, references)
    if breakdown := task_type.breakdown(predictions, references):
        info["breakdown"] = breakdown
    info |= {"trained_on": data.train_source, "reported_on": data.eval_source}  # selected_on: training_info
    if "dev_metrics" in info:  # a sweep's cell: what its dev scores were computed on
        info["dev_scored_on"] = data.dev_source
    return RunRecord(
        id=spec.id, spec=spec.model_dump(mode="json"), status="done", metrics=metrics,
        signatures=task_type.signatures(), cost=cost, info=info, environment=environment(),
        predictions=predictions, references=references,
    )


def _head(split: datasets.Dataset, n: int | None) -> datasets.Dataset:
    return split.select(range(min(n, len(split)))) if n else split


def recipe_info(strategy, model) -> dict:
    """What a composed recipe adds to a run's info: the recipe in words, and how the base was held
    (its quantized linear layers counted)."""
    info = {}
    if strategy.parts or strategy.start or strategy.base != "fp32":
        info["recipe"] = strategy.describe()
    if strategy.base != "fp32":
        info["base"] = {"held": strategy.base, "quantized_layers": quantized_layers(model)}
    return info


def quantized_layers(model) -> int:
    """How many of `model`'s linear layers bitsandbytes holds quantized (peft's wrappers not counted)."""
    try:
        import bitsandbytes as bnb
    except ImportError:
        return 0
    return sum(isinstance(m, (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt)) for m in model.modules())
