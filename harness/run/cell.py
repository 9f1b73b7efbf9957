"""One job end to end, the one run path: one cell, or the cells of one joint model.

A job's tasks (one, or those a recipe's tasks part trains together) each get their rows and a
model: the backbone as the recipe's method takes it, from the start body where the recipe has one.
A method that trains is applied to each; a job of several tasks ties their bodies and trains them
as one model on a mixture of their batches (harness.run.joint); a method that does not train
(prompting) predicts in place of the Trainer. Each task is then predicted and scored as its own
cell, and each cell gets its record, with the job's cost.

The runner raises on failure; the executor records the failure and goes on.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets

from harness.base.device import autocast, training_device
from harness.config.registry import TASK_TYPES, task_type_of
from harness.config.spec import RunSpec
from harness.hub.reach import commits_used
from harness.run.backbones import resolve
from harness.run.cost import PeakMemory, PhaseTimer, parameter_counts
from harness.run.energy import Metered
from harness.run.environment import environment
from harness.run.eval_sets import EvalSet, eval_sets, kept
from harness.run.finetuned import load_start, save_finetuned, start_body
from harness.run.joint import joint_training
from harness.run.retention import Retention
from harness.run.serving import first_batches, measure_prompted, measure_trained, measured, training_flops
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
from harness.sweep.pruning import trial_pruning
from harness.tasks.data import TaskData, load_splits
from harness.tasks.types import TaskType


def run_cells(specs: list[RunSpec], progress: Progress | None = None, artifacts: Path | None = None) -> list[RunRecord]:
    """Train (or prompt) and score one job: set up, train, evaluate each task, record each cell.
    With `train.save_model`, each task's model goes to <artifacts>/<run id>/model."""
    started, first = time.perf_counter(), specs[0]
    strategy = first.build_strategy()
    with PeakMemory() as memory, Metered() as energy:
        timer = PhaseTimer(energy)
        with timer("load"):
            job = _load(specs, strategy, artifacts)
        done = _trained(job, timer, progress, artifacts) if strategy.trains else _prompted(job, timer)
    eval_rows = sum(len(job.tasks[spec.task].eval_rows) for spec in specs)
    cost = cost_of(done.params, memory, timer, started, done.train_metrics, done.tokens, eval_rows,
                   timer.seconds["evaluate"]) | {"energy": energy.record}
    records = []
    for spec in specs:
        task, info = job.tasks[spec.task], done.info[spec.task]
        if used := commits_used(job.backbone, spec.task_card()):  # what an unpinned hub source resolved to
            info["hub_commits"] = used
        measured = done.measured.get(spec.task, {})
        measured["flops"] = {"train": done.train_flops, "evaluate": measured.pop("eval_flops", None)}
        records.append(record_of(spec, task.task_type, task.data, done.predictions[spec.task],
                                 done.references[spec.task], dict(cost) | measured, info, done.scores.get(spec.task)))
        records[-1].probabilities = done.probabilities.get(spec.task)
        records[-1].eval_sets = kept(task.sets)
    return records


def run_cell(spec: RunSpec, progress: Progress | None = None, artifacts: Path | None = None) -> RunRecord:
    """One cell that trains alone: a job of one task."""
    return run_cells([spec], progress, artifacts)[0]


@dataclass
class Job:
    """A job set up: its cells, the recipe, the backbone, and each task's rows and model, a pooled
    head's task first (its body is the fullest: a pooler the others lack, which their bodies are
    tied into)."""

    specs: list[RunSpec]
    strategy: Any
    backbone: Any
    tasks: dict[str, PreparedTask]
    models: dict[str, Any]
    tokenizer: Any
    retention: Retention | None = None  # forgetting, when the suite measures it
    retained: dict | None = None  # the objective before training


@dataclass
class Done:
    """What a job's training and evaluation leave for its records, per task where they differ."""

    params: dict
    tokens: int = 0
    train_metrics: dict = field(default_factory=dict)
    predictions: dict[str, list] = field(default_factory=dict)
    probabilities: dict[str, list | None] = field(default_factory=dict)  # eval class probabilities, per task
    references: dict[str, list] = field(default_factory=dict)
    info: dict[str, dict] = field(default_factory=dict)
    scores: dict[str, dict] = field(default_factory=dict)  # eval scores already computed (for the trackers)
    measured: dict[str, dict] = field(default_factory=dict)  # serving, shipped bytes, FLOPs (harness.run.serving)
    train_flops: int | str = 0  # or why counting failed


