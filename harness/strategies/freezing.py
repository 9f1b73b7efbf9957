"""The freezing family: strategies that train a subset of the backbone's own parameters.

Depth is read off the model (harness.strategies.depth_groups): embeddings, the stack of layers
from the bottom, what sits above the stack, and the head.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field
from transformers import TrainerCallback

from harness.config.parsing import Strict
from harness.strategies import (
    Strategy,
    depth_groups,
    head_names,
    layer_stack,
    train_only,
)


class HeadOnly(Strategy):
    """Linear probe: the backbone is frozen, only the task head trains."""

    name = "head_only"

    def check(self, model):
        if not head_names(model):
            return "the head shares its weights with the input embeddings (tied); there is no separate head to train"
        return None

    def apply(self, model, task_type):
        return train_only(model, lambda name: False)


class _CountsLayers(Strategy):
    """A strategy with an argument that counts layers (`depth`), which a model must have."""

    depth: ClassVar[str]

    def check(self, model):
        k, layers = getattr(self.args, self.depth), len(layer_stack(model)[1])
        depth = getattr(model.config, "num_hidden_layers", layers)
        if layers < depth:  # ALBERT: one set of weights serves every layer, so k of them is all or none
            return (f"{type(model).__name__} shares its weights across its {depth} layers ({layers} set(s)): "
                    f"{self.name} cannot train or freeze {k} of them alone")
        return f"{self.depth} is {k} but {type(model).__name__} has {layers} layers" if k > layers else None


class FreezeArgs(Strict):
    layers: int = Field(ge=0, description="bottom layers to freeze")
    embeddings: bool = Field(True, description="freeze the embeddings too")


class Freeze(_CountsLayers):
    """Freeze the embeddings and the bottom k layers; everything above trains."""

    name = "freeze"
    Args = FreezeArgs
    depth = "layers"

    def apply(self, model, task_type):
        embeddings, layers, _, _ = depth_groups(model)
        frozen = {n for layer in layers[: self.args.layers] for n in layer}
        if self.args.embeddings:
            frozen |= set(embeddings)
        return train_only(model, lambda name: name not in frozen)


class TopKArgs(Strict):
    k: int = Field(ge=0, description="top layers that train, with what is above them and the head")


class TopK(_CountsLayers):
    """Only the top k layers (and what sits above them, and the head) train."""

    name = "top_k"
    Args = TopKArgs
    depth = "k"

    def apply(self, model, task_type):
        _, layers, above, _ = depth_groups(model)
        keep = set(above) | {n for layer in layers[len(layers) - self.args.k:] for n in layer}
        return train_only(model, lambda name: name in keep)


class GradualArgs(Strict):
    every: Literal["epoch"] | int = Field("epoch", description="unfreeze the next group every epoch, or every N steps")


class GradualUnfreezing(Strategy):
    """ULMFiT's gradual unfreezing: the head first, then one layer group from the top every epoch
    (or every N steps), down to the embeddings. The optimizer holds every parameter from the start;
    frozen ones have no gradient and so do not move."""

    name = "gradual_unfreezing"
    Args = GradualArgs

    def check(self, model):
        if isinstance(self.args.every, int) and self.args.every < 1:
            return "every must be at least 1 step"
        return None

    def apply(self, model, task_type):
        _, _, above, _ = depth_groups(model)
        return train_only(model, lambda name: name in set(above))

    def parameter_groups(self, model):
        return [([n for n, _ in model.named_parameters()], 1.0)]

    def callbacks(self, model):
        embeddings, layers, _, _ = depth_groups(model)
        return [_Unfreeze(model, [*reversed(layers), embeddings], self.args.every)]


class _Unfreeze(TrainerCallback):
    def __init__(self, model, groups: list[list[str]], every):
        self.params = dict(model.named_parameters())
        self.groups = groups
        self.every = every
        self.unfrozen = 0

    def _advance(self, stage: int) -> None:
        for group in self.groups[self.unfrozen: min(stage, len(self.groups))]:
            for name in group:
                self.params[name].requires_grad = True
        self.unfrozen = max(self.unfrozen, min(stage, len(self.groups)))

    def on_epoch_begin(self, args, state, control, **kwargs):
        if self.every == "epoch":
            self._advance(int(round(state.epoch or 0)))

    def on_step_begin(self, args, state, control, **kwargs):
        if self.every != "epoch":
            self._advance(state.global_step // self.every)


class LLRDArgs(Strict):
    decay: float = Field(0.9, gt=0, le=1, description="learning-rate factor per layer, from the head down")


class LLRD(Strategy):
    """Layer-wise learning-rate decay: everything trains; the head (and what is above the layers)
    at the base rate, layer i of L at decay^(L - i), the embeddings at decay^(L + 1)."""

    name = "llrd"
    Args = LLRDArgs

    def apply(self, model, task_type):
        for param in model.parameters():
            param.requires_grad = True
        return model

    def parameter_groups(self, model):
        embeddings, layers, above, head = depth_groups(model)
        depth = len(layers)
        groups = [(head + above, 1.0), (embeddings, self.args.decay ** (depth + 1))]
        groups += [(names, self.args.decay ** (depth - i)) for i, names in enumerate(layers)]
        return [(names, scale) for names, scale in groups if names]
