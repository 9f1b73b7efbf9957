"""What a job of several tasks adds to the one run path (harness.run.cell): the tasks of a recipe
with a tasks part (multitask) trained together as one model.

Every task gets its own model (its task type's AutoModelFor* class) with the recipe's method
applied to it, as a single-task cell would have it; then every parameter outside the task's head
is tied to the first task's (`tie_bodies`), so the body, and whatever the method trains in it (all
of it, a LoRA adapter, its biases), is one set of parameters that every task trains. Each task
model stays a whole model of its own kind: it evaluates, saves and reloads as a single cell's
does. Training is the one Trainer path; only the training batches differ: a `TaskMixture` draws,
each step, which task the next batch comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from harness.run.serving import model_inputs
from harness.run.training import HarnessTrainer
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
    accepted = model_inputs(model) | {"labels"}
    dataset = dataset.remove_columns([c for c in dataset.column_names if c not in accepted])
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=collator,
                      generator=torch.Generator().manual_seed(seed))


@dataclass
class JointTraining:
    """A job's task models trained as one: the MultiTaskModel, the recipe as its Trainer sees it,
    the mixture its batches come from, and how many parameters the task models share."""

    model: MultiTaskModel
    recipe: JointRecipe
    mixture: TaskMixture
    tied: int

    def trainer_arguments(self) -> dict:
        return {"trainer_class": JointTrainer, "track": False, "mixture": self.mixture}  # one model, several cells: untracked

    def info(self, sampling: str) -> dict:
        """What every task's record says about the joint training."""
        return {"tasks": list(self.model.tasks), "sampling": sampling, "tied_parameters": self.tied,
                "probabilities": {n: round(float(p), 6) for n, p in zip(self.mixture.names, self.mixture.p)},
                "batches_per_epoch": {n: len(loader) for n, loader in self.mixture.loaders.items()},
                "batches_drawn": dict(self.mixture.drawn)}


def joint_training(strategy, models: dict[str, nn.Module], tasks: dict, context: Context, batch_size: int,
                   seed: int) -> JointTraining:
    """Apply the recipe to every task's model (`models`, in `tasks`' order: prepared tasks with their
    features), as a single cell would, tie their bodies, and mix their training batches."""
    heads = {n: {id(p) for name, p in model.named_parameters() if name in head_names(model)}
             for n, model in models.items()}
    for n, task in tasks.items():
        strategy.prepare(replace(context, task_type=task.task_type))
        models[n] = strategy.apply(models[n], task.task_type)
    tied = tie_bodies(models, heads)
    loaders = {n: _loader(t.train_set, models[n], t.task_type.collator(context.tokenizer), batch_size, seed + i)
               for i, (n, t) in enumerate(tasks.items())}
    mixing = strategy.mixing({n: len(loader) for n, loader in loaders.items()})
    return JointTraining(MultiTaskModel(models), JointRecipe(strategy, models), TaskMixture(loaders, mixing, seed), tied)
