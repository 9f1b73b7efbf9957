"""Bottleneck adapters (Houlsby et al., 2019; Pfeiffer et al., 2021), a small module of our own:
the maintained `adapters` library pins transformers 4.x, which harness does not use.

An adapter is down-projection, non-linearity, up-projection and a residual connection, inserted
after a layer's output projections: after attention and after the feed-forward block (Houlsby),
or after the feed-forward block only (Pfeiffer). The up-projection starts at zero, so training
starts from the pretrained function. The backbone is frozen; adapters and the head train.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import nn

from harness.config.parsing import Strict
from harness.strategies import Strategy, head_names, layer_stack

# Output projections inside one layer block, per architecture: (after attention, after feed-forward).
OUTPUTS: dict[str, tuple[str, str]] = {
    "bert": ("attention.output.dense", "output.dense"),
    "roberta": ("attention.output.dense", "output.dense"),
    "xlm-roberta": ("attention.output.dense", "output.dense"),
    "electra": ("attention.output.dense", "output.dense"),
    "deberta-v2": ("attention.output.dense", "output.dense"),
    "distilbert": ("attention.out_lin", "ffn.lin2"),
    "llama": ("self_attn.o_proj", "mlp.down_proj"),
    "mistral": ("self_attn.o_proj", "mlp.down_proj"),
    "qwen2": ("self_attn.o_proj", "mlp.down_proj"),
    "gpt2": ("attn.c_proj", "mlp.c_proj"),
}


class Bottleneck(nn.Module):
    def __init__(self, hidden: int, reduction: int):
        super().__init__()
        self.down = nn.Linear(hidden, max(1, hidden // reduction))
        self.act = nn.ReLU()
        self.up = nn.Linear(max(1, hidden // reduction), hidden)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden):
        return hidden + self.up(self.act(self.down(hidden)))


class WithAdapter(nn.Module):
    """A projection followed by its adapter."""

    def __init__(self, base: nn.Module, adapter: Bottleneck):
        super().__init__()
        self.base = base
        self.adapter = adapter

    def forward(self, *args, **kwargs):
        return self.adapter(self.base(*args, **kwargs))


class BottleneckArgs(Strict):
    placement: Literal["houlsby", "pfeiffer"] = "houlsby"
    reduction: int = Field(16, ge=1, description="hidden size / bottleneck size")


class BottleneckAdapters(Strategy):
    """Bottleneck adapters after each layer's output projections (Houlsby or Pfeiffer); backbone frozen."""

    name = "adapters"
    Args = BottleneckArgs

    def check(self, model):
        if model.config.model_type not in OUTPUTS:
            return (f"no adapter placement known for {model.config.model_type!r} "
                    f"(known: {', '.join(sorted(OUTPUTS))})")
        return None

    def apply(self, model, adapter):
        after_attention, after_ffn = OUTPUTS[model.config.model_type]
        where = [after_ffn] if self.args.placement == "pfeiffer" else [after_attention, after_ffn]
        head = head_names(model)
        for param_name, param in model.named_parameters():
            param.requires_grad = param_name in head
        _, layers = layer_stack(model)
        hidden = model.config.hidden_size
        for layer in layers:
            for path in where:
                parent_path, _, leaf = path.rpartition(".")
                parent = layer.get_submodule(parent_path) if parent_path else layer
                base = getattr(parent, leaf)
                setattr(parent, leaf, WithAdapter(base, Bottleneck(hidden, self.args.reduction)))
        for name, param in model.named_parameters():
            if ".adapter." in name:
                param.requires_grad = True
        return model
