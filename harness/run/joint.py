"""One joint model end to end: the tasks of a joint strategy (multitask) trained together.

Every task gets its own head model (its task type's AutoModelFor* class) and all of them share one
backbone module, so each head sees the same body. Training is the one Trainer path; only the
training batches differ: a `TaskMixture` draws, each step, which task the next batch comes from.
Each task is then predicted with its own head and scored as its own cell. The joint training's
cost (parameters of the whole model, time, memory) is recorded with every task's record.
"""

from __future__ import annotations

import inspect
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from harness.config.registry import TASK_TYPES
from harness.config.spec import RunSpec
from harness.run.backbones import resolve
from harness.run.cell import (
    PreparedTask,
    cost_of,
    load_task,
    preprocess_task,
    record_of,
    save_if_asked,
)
from harness.run.cost import PeakMemory, PhaseTimer, parameter_counts
from harness.run.training import HarnessTrainer, Progress, TrainerInputs, build_trainer, set_dropout
from harness.store.database import RunRecord
from harness.strategies import Context, backbone_of


class MultiTaskModel(nn.Module):
    """Task models sharing one backbone; a batch's `task` picks the head."""

    main_input_name = "input_ids"
    accepts_loss_kwargs = False  # each task model computes its own mean loss

    def __init__(self, models: dict[str, nn.Module]):
        super().__init__()
        self.tasks = nn.ModuleDict(models)

    def forward(self, task: str, **inputs):
        return self.tasks[task](**inputs)


def share_backbone(models: dict[str, nn.Module]) -> None:
    """Make every model use the first one's backbone module (their own is dropped)."""
    first = next(iter(models.values()))
    body = backbone_of(first)
    for name, model in models.items():
        own = getattr(model, model.base_model_prefix)
        if type(own) is not type(body):
            raise ValueError(f"task {name!r}: its backbone is a {type(own).__name__}, not the shared {type(body).__name__}")
        setattr(model, model.base_model_prefix, body)


class TaskMixture:
    """Training batches of several tasks, mixed: each step draws a task with the strategy's
    probabilities and takes that task's next batch (its loader restarts, reshuffled, when it runs
    out). One epoch is as many batches as the tasks' epochs together; draws are seeded by epoch."""

    def __init__(self, loaders: dict[str, DataLoader], probabilities: dict[str, float], seed: int):
        self.loaders, self.seed, self.epoch = loaders, seed, 0
        self.names = list(loaders)
        self.p = np.array([probabilities[n] for n in self.names])
        self.drawn: dict[str, int] = dict.fromkeys(self.names, 0)

    def __len__(self) -> int:
        return sum(len(loader) for loader in self.loaders.values())

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        iterators = {n: iter(loader) for n, loader in self.loaders.items()}
        for i in rng.choice(len(self.names), size=len(self), p=self.p):
            name = self.names[i]
            try:
                batch = next(iterators[name])
            except StopIteration:
                iterators[name] = iter(self.loaders[name])
                batch = next(iterators[name])
            self.drawn[name] += 1
            yield {**batch, "task": name}


class JointTrainer(HarnessTrainer):
    def __init__(self, *args, mixture: TaskMixture, **kwargs):
        self.mixture = mixture
        super().__init__(*args, **kwargs)

    def get_train_dataloader(self):
        return self.mixture


def _loader(dataset, model: nn.Module, collator, batch_size: int, seed: int) -> DataLoader:
    """A shuffling loader of the columns `model` takes (the rest is for decoding, not training)."""
    accepted = set(inspect.signature(model.forward).parameters) | {"labels"}
    dataset = dataset.remove_columns([c for c in dataset.column_names if c not in accepted])
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=collator,
                      generator=torch.Generator().manual_seed(seed))


