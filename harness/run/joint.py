"""One joint model end to end: the tasks of a recipe with a tasks part (multitask) trained together.

Every task gets its own model (its task type's AutoModelFor* class) with the recipe's method
applied to it, as a single-task cell would have it; then every parameter outside the task's head
is tied to the first task's (`tie_bodies`), so the body, and whatever the method trains in it (all
of it, a LoRA adapter, its biases, a soft prompt), is one set of parameters that every task trains.
Each task model stays a whole model of its own kind: it evaluates, saves and reloads as a single
cell's does. Training is the one Trainer path; only the training batches differ: a `TaskMixture`
draws, each step, which task the next batch comes from. Each task is then predicted with its own
head and scored as its own cell. The joint training's cost (parameters of the whole model, time,
memory) is recorded with every task's record.
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
    recipe_info,
    record_of,
    save_if_asked,
)
from harness.run.cost import PeakMemory, PhaseTimer, parameter_counts
from harness.run.training import HarnessTrainer, Progress, TrainerInputs, build_trainer, set_dropout
from harness.store.database import RunRecord
from harness.strategies import Context, head_names


class MultiTaskModel(nn.Module):
    """Task models sharing one backbone; a batch's `task` picks the head."""

    main_input_name = "input_ids"
    accepts_loss_kwargs = False  # each task model computes its own mean loss

    def __init__(self, models: dict[str, nn.Module]):
        super().__init__()
        self.tasks = nn.ModuleDict(models)

    def forward(self, task: str, **inputs):
        return self.tasks[task](**inputs)


def tie_bodies(models: dict[str, nn.Module], heads: dict[str, set[int]]) -> int:
    """Make every model use the first one's parameters wherever both have a parameter of that name
    and shape outside their heads (`heads`: the ids of each model's head parameters before the
    method applied; peft's copies of a head, `modules_to_save`, are heads too). Returns how many
    of the first model's parameters the others now share."""
    names = list(models)
    first = dict(models[names[0]].named_parameters(remove_duplicate=False))
    tied: set[int] = set()
    for name in names[1:]:
        model = models[name]
        for path, param in list(model.named_parameters(remove_duplicate=False)):
            if _is_head(path, param, heads[name]) or path not in first or first[path].shape != param.shape:
                continue
            owner, _, leaf = path.rpartition(".")
            setattr(model.get_submodule(owner) if owner else model, leaf, first[path])
            tied.add(id(first[path]))
    return len(tied)


def _is_head(path: str, param: nn.Parameter, head: set[int]) -> bool:
    return id(param) in head or ".modules_to_save." in path or ".original_module." in path


