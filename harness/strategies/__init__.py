"""What a cell trains and how it is fed: methods and the parts a recipe adds to them.

A **method** (`Strategy`) is a validated argument model plus `apply(model, task_type)`, which
freezes, unfreezes or wraps the model, or predicts without training (prompting). A **part** (`Part`)
is one thing a recipe adds to any method that trains: which rows train (data: augmentation,
back-translation), the loss (objective: distillation) or which tasks train together (tasks:
multitask). `check` tells preflight
why either cannot apply to a backbone (built on the meta device: no weights are loaded).
harness.strategies.recipe composes them; the tables of names are harness.config.registry's
STRATEGIES (methods) and PARTS.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import safetensors.torch
import torch
from torch import nn

from harness.config.parsing import Strict, parse


class NoArgs(Strict):
    pass


@dataclass
class Context:
    """What a cell hands a strategy's `prepare`: its spec, task type, tokenizer, artifacts folder."""

    spec: Any
    task_type: Any
    tokenizer: Any
    artifacts: Path | None


class Configured:
    """A validated argument model, read from a suite: what methods and parts share."""

    name: ClassVar[str]
    Args: ClassVar[type[Strict]] = NoArgs
    task_types: ClassVar[frozenset[str] | None] = None  # the task types it applies to; None: all

    def __init__(self, args: Strict):
        self.args = args

    @classmethod
    def from_suite(cls, raw: dict[str, Any], where: str, key: str):
        """Validate a suite's arguments; errors name `where` and `key`."""
        return cls(parse(cls.Args, raw, where, prefix=tuple(key.split("."))))

    def resolved(self) -> dict[str, Any]:
        """Every argument, defaults included: what the run id hashes."""
        return self.args.model_dump(mode="json")

    def check(self, model: nn.Module) -> str | None:
        """Why this cannot apply to `model` (a meta-device instance), or None."""
        return None


class Part(Configured):
    """A recipe part beyond the method: `role` "data" (which rows train: `augment`), "objective"
    (the training loss in place of the task's own: `loss`) or "tasks" (which tasks train together
    in one model: `mixing`). It combines with any method that trains."""

    role: ClassVar[str]

    def prepare(self, context: Context) -> None:
        """Load what is needed beyond the model (a teacher) before the method applies."""

    def augment(self, rows, task_type, seed: int) -> tuple[Any, dict]:
        """The training rows the model sees, and what was done to them (a data part)."""
        raise NotImplementedError

    def loss(self, inputs: dict, outputs) -> torch.Tensor:
        """The training loss from the batch and the model's outputs (an objective part)."""
        raise NotImplementedError

    def mixing(self, sizes: dict[str, int]) -> dict[str, float]:
        """The probability of drawing each task's next batch, given its number of batches per
        epoch (a tasks part)."""
        raise NotImplementedError