def run_joint(specs: list[RunSpec], progress: Progress | None = None, artifacts: Path | None = None) -> list[RunRecord]:
    """Train one model on every partner task of `specs` (cells of the same joint model) and
    return a record for each spec: run.cell.run_cell's structure (set up, train, evaluate, record)
    with one model per task around a shared body, and batches drawn from a task mixture."""
    started, timer = time.perf_counter(), PhaseTimer()
    first = specs[0]
    cfg, seed, strategy = first.train, first.seed, first.build_strategy()
    # the body of a pooled head is the fullest (it has a pooler that the others lack): it is the one shared
    names = sorted(first.partners, key=lambda n: not TASK_TYPES.get(first.partners[n].card.type).pooled)
    with PeakMemory() as memory:
        with timer("load"):
            tasks = {n: load_task(first.partners[n].task_card(), strategy, cfg, seed) for n in names}
            models, tokenizer = _models(first, strategy, tasks)
        with timer("preprocess"):
            for n, task in tasks.items():
                preprocess_task(task, tokenizer, cfg, models[n], artifacts)
        if cfg.dropout is not None:
            for model in models.values():
                set_dropout(model, cfg.dropout)
        for n, task in tasks.items():
            strategy.prepare(Context(first, task.task_type, tokenizer, artifacts))
            models[n] = strategy.apply(models[n], task.task_type)
        joint = MultiTaskModel(models)
        params = parameter_counts(joint, strategy.trained(joint))
        loaders = {n: _loader(t.train_set, models[n], t.task_type.collator(tokenizer), cfg.batch_size, seed + i)
                   for i, (n, t) in enumerate(tasks.items())}
        mixing = strategy.mixing({n: len(loader) for n, loader in loaders.items()})
        mixture = TaskMixture(loaders, mixing, seed)
        with tempfile.TemporaryDirectory(prefix="harness-") as workdir:
            trainer = build_trainer(first, strategy, TrainerInputs(joint, tokenizer, tasks[first.task].task_type,
                                                                  tasks[first.task].train_set), workdir, progress,
                                    trainer_class=JointTrainer, track=False, mixture=mixture)  # one model for several cells: no one tracked run
            with timer("train"):
                result = trainer.train()  # the task mixture batches itself: no auto batch size
                trainer.check_weights()
            predictions = {}
            with timer("evaluate"):
                for spec in specs:
                    task = tasks[spec.task]
                    models[spec.task].eval()
                    scorer = build_trainer(spec, strategy, TrainerInputs(models[spec.task], tokenizer, task.task_type),
                                           workdir, track=False)
                    predictions[spec.task] = scorer.predictions(task.eval_set)
    tokens = int(trainer.state.num_input_tokens_seen or 0)
    eval_rows = sum(len(tasks[s.task].eval_set) for s in specs)
    cost = cost_of(params, memory, timer, started, result.metrics, tokens, eval_rows, timer.seconds["evaluate"])
    shared = {"tasks": names, "sampling": strategy.args.sampling,
              "probabilities": {n: round(p, 6) for n, p in mixing.items()},
              "batches_per_epoch": {n: len(loader) for n, loader in loaders.items()},
              "batches_drawn": dict(mixture.drawn)}
    records = []
    for spec in specs:  # each task's model (the shared body and its own head) is saved to load alone
        task = tasks[spec.task]
        info = task.info(trainer, result, cfg, save_if_asked(models[spec.task], tokenizer, artifacts, strategy, spec))
        records.append(record_of(spec, task.task_type, task.data, predictions[spec.task],
                                 task.task_type.references(task.eval_set), dict(cost), info | {"joint": shared}))
    return records


def _models(first: RunSpec, strategy, tasks: dict[str, PreparedTask]) -> tuple[dict[str, nn.Module], object]:
    """({task: its head model}, the tokenizer) around one shared body, loaded in `tasks`' order."""
    backbone = resolve(first.model, first.model_spec)
    texts = [t for task in tasks.values() for t in task.task_type.texts(task.train_rows)]
    models, tokenizer = {}, None
    for n, task in tasks.items():
        models[n], tokenizer = backbone.load(*strategy.architecture(task.task_type), texts,
                                             first.seed, tokenizer=tokenizer, base=strategy.base)
    share_backbone(models)
    return models, tokenizer
