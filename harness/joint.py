"""One joint model end to end: the tasks of a joint strategy (multitask) trained together.

Every task gets its own head model (its adapter's AutoModelFor* class) and all of them share one
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

from harness.backbones import resolve
from harness.cost import PeakMemory, PhaseTimer, parameter_counts
from harness.finetuned import save_finetuned
from harness.registry import ADAPTERS
from harness.runner import cost_of, record_of, rows_of
from harness.spec import RunSpec
from harness.store import RunRecord
from harness.strategies import Context, backbone_of
from harness.training import (
    HarnessTrainer,
    Progress,
    build_trainer,
    preprocessed,
    set_dropout,
    training_info,
)


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
    return a record for each spec."""
    started = time.perf_counter()
    first = specs[0]
    cfg, seed, strategy = first.train, first.seed, first.build_strategy()
    timer = PhaseTimer()
    cards = {name: partner.task_card() for name, partner in first.partners.items()}
    adapters = {name: ADAPTERS.get(card.type)(card) for name, card in cards.items()}
    # the body with the most parameters is shared (a classifier's has a pooler that a tagger's lacks)
    order = sorted(cards, key=lambda n: adapters[n].type != "classification")
    with PeakMemory() as memory:
        with timer("load"):
            rows = {n: rows_of(cards[n], adapters[n], strategy, cfg, seed) for n in order}
            texts = [t for n in order for t in adapters[n].texts(rows[n][1])]
            backbone = resolve(first.model, first.model_spec)
            models, tokenizer = {}, None
            for n in order:
                adapter = adapters[n]
                models[n], tokenizer = backbone.load(strategy.model_class(adapter), strategy.head(adapter), texts,
                                                     seed, tokenizer=tokenizer)
            share_backbone(models)
        cache = artifacts.parent / "cache" / "preprocessed" if artifacts else None
        with timer("preprocess"):
            sets, counts = {}, {}
            for n in order:
                adapters[n].bind(models[n])
                data, train_rows, eval_rows, _ = rows[n]
                train_set, train_info = preprocessed(adapters[n], train_rows, data.train_source, tokenizer, cfg,
                                                     models[n], cache)
                eval_set, eval_info = preprocessed(adapters[n], eval_rows, data.eval_source, tokenizer, cfg,
                                                   models[n], cache)
                sets[n], counts[n] = (train_set, eval_set), (train_info, eval_info)
        if cfg.dropout is not None:
            for model in models.values():
                set_dropout(model, cfg.dropout)
        for n in order:
            strategy.prepare(Context(first, adapters[n], tokenizer, artifacts))
            models[n] = strategy.apply(models[n], adapters[n])
        joint = MultiTaskModel(models)
        params = parameter_counts(joint, strategy.trained(joint))
        loaders = {n: _loader(sets[n][0], models[n], adapters[n].collator(tokenizer), cfg.batch_size, seed + i)
                   for i, n in enumerate(order)}
        mixing = strategy.mixing({n: len(loader) for n, loader in loaders.items()})
        mixture = TaskMixture(loaders, mixing, seed)
        with tempfile.TemporaryDirectory(prefix="harness-") as workdir:
            trainer = build_trainer(first, joint, tokenizer, adapters[first.task], sets[first.task][0], None, workdir,
                               progress, strategy, trainer_class=JointTrainer, mixture=mixture)
            with timer("train"):
                result = trainer.train()  # the task mixture batches itself: no auto batch size
            predictions = {}
            with timer("evaluate"):
                for spec in specs:
                    models[spec.task].eval()
                    scorer = build_trainer(spec, models[spec.task], tokenizer, adapters[spec.task], None,
                                      sets[spec.task][1], workdir, None, strategy)
                    predictions[spec.task] = scorer.predictions(sets[spec.task][1])
    tokens = int(trainer.state.num_input_tokens_seen or 0)
    eval_rows = sum(len(sets[s.task][1]) for s in specs)
    cost = cost_of(params, memory, timer, started, result.metrics, tokens, eval_rows, timer.seconds["evaluate"])
    shared = {
        "tasks": order,
        "sampling": strategy.args.sampling,
        "probabilities": {n: round(p, 6) for n, p in mixing.items()},
        "batches_per_epoch": {n: len(loader) for n, loader in loaders.items()},
        "batches_drawn": dict(mixture.drawn),
    }
    records = []
    for spec in specs:
        adapter, (data, *_rest) = adapters[spec.task], rows[spec.task]
        saved = None
        if cfg.save_model and artifacts:  # each task's model (shared body and its own head) loads alone
            saved = save_finetuned(models[spec.task], tokenizer, artifacts / spec.id / "model", strategy, spec)
        info = training_info(trainer, result, *counts[spec.task], data, cfg, saved) | {"joint": shared}
        records.append(record_of(spec, adapter, data, predictions[spec.task],
                                 adapter.references(sets[spec.task][1]), dict(cost), info))
    return records
