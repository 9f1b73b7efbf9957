"""Strategies: each decides what trains, never how. The table of names is harness.registry.STRATEGIES.

A strategy is a validated argument model plus `apply(model, adapter)`, which freezes, unfreezes
or wraps the model. `check` tells preflight why a strategy cannot apply to a backbone (built on
the meta device, so no weights are loaded) before anything runs.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from harness.config import Strict, parse


class NoArgs(Strict):
    pass


class Strategy:
    name: ClassVar[str]
    Args: ClassVar[type[Strict]] = NoArgs

    def __init__(self, args: Strict):
        self.args = args

    @classmethod
    def from_suite(cls, raw: dict[str, Any], where: str, key: str) -> Strategy:
        """Validate a suite's arguments for this strategy; errors name `where` and `key`."""
        return cls(parse(cls.Args, raw, where, prefix=tuple(key.split("."))))

    def resolved(self) -> dict[str, Any]:
        """Every argument, defaults included: what the run id hashes."""
        return self.args.model_dump(mode="json")

    def check(self, model: nn.Module) -> str | None:
        """Why this strategy cannot apply to `model` (a meta-device instance), or None."""
        return None

    def apply(self, model: nn.Module, adapter) -> nn.Module:
        raise NotImplementedError


def backbone_of(model: nn.Module) -> nn.Module:
    """The pretrained body of an AutoModelFor* model; everything else is its task head."""
    body = getattr(model, model.base_model_prefix, None)
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