def _load(specs: list[RunSpec], strategy, artifacts: Path | None) -> Job:
    first = specs[0]
    cards = {n: partner.task_card() for n, partner in first.partners.items()} or {first.task: first.task_card()}
    names = sorted(cards, key=lambda n: not TASK_TYPES.get(cards[n].type).pooled)
    tasks = {n: load_task(cards[n], strategy, first.train, first.seed, first.robustness) for n in names}
    backbone = resolve(first.model, first.model_spec)
    start, tokenizer = start_body(strategy, artifacts)  # (None, None): the pretrained backbone
    texts = [t for task in tasks.values() for t in task.task_type.texts(task.train_rows)]
    models = {}
    for n, task in tasks.items():
        models[n], tokenizer = backbone.load(*strategy.architecture(task.task_type), texts, first.seed,
                                             tokenizer=tokenizer, base=strategy.base)
        if start is not None:
            load_start(models[n], start)
    job = Job(specs, strategy, backbone, tasks, models, tokenizer)
    if first.retention is not None:
        job.retention = Retention(first.retention, backbone, tokenizer)
        if job.retention.head is not None:  # the body before anything trains it (the start body, if any)
            job.retained = job.retention.measure(models[names[0]])
    return job


def _retained(job: Job, model) -> dict:
    """A record's forgetting (harness.run.retention): the objective before training and with `model`'s
    body now ({} when the suite does not measure it)."""
    if job.retention is None:
        return {}
    after = job.retention.measure(model) if job.retention.head is not None else None
    return {"retention": job.retention.record(job.retained, after)}


def _trained(job: Job, timer: PhaseTimer, progress: Progress | None, artifacts: Path | None) -> Done:
    """Apply the recipe, train (one model, or the tasks' models as one), then predict each task."""
    first, strategy, cfg = job.specs[0], job.strategy, job.specs[0].train
    with timer("preprocess"):
        for n, task in job.tasks.items():
            preprocess_task(task, job.tokenizer, cfg, job.models[n], artifacts, dev=first.sweep is not None)
    if cfg.dropout is not None:
        for model in job.models.values():
            set_dropout(model, cfg.dropout)
    context, joint = Context(first, None, job.tokenizer, artifacts), None
    if len(job.tasks) > 1:
        joint = joint_training(strategy, job.models, job.tasks, context, cfg.batch_size, first.seed)
        model, recipe, task = joint.model, joint.recipe, job.tasks[first.task]
    else:
        (name, task), = job.tasks.items()
        strategy.prepare(Context(first, task.task_type, job.tokenizer, artifacts))
        model = job.models[name] = strategy.apply(job.models[name], task.task_type)
        recipe = strategy
    done = Done(parameter_counts(model, recipe.trained(model)))
    with tempfile.TemporaryDirectory(prefix="harness-") as workdir, \
            (nullcontext() if joint else tracking(first, artifacts)):
        trainer = build_trainer(first, recipe, TrainerInputs(model, job.tokenizer, task.task_type, task.train_set,
                                                             None if joint else task.dev_set),
                                workdir, progress, **(joint.trainer_arguments() if joint else {}))
        held = hold_ends(trainer)
        pruning = None if joint else trial_pruning(first, task.task_type.card.primary)
        if pruning:
            trainer.add_callback(pruning)
            trainer.neutral_evaluation = True
        with timer("train"):  # the task mixture batches itself: a joint model has no automatic batch size
            result = train(trainer, cfg.model_copy(update={"auto_batch_size": False}) if joint else cfg)
        shared = joint.info(strategy.together.args.sampling) if joint else None  # before a batch is drawn to count
        with timer("measure"):  # counted after training: the cell's randomness is spent
            counted = measured(lambda: {"flops": training_flops(model, first_batches(trainer.get_train_dataloader()),
                                                                trainer.state.global_step,
                                                                cfg.gradient_accumulation_steps)})
            done.train_flops = counted.get("flops", counted.get("measure_error"))
            retained = _retained(job, job.models[first.task])
        for spec in job.specs:
            _evaluate(job, spec, trainer, joint, timer, workdir, done)
            task = job.tasks[spec.task]
            saved = save_if_asked(job.models[spec.task], job.tokenizer, artifacts, strategy, spec)
            done.info[spec.task] |= (task.info(trainer, result, cfg, saved) | recipe_info(strategy, job.models[spec.task])
                                     | retained | ({"pruning": pruning.record()} if pruning else {}))
            if joint:
                done.info[spec.task]["joint"] = shared
        if held:  # scored once: the trackers' last step and the record (a joint model is not tracked)
            task_type = job.tasks[first.task].task_type
            done.scores[first.task] = task_type.score(done.predictions[first.task], done.references[first.task])
            finish(trainer, held, {"eval": done.scores[first.task], "dev": done.info[first.task].get("dev_metrics")})
    done.tokens, done.train_metrics = int(trainer.state.num_input_tokens_seen or 0), result.metrics
    return done