class JointRecipe:
    """The recipe as the joint model's Trainer sees it: what the method trains, its parameter groups
    and its callbacks, read off each task model and named inside the MultiTaskModel. A parameter
    that the task models share is named once, under the first task that holds it."""

    def __init__(self, recipe, models: dict[str, nn.Module]):
        self.recipe, self.models = recipe, models

    def __getattr__(self, name):
        return getattr(self.recipe, name)

    def _named(self, joint: nn.Module) -> dict[int, str]:
        return {id(p): n for n, p in joint.named_parameters()}

    def trained(self, joint: nn.Module) -> set[str]:
        named = self._named(joint)
        return {named[id(p)] for model in self.models.values()
                for n, p in model.named_parameters() if n in self.recipe.trained(model)}

    def parameter_groups(self, joint: nn.Module) -> list[tuple[list[str], float]] | None:
        named, seen, groups = self._named(joint), set(), []
        for model in self.models.values():
            own = self.recipe.parameter_groups(model)
            if own is None:
                return None
            params = dict(model.named_parameters())
            for names, scale in own:
                fresh = [named[id(params[n])] for n in names if id(params[n]) not in seen]
                seen.update(id(params[n]) for n in names)
                if fresh:
                    groups.append((fresh, scale))
        return groups

    def callbacks(self, joint: nn.Module) -> list:
        """The first task model's: what they change (layers unfrozen, AdaLoRA's ranks) is shared."""
        return self.recipe.callbacks(next(iter(self.models.values())))


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
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # what a peft wrapper passes on to
    accepted = set(inspect.signature(inner.forward).parameters) | {"labels"}
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
        tied = _applied(strategy, models, tasks, Context(first, None, tokenizer, artifacts))
        joint, recipe = MultiTaskModel(models), JointRecipe(strategy, models)
        params = parameter_counts(joint, recipe.trained(joint))
        loaders = {n: _loader(t.train_set, models[n], t.task_type.collator(tokenizer), cfg.batch_size, seed + i)
                   for i, (n, t) in enumerate(tasks.items())}
        mixing = strategy.mixing({n: len(loader) for n, loader in loaders.items()})
        mixture = TaskMixture(loaders, mixing, seed)
        with tempfile.TemporaryDirectory(prefix="harness-") as workdir:
            trainer = build_trainer(first, recipe, TrainerInputs(joint, tokenizer, tasks[first.task].task_type,
                                                                  tasks[first.task].train_set), workdir, progress,
                                    trainer_class=JointTrainer, track=False, mixture=mixture)  # one model for several cells: no one tracked run
            with timer("train"):
                result = trainer.train()  # the task mixture batches itself: no auto batch size
                trainer.check_weights()
            predictions = {}
            with timer("evaluate"):
                for spec in specs:
                    task = tasks[spec.task]
                    models[spec.task] = strategy.before_evaluate(models[spec.task])
                    models[spec.task].eval()
                    scorer = build_trainer(spec, strategy, TrainerInputs(models[spec.task], tokenizer, task.task_type),
                                           workdir, track=False)
                    predictions[spec.task] = scorer.predictions(task.eval_set)
    tokens = int(trainer.state.num_input_tokens_seen or 0)
    eval_rows = sum(len(tasks[s.task].eval_set) for s in specs)
    cost = cost_of(params, memory, timer, started, result.metrics, tokens, eval_rows, timer.seconds["evaluate"])
    shared = {"tasks": names, "sampling": strategy.together.args.sampling, "tied_parameters": tied,
              "probabilities": {n: round(p, 6) for n, p in mixing.items()},
              "batches_per_epoch": {n: len(loader) for n, loader in loaders.items()},
              "batches_drawn": dict(mixture.drawn)}
    records = []
    for spec in specs:  # each task's model (the shared body and its own head) is saved to load alone
        task = tasks[spec.task]
        info = task.info(trainer, result, cfg, save_if_asked(models[spec.task], tokenizer, artifacts, strategy, spec))
        records.append(record_of(spec, task.task_type, task.data, predictions[spec.task],
                                 task.task_type.references(task.eval_set), dict(cost),
                                 info | recipe_info(strategy, models[spec.task]) | {"joint": shared}))
    return records


def _applied(strategy, models: dict[str, nn.Module], tasks: dict[str, PreparedTask], context: Context) -> int:
    """Apply the recipe to every task's model, as a single cell would, then tie their bodies;
    returns how many parameters they share."""
    heads = {n: {id(p) for name, p in model.named_parameters() if name in head_names(model)}
             for n, model in models.items()}
    for n, task in tasks.items():
        context.task_type = task.task_type
        strategy.prepare(context)
        models[n] = strategy.apply(models[n], task.task_type)
    return tie_bodies(models, heads)


def _models(first: RunSpec, strategy, tasks: dict[str, PreparedTask]) -> tuple[dict[str, nn.Module], object]:
    """({task: its model}, the tokenizer), loaded in `tasks`' order (tie_bodies shares their bodies)."""
    backbone = resolve(first.model, first.model_spec)
    texts = [t for task in tasks.values() for t in task.task_type.texts(task.train_rows)]
    models, tokenizer = {}, None
    for n, task in tasks.items():
        models[n], tokenizer = backbone.load(*strategy.architecture(task.task_type), texts,
                                             first.seed, tokenizer=tokenizer, base=strategy.base)
    return models, tokenizer
