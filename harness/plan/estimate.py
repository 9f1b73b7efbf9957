"""How much memory a cell needs, found before it runs, and how much the machine has.

The cell's model (its head, the strategy applied) is built on the meta device, then runs one
training forward and backward and one evaluation forward on fake tensors
(`torch._subclasses.FakeTensorMode`): every operator runs for its output shapes and dtypes only,
so nothing is allocated and no weights are loaded, yet every tensor the step would hold is seen.
A dispatch mode adds up the bytes of the storages alive at each moment; the largest sum is the
step's peak. Optimizer state (AdamW: two moments per trained parameter) is added by count. The
batch is the longest the settings allow (every row at `max_length`), so padding never exceeds it.
"""

from __future__ import annotations

import contextlib
import json
import weakref
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.weak import WeakIdKeyDictionary

from harness.base.device import Target, gib
from harness.base.digest import json_digest
from harness.base.errors import first_line
from harness.base.files import private_folder, write_text
from harness.config.schemas import train_fields


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a cell holds at its peak, and what they are."""

    peak: int  # the largest of the training step's and the evaluation forward's peaks
    weights: int
    gradients: int
    optimizer: int
    activations: int  # the rest of the training peak: activations kept for backward, temporaries
    batch: int
    tokens: int  # tokens per row of the longest batch
    device: str
    note: str = ""  # why activations are not counted, when fake tensors could not run the step
    error: str = ""  # why the step fails: the model or strategy rejects this cell's inputs

    def describe(self) -> str:
        parts = ", ".join(f"{name} {gib(getattr(self, name))}" for name in
                          ("weights", "gradients", "optimizer", "activations") if getattr(self, name))
        note = f"; {self.note}" if self.note else ""
        return f"{gib(self.peak)} at batch {self.batch} x {self.tokens} tokens ({parts}){note}"


class LiveBytes(TorchDispatchMode):
    """Bytes of the tensor storages alive, and their peak, over the operators run under it."""

    def __init__(self, held: list[torch.Tensor] = ()) -> None:
        super().__init__()
        self.live = self.peak = 0
        self._seen: WeakIdKeyDictionary = WeakIdKeyDictionary()
        for tensor in held:
            self._count(tensor)

    def _count(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        if storage in self._seen:
            return
        size = storage.nbytes()
        self._seen[storage] = weakref.finalize(storage, self._free, size)
        self.live += size
        self.peak = max(self.peak, self.live)

    def _free(self, size: int) -> None:
        self.live -= size

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self._count(leaf)
        return out


@dataclass(frozen=True)
class EstimateOf:
    """What a memory estimate is of: the cell's model (backbone, task type, strategy), its training
    settings, the device, the per-device batch (the settings' if None) and the compute precision
    (what train.precision means on this machine if None)."""

    backbone: Any
    task_type: Any
    strategy: Any
    train: Any
    device: str
    batch: int | None = None
    precision: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "batch", self.batch or self.train.batch_size)
        if self.precision is None:
            object.__setattr__(self, "precision", Target.here().compute(self.train.precision)["precision"])

    def at_batch(self, batch: int) -> EstimateOf:
        return replace(self, batch=batch)

    def key(self) -> str:
        """The cache key of the estimate: what it depends on, and nothing else."""
        import harness

        identity = {
            "backbone": self.backbone.spec.model_dump(mode="json"), "adapter": self.task_type.type,
            "head": self.task_type.head(), "options": self.task_type.options.model_dump(mode="json"),
            "strategy": [self.strategy.name, self.strategy.resolved()],
            "train": self.train.model_dump(mode="json", include=train_fields("shape") - {"batch_size", "auto_batch_size"}),
            "device": self.device, "batch": self.batch, "harness": harness.__version__, "torch": torch.__version__,
        }
        if self.precision != "fp32":  # what autocast computes in (estimates made before this key were fp32)
            identity["precision"] = self.precision
        return json_digest(identity, 24)


def cell_memory(of: EstimateOf, cache: Path | None = None) -> MemoryEstimate:
    """The peak memory of one cell, kept under `cache` (a folder) by everything it depends on."""
    path = cache / f"{of.key()}.json" if cache else None
    if path and path.exists():
        try:
            return MemoryEstimate(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            pass  # a damaged entry (a disk that filled, an older layout) is measured again
    estimate = _estimate(of)
    if path:
        with contextlib.suppress(OSError):  # a full or read-only disk: the estimate stands, only not kept
            private_folder(path.parent)
            write_text(path, json.dumps(asdict(estimate)))
    return estimate


def _estimate(of: EstimateOf) -> MemoryEstimate:
    from torch._subclasses.fake_tensor import FakeTensorMode

    backbone, task_type, strategy, train, device, batch = (of.backbone, of.task_type, of.strategy, of.train,
                                                          of.device, of.batch)

    model = backbone.build(*strategy.architecture(task_type))
    if getattr(model.config, "pad_token_id", None) is None:  # as loading sets it (backbones.Backbone.load)
        model.config.pad_token_id = getattr(model.config, "eos_token_id", None) or 0
    task_type.bind(model)
    tokens = max(shape[-1] for shape, _ in task_type.longest_batch(batch, train).values() if len(shape) > 1)
    saving = held_saving(model, strategy.base)  # of the model as loaded, before a method wraps it
    if strategy.trains:
        model = strategy.apply(model, task_type)
    trained = strategy.trained(model) if strategy.trains else set()
    weights = sum(t.untyped_storage().nbytes() for t in tensors_of(model)) - saving
    gradients = sum(p.numel() * p.element_size() for n, p in model.named_parameters() if n in trained)
    if strategy.base == "bf16" and not strategy.adapts:  # trained weights in two bytes: their gradients and
        gradients //= 2  # moments too (peft keeps its adapters in fp32)
    optimizer = 2 * gradients  # AdamW's two moments, in the parameters' dtype
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(of.precision)
    autocast = torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype is not None)
    try:
        with FakeTensorMode(allow_non_fake_inputs=True):
            _to_fake(model, device, trained)
            held = tensors_of(model)
            backward = _backward_peak(model, held, task_type, train, batch, autocast) if trained else 0
            evaluation = _eval_peak(model, held, task_type, train, autocast, strategy.trains, of.precision)
    except ValueError as exc:  # the model's or the strategy's own check of its inputs: the run would fail
        return MemoryEstimate(weights + gradients + optimizer, weights, gradients, optimizer, 0, batch, tokens,
                              device, error=first_line(exc)[:160])
    except Exception as exc:  # an operator that reads tensor values, which fake tensors have none of
        return MemoryEstimate(weights + gradients + optimizer, weights, gradients, optimizer, 0, batch, tokens,
                              device, note=f"activations not counted (the model reads input values: {first_line(exc)[:160]})")
    # later steps hold the optimizer's state through forward and backward; with gradient
    # accumulation, the gradients of earlier micro-batches stay alive through the next forward
    accumulated = gradients if train.gradient_accumulation_steps > 1 else 0
    training = backward + optimizer + accumulated if trained else 0
    # the optimizer step itself: weights, gradients and both moments (Trainer's fused AdamW makes no
    # temporaries the size of the parameters)
    step = weights + gradients + optimizer if trained else 0
    peak = max(training, step, evaluation)
    activations = max(training - weights - gradients - optimizer, 0) if trained else max(evaluation - weights, 0)
    return MemoryEstimate(peak, weights, gradients, optimizer, activations, batch, tokens, device)


# Bytes per weight of a quantized linear layer: nf4 (4 bits, and with double quantization one byte
# of absmax per block of 64) and int8 (one byte; its per-row scales are negligible).
QUANTIZED_BYTES = {"nf4": 0.5 + 1 / 64, "int8": 1.0}


def held_saving(model: torch.nn.Module, base: str) -> int:
    """Bytes the fp32 weights of `model` (as loaded: no method applied) overstate when its body is
    held as `base`: bf16 halves every weight; int8 / nf4 store the linear weights of the body (not
    the head) quantized."""
    if base == "bf16":
        return sum(p.numel() * p.element_size() for p in model.parameters()) // 2
    if base not in QUANTIZED_BYTES:
        return 0
    head = {n for n, _ in model.named_children() if n != model.base_model_prefix}
    saving = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.split(".")[0] not in head:
            saving += int(module.weight.numel() * (module.weight.element_size() - QUANTIZED_BYTES[base]))
    return saving


def tensors_of(model: torch.nn.Module) -> list[torch.Tensor]:
    """Every parameter and buffer once (tied weights are one tensor)."""
    return list({id(t): t for t in [*model.parameters(), *model.buffers()]}.values())


def _to_fake(model: torch.nn.Module, device: str, trained: set[str]) -> None:
    """Replace the meta model's tensors by fake ones on `device`, in place, keeping tied weights
    tied; every parameter that trains at some point requires gradients (the worst phase)."""
    names = {id(p): n for n, p in model.named_parameters()}
    made: dict[int, torch.Tensor] = {}
    for module in model.modules():
        for table in (module._parameters, module._buffers):
            for key, tensor in table.items():
                if tensor is None:
                    continue
                if id(tensor) not in made:
                    fake = torch.empty_like(tensor, device=device)
                    if isinstance(tensor, torch.nn.Parameter):
                        fake = torch.nn.Parameter(fake, requires_grad=names.get(id(tensor)) in trained)
                    made[id(tensor)] = fake
                table[key] = made[id(tensor)]


def _batch(task_type, rows: int, train) -> dict[str, torch.Tensor]:
    return {name: torch.zeros(shape, dtype=torch.float32 if dtype == "float" else torch.long)
            for name, (shape, dtype) in task_type.longest_batch(rows, train).items()}


def _backward_peak(model, held, task_type, train, batch: int, autocast) -> int:
    """Peak bytes of one forward and backward, gradients included."""
    model.train()
    inputs = _batch(task_type, batch, train)
    with LiveBytes(held) as live:
        with autocast:
            loss = model(**inputs).loss
        loss.backward()
    return live.peak


def _eval_peak(model, held, task_type, train, autocast, labels: bool, precision: str = "fp32") -> int:
    """Peak bytes of one evaluation forward: with labels, as Trainer evaluates; without, as
    prompting strategies score (their model is a language model, not the task's head)."""
    model.eval()
    inputs = _batch(task_type, train.eval_batch_size, train)
    if not labels:
        for name in task_type.label_names:
            inputs.pop(name, None)
    with LiveBytes(held) as live, torch.no_grad(), autocast:
        model(**inputs)
    extra = generation_cache(model.config, train, precision) if getattr(task_type, "generates", False) else 0
    return live.peak + extra


def generation_cache(config, train, precision: str = "fp32") -> int:
    """Bytes generation holds beyond one forward: the key/value cache of every beam of an eval batch
    over its prompt and new tokens (an encoder-decoder: the decoder's own tokens, and the encoder's
    output as cross-attention keys and values), and each step's logits over the vocabulary."""
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    layers = getattr(text, "num_decoder_layers", None) or getattr(text, "decoder_layers", None) or text.num_hidden_layers
    heads = getattr(text, "num_attention_heads", None) or getattr(text, "decoder_attention_heads", 1)
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or getattr(text, "d_kv", None) or text.hidden_size // heads
    settings, rows = train.generation, train.eval_batch_size
    sequences = rows * settings.num_beams
    new = settings.max_new_tokens
    # decoder-only: the prompt and the new tokens; encoder-decoder: the decoder's new tokens and the
    # encoder's output as cross-attention keys and values (the same count, held in the same layers)
    positions = train.max_length + new
    width = 2 if precision in ("bf16", "fp16") else 4  # the cache is kept in what the model computes in
    cache = 2 * layers * sequences * positions * kv_heads * head_dim * width
    return cache + sequences * text.vocab_size * 4  # one step's logits, in fp32