class Strategy(Configured):
    """A method: what trains (or, with `trains` False, how it predicts without training)."""

    trains: ClassVar[bool] = True  # False: the strategy predicts without training (prompting)
    # True: it trains peft modules around a frozen body, which may then be held quantized (QLoRA)
    adapts: ClassVar[bool] = False
    base: ClassVar[str] = "fp32"  # how the backbone's body is held (a recipe's `base`)

    def architecture(self, task_type) -> tuple[type, dict[str, Any]]:
        """(model class, head arguments): what a backbone is built or loaded as for this method; the
        task type's AutoModelFor* class and head by default."""
        return task_type.model_class, task_type.head()

    def apply(self, model: nn.Module, task_type) -> nn.Module:
        raise NotImplementedError

    def parameter_groups(self, model: nn.Module) -> list[tuple[list[str], float]] | None:
        """[(parameter names, learning-rate scale)] for the optimizer, or None for every trainable
        parameter at the base rate. Parameters that start frozen and unfreeze later must be listed."""
        return None

    def trained(self, model: nn.Module) -> set[str]:
        """Every parameter this strategy trains at some point (what cost figures count)."""
        groups = self.parameter_groups(model)
        if groups is not None:
            return {n for names, _ in groups for n in names}
        return {n for n, p in model.named_parameters() if p.requires_grad}

    def before_evaluate(self, model: nn.Module) -> nn.Module:
        """The model to evaluate once training is done (PEFT methods may merge their adapter)."""
        return model

    def callbacks(self, model: nn.Module) -> list:
        """TrainerCallbacks that change what trains during training (gradual unfreezing)."""
        return []

    def predict(self, model: nn.Module, tokenizer, task_type, rows, train_rows, seed: int, train) -> tuple[list, dict]:
        """(per-example predictions on `rows`, what was done) for a strategy that does not train
        (`trains` False): it predicts in place of the Trainer, and leaves each row's class
        probabilities in `self.probabilities` where the task has classes (calibration reads them)."""
        raise NotImplementedError

    probabilities: list | None = None  # of the rows `predict` last predicted

    def save_trained(self, model: nn.Module, folder: Path) -> None:
        """Write what this strategy trained in `model` into `folder`: the parameters it trains
        (the rest is the backbone, which the run spec rebuilds). `load_trained` reads them back."""
        folder.mkdir(parents=True, exist_ok=True)
        trained = self.trained(model)
        state = {n: p.detach().contiguous() for n, p in model.named_parameters() if n in trained}
        safetensors.torch.save_file(state, folder / TRAINED)

    def load_trained(self, model: nn.Module, task_type, folder: Path) -> nn.Module:
        """`model` (the backbone rebuilt as the cell built it) with this strategy applied and the
        parameters `save_trained` wrote loaded into it."""
        model = self.apply(model, task_type)
        state = safetensors.torch.load_file(folder / TRAINED)
        missing = set(state) - set(dict(model.named_parameters()))
        if missing:
            raise ValueError(f"{folder}: saved parameters the rebuilt model lacks: {sorted(missing)[:3]}")
        model.load_state_dict(state, strict=False)
        return model


# The file Strategy.save_trained writes the trained parameters to.
TRAINED = "trained.safetensors"


def backbone_of(model: nn.Module) -> nn.Module:
    """The pretrained body of an AutoModelFor* model; everything else is its task head."""
    body = getattr(model, model.base_model_prefix, None)
    if not isinstance(body, nn.Module) and getattr(model.config, "is_encoder_decoder", False):
        # encoder-decoder LMs (T5) hold their body on the model itself: everything but the LM head
        body = nn.ModuleDict({n: m for n, m in model.named_children() if n != "lm_head"})
    if not isinstance(body, nn.Module):
        raise ValueError(f"{type(model).__name__} has no backbone attribute {model.base_model_prefix!r}")
    return body


def head_names(model: nn.Module) -> set[str]:
    body = {id(p) for p in backbone_of(model).parameters()}
    return {n for n, p in model.named_parameters() if id(p) not in body}


def train_only(model: nn.Module, keep) -> nn.Module:
    """Freeze every parameter except those whose name satisfies `keep(name)` or that belong to the head."""
    head = head_names(model)
    for name, param in model.named_parameters():
        param.requires_grad = name in head or keep(name)
    return model


def layer_stack(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The backbone's stack of transformer blocks: its longest ModuleList of same-typed modules
    (encoder.layer in BERT, model.layers in Llama, h in GPT-2), with its qualified name."""
    body = {id(m) for m in backbone_of(model).modules()}
    best: tuple[str, nn.ModuleList] | None = None
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and id(module) in body and len(module) > 0:
            if len({type(m) for m in module}) == 1 and (best is None or len(module) > len(best[1])):
                best = (name, module)
    if best is None:
        raise ValueError(f"{type(model).__name__} has no stack of layers")
    return best


def depth_groups(model: nn.Module) -> tuple[list[str], list[list[str]], list[str], list[str]]:
    """Parameter names by depth: (embeddings, [layer 0 .. layer L-1], above the layers, head).

    'Above the layers' holds what sits between the last block and the head (a final norm, a pooler).
    """
    stack, layers = layer_stack(model)
    head = head_names(model)
    embeddings, above, by_layer = [], [], [[] for _ in layers]
    for name, _ in model.named_parameters():
        if name in head:
            continue
        if name.startswith(stack + "."):
            by_layer[int(name[len(stack) + 1:].split(".", 1)[0])].append(name)
        elif "embed" in name:
            embeddings.append(name)
        else:
            above.append(name)
    return embeddings, by_layer, above, sorted(head)