def _evaluate(job: Job, spec: RunSpec, trainer, joint, timer: PhaseTimer, workdir: str, done: Done) -> None:
    """One task's predictions on eval (and a sweep cell's dev scores), with its own model: the
    trainer's, or in a joint job a scorer around the task's model."""
    task, strategy = job.tasks[spec.task], job.strategy
    with timer("evaluate"):
        if joint is None:
            trainer.model = job.models[spec.task] = strategy.before_evaluate(trainer.model)
            scorer = trainer
        else:
            job.models[spec.task] = strategy.before_evaluate(job.models[spec.task]).eval()
            scorer = build_trainer(spec, strategy, TrainerInputs(job.models[spec.task], job.tokenizer, task.task_type),
                                   workdir, track=False)
        done.predictions[spec.task] = scorer.predictions(task.eval_set)
        done.probabilities[spec.task] = scorer.probabilities
        for one in task.sets.values():
            one.found = {"predictions": scorer.predictions(one.features), "probabilities": scorer.probabilities,
                         "references": task.task_type.references(one.features)}
    with timer("measure"), autocast(spec.compute):  # in the precision the cell evaluates in
        done.measured[spec.task] = measured(lambda: measure_trained(job.models[spec.task], strategy, task,
                                                                    job.tokenizer, spec))
    done.references[spec.task] = task.task_type.references(task.eval_set)
    done.info[spec.task] = {}
    if spec.sweep is not None:  # a sweep's cell: the dev scores that selection reads
        with timer("dev"):
            done.info[spec.task]["dev_metrics"] = task.task_type.score(scorer.predictions(task.dev_set),
                                                                      task.task_type.references(task.dev_set))


def _prompted(job: Job, timer: PhaseTimer) -> Done:
    """A method that does not train (zero-shot, in-context): its predictions on eval (and a sweep
    cell's dev scores) on the training device in the cell's precision. Such a job has one task."""
    spec, strategy = job.specs[0], job.strategy
    task = job.tasks[spec.task]
    model = job.models[spec.task].to(training_device())  # on the accelerator, as a trained cell evaluates there
    with timer("evaluate"), autocast(spec.compute):
        predictions, info = strategy.predict(model, job.tokenizer, task.task_type, task.eval_rows, task.train_rows,
                                             spec.seed, spec.train)
        probabilities = strategy.probabilities
        for name, one in task.sets.items():
            found, _ = strategy.predict(model, job.tokenizer, task.task_type, one.rows, task.train_rows, spec.seed,
                                        spec.train)
            one.found = {"predictions": found, "references": task.task_type.references_of(one.rows, name),
                         "probabilities": strategy.probabilities}
    info["weights_dtype"] = weights_dtype(model)
    if spec.sweep is not None:
        with timer("dev"), autocast(spec.compute):
            found, _ = strategy.predict(model, job.tokenizer, task.task_type, task.dev_rows, task.train_rows, spec.seed,
                                        spec.train)
            info["dev_metrics"] = task.task_type.score(found, task.task_type.references_of(task.dev_rows,
                                                                                      task.data.dev_source))
    with timer("measure"), autocast(spec.compute):
        cost = {spec.task: measured(lambda: measure_prompted(model, strategy, task, job.tokenizer, spec))}
    return Done(parameter_counts(model, set()), predictions={spec.task: predictions}, measured=cost,
                probabilities={spec.task: probabilities},
                references={spec.task: task.task_type.references_of(task.eval_rows, task.data.eval_source)},
                info={spec.task: info | recipe_info(strategy, model) | _retained(job, model)})


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
    sets: dict[str, EvalSet] = field(default_factory=dict)  # more evaluation sets (harness.run.eval_sets)

    def info(self, trainer, result, cfg, saved) -> dict:
        """What training did, for this task's record (training.training_info, and augmentation)."""
        info = training_info(trainer, result, *self.counts, self.data, cfg, saved)
        return info | ({"augmentation": self.augmented} if self.augmented else {})


def load_task(card, strategy, cfg, seed: int, robustness=None) -> PreparedTask:
    """A task's rows for one cell: the first N rows if asked, the few-shot draw (of dev as well, so
    that selection sees no more labelled rows than training), the strategy's data augmentation."""
    task_type = task_type_of(card)
    data = load_splits(card)
    train_rows, dev_rows = _head(data.train, cfg.max_train_samples), data.dev
    if cfg.shots:
        train_rows = task_type.few_shot(train_rows, cfg.shots, seed)
        dev_rows = task_type.few_shot(dev_rows, cfg.shots, seed) if cfg.few_shot_dev else dev_rows
    train_rows, augmented = strategy.augment(train_rows, task_type, seed)
    eval_rows = _head(data.eval, cfg.max_eval_samples)
    return PreparedTask(task_type, data, train_rows, dev_rows, eval_rows, augmented,
                        sets=eval_sets(task_type, data, cfg, robustness))


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
    for name, one in task.sets.items():
        one.features, _ = preprocessed(task.task_type, one.rows, name, tokenizer, cfg, model, cache)
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
        | {k: round(timer.seconds[k], 3) for k in ("dev", "measure") if k in timer.seconds},
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
