"""What a cell's result costs beyond training: serving it, shipping it, and the compute it took.

Measured once training is done, on the device the cell trained on, and recorded in the run's cost
with that device named; none of it is part of the run id, since it describes the result on one
machine, not the result.

- **Serving**: latency per example at batch 1 (median and 95th percentile over a fixed, seeded
  sample of eval rows, after warm-up) and throughput at the eval batch size, for the model as it
  would be served: a PEFT adapter both unmerged and merged into the weights where the method
  merges. For generation, the latency is a whole generated answer, with the time to the first
  token and tokens per second beside it. A prompting method's latency is its own prediction of one
  row, demonstrations included.
- **Shipping**: the bytes of the files `save_model` writes (what a user keeps beside the public
  backbone: the adapter alone, the trained biases, or the whole model for full fine-tuning), and,
  where the method merges, the bytes of the merged model. Computed from the parameters, whether or
  not `save_model` is on.
- **Compute**: floating-point operations of training and evaluation, counted by torch's
  FlopCounterMode on real batches (a training step: forward and backward; an evaluation batch:
  forward), times the steps and batches the cell ran.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

SAMPLE = 32  # eval rows timed at batch 1
WARMUP = 2  # untimed calls first (lazy initialisation, allocator, caches)
COUNTED_BATCHES = 1  # training batches whose FLOPs are counted (their mean times the steps): 2 cost 10.5% of the quickstart


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(call: Callable[[int], object], n: int, device: torch.device) -> list[float]:
    """Seconds of `call(i)` for i < n, after WARMUP untimed calls."""
    for i in range(min(WARMUP, n)):
        call(i)
    seconds = []
    for i in range(n):
        _sync(device)
        start = time.perf_counter()
        call(i)
        _sync(device)
        seconds.append(time.perf_counter() - start)
    return seconds


def summary(seconds: list[float], rows: int) -> dict:
    """Median and 95th-percentile latency (ms) of per-row `seconds`."""
    return {"latency_ms": {"median": round(1000 * statistics.median(seconds), 3),
                           "p95": round(1000 * float(np.percentile(seconds, 95)), 3)}, "rows": rows}


def sample(n: int, seed: int, size: int = SAMPLE) -> list[int]:
    """The fixed, seeded rows a cell's serving is timed on."""
    return sorted(np.random.default_rng(seed).choice(n, size=min(size, n), replace=False).tolist())


def model_inputs(model: nn.Module) -> set[str]:
    """The inputs `model`'s forward takes, labels aside (a peft wrapper's: its base model's)."""
    import inspect

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return set(inspect.signature(inner.forward).parameters) - {"labels"}


def forward_cost(model: nn.Module, features, collator, batch_size: int, seed: int) -> dict:
    """Latency at batch 1 and throughput at `batch_size` of one forward pass per row."""
    device = next(model.parameters()).device
    keep = model_inputs(model)
    rows = [{k: v for k, v in features[i].items() if k in keep} for i in sample(len(features), seed)]

    def run(batch: list[dict]) -> None:
        inputs = {k: v.to(device) for k, v in collator(batch).items() if k in keep}
        with torch.inference_mode():
            model(**inputs)

    out = summary(timed(lambda i: run([rows[i]]), len(rows), device), len(rows))
    batches = [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]
    total = sum(timed(lambda i: run(batches[i]), len(batches), device))
    return out | {"throughput": round(len(rows) / total, 2) if total else None, "batch_size": batch_size}


def mergeable(model: nn.Module) -> bool:
    """Whether `model` carries a peft adapter that merges into its weights."""
    return hasattr(model, "merge_adapter") and any(hasattr(m, "merge") and hasattr(m, "merged")
                                                   for m in model.modules())


def served_both_ways(model: nn.Module, measure: Callable[[nn.Module], dict]) -> dict:
    """{"unmerged": ..., "merged": ...} for a mergeable adapter, else {"as_trained": ...}. Merged is
    how a merged adapter is served: a copy with the adapter folded into the weights and peft's
    layers removed (merge_and_unload); the model itself is left as it was."""
    if not mergeable(model):
        return {"as_trained": measure(model)}
    merged = any(getattr(m, "merged", False) for m in model.modules())
    if merged:  # `merge: true`: measured unmerged, then merged again as the cell left it
        model.unmerge_adapter()
    out = {"unmerged": measure(model)}
    if merged:
        model.merge_adapter()
    try:
        served = copy.deepcopy(model).merge_and_unload()
    except Exception:  # noqa: BLE001 - a base peft cannot copy or unload (quantized): merged in place instead
        served = None
    if served is None:
        model.merge_adapter()
        out["merged"] = measure(model)
        if not merged:
            model.unmerge_adapter()
    else:
        out["merged"] = measure(served.eval())
        del served
    return out


def shipped_bytes(model: nn.Module, trained: set[str]) -> dict:
    """Bytes of what `save_model` writes (the trained parameters), and of the merged model where an
    adapter merges (every parameter, as stored; tied parameters once)."""
    named = dict(model.named_parameters())
    files = sum(named[n].numel() * named[n].element_size() for n in trained if n in named)
    out = {"files": int(files)}
    if mergeable(model):  # merged: the base weights with the adapter folded in, and the trained head
        out["merged"] = int(sum(p.numel() * p.element_size() for n, p in named.items()
                                if (".default" not in n or ".modules_to_save.default." in n)
                                and ".original_module." not in n))
    return out


def generation_cost(model: nn.Module, task_type, tokenizer, features, train, seed: int) -> dict:
    """Latency of a whole generated answer at batch 1, the time to its first token, and tokens per
    second, on a seeded sample of rows (fewer than a forward pass's: each is a generation)."""
    device = next(model.parameters()).device
    rows = [features.select([i]) for i in sample(len(features), seed, SAMPLE // 4)]
    texts: dict[int, str] = {}

    def answer(i: int) -> None:
        texts[i] = task_type.generate(model, tokenizer, rows[i], train)[0]

    first = train.model_copy(update={"generation": train.generation.model_copy(update={"max_new_tokens": 1})})
    seconds = timed(answer, len(rows), device)
    to_first = timed(lambda i: task_type.generate(model, tokenizer, rows[i], first), len(rows), device)
    tokens = sum(len(tokenizer(texts[i], add_special_tokens=False)["input_ids"]) for i in texts)
    return summary(seconds, len(rows)) | {
        "first_token_ms": {"median": round(1000 * statistics.median(to_first), 3)},
        "tokens_per_second": round(tokens / sum(seconds), 2) if sum(seconds) else None}


def _cpu_attention() -> dict:
    """FLOP formulas for the fused CPU attention kernel, which torch's counter does not list (it
    lists the CUDA ones): the same counts as any scaled-dot-product attention."""
    from torch.utils import flop_counter

    def ready(formula):  # torch's formulas take tensors' shapes already: the counter must not wrap them again
        def counted(*args, **kwargs):
            return formula(*args, **kwargs)
        counted._get_raw = True
        return counted

    aten, mapping = torch.ops.aten, {}
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
        mapping[aten._scaled_dot_product_flash_attention_for_cpu] = ready(flop_counter.sdpa_flop)
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward"):
        mapping[aten._scaled_dot_product_flash_attention_for_cpu_backward] = ready(flop_counter.sdpa_backward_flop)
    return mapping


def step_flops(model: nn.Module, batch: dict, train: bool = True) -> int:
    """FLOPs of one forward (and, with `train`, backward) pass of `model` on `batch`. Gradients it
    leaves are cleared; nothing else changes."""
    device = next(model.parameters()).device
    inputs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    counter = FlopCounterMode(display=False, custom_mapping=_cpu_attention())
    was_training = model.training
    # a forward pass counts with no parameter wanting a gradient: the counter's module tracker hooks
    # the gradient of every input that wants one, and a parameter passed as a module's input (DeBERTa's
    # relative position embeddings) has no gradient function under no_grad, which fails its hook
    frozen = [] if train else [p for p in model.parameters() if p.requires_grad]
    model.train(train)
    try:
        for param in frozen:
            param.requires_grad_(False)
        with counter:
            if train:
                out = model(**inputs)
                loss = out.loss if getattr(out, "loss", None) is not None else out[0]
                loss.backward()
            else:
                with torch.no_grad():
                    model(**inputs)
    finally:
        for param in frozen:
            param.requires_grad_(True)
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return int(counter.get_total_flops())


def training_flops(model: nn.Module, batches: list[dict], steps: int, accumulation: int) -> int:
    """FLOPs of training: the mean of counted training batches, times the micro-batches it ran."""
    counted = [step_flops(model, b) for b in batches[:COUNTED_BATCHES]]
    return int(np.mean(counted) * steps * accumulation) if counted else 0


def first_batches(loader) -> list[dict]:
    """The first training batches a loader gives (what training_flops counts)."""
    import itertools

    return list(itertools.islice(iter(loader), COUNTED_BATCHES))


def evaluation_flops(model: nn.Module, features, collator, batch_size: int) -> int:
    """FLOPs of one forward pass over `features`: one batch counted, times the batches."""
    keep = model_inputs(model)
    rows = [{k: v for k, v in features[i].items() if k in keep} for i in range(min(batch_size, len(features)))]
    if not rows:
        return 0
    batch = {k: v for k, v in collator(rows).items() if k in keep}
    return int(step_flops(model, batch, train=False) * len(features) / len(rows))


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    import os
    import platform

    return f"cpu ({platform.machine()}, {os.cpu_count()} cores)"


def measured(call: Callable[[], dict]) -> dict:
    """`call()`, or where measuring fails, {"measure_error": why}: a measurement never costs the result."""
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - any failure of a measurement is recorded, not raised
        from harness.base.errors import first_line

        return {"measure_error": f"{type(exc).__name__}: {first_line(exc)}"}


def serving_of(model: nn.Module, task, tokenizer, spec) -> dict:
    """A trained task model's serving cost where it is now: its device, and the latency (and
    throughput, or generation's figures) as trained and, where the method merges, merged."""
    cfg, task_type, features = spec.train, task.task_type, task.eval_set
    model.eval()
    if task_type.generates:
        def measure(served):
            return generation_cost(served, task_type, tokenizer, features, cfg, spec.seed)
    else:
        collator = task_type.collator(tokenizer)

        def measure(served):
            return forward_cost(served, features, collator, cfg.eval_batch_size, spec.seed)
    device = next(model.parameters()).device
    return {"device": device_name(device)} | served_both_ways(model, measure)


def measure_trained(model: nn.Module, strategy, task, tokenizer, spec) -> dict:
    """A trained task model's serving cost, shipped bytes and evaluation FLOPs (key `eval_flops`;
    a generation's forward passes depend on what it generates: not counted)."""
    eval_flops = None if task.task_type.generates else evaluation_flops(
        model, task.eval_set, task.task_type.collator(tokenizer), spec.train.eval_batch_size)
    return {"serving": serving_of(model, task, tokenizer, spec),
            "shipped_bytes": shipped_bytes(model, strategy.trained(model)), "eval_flops": eval_flops}


def measure_prompted(model: nn.Module, strategy, task, tokenizer, spec) -> dict:
    """A prompting method's serving cost (its prediction of one row, demonstrations included) and
    evaluation FLOPs (those of the timed rows, scaled to the eval rows); it ships nothing."""
    picked = sample(len(task.eval_rows), spec.seed, SAMPLE // 4)
    device = next(model.parameters()).device

    def predict(indices: list[int]) -> None:
        strategy.predict(model, tokenizer, task.task_type, task.eval_rows.select(indices), task.train_rows, spec.seed,
                         spec.train)

    seconds = timed(lambda i: predict([picked[i]]), len(picked), device)
    counter = FlopCounterMode(display=False, custom_mapping=_cpu_attention())
    with counter, torch.no_grad():
        predict(picked)
    return {"serving": {"device": device_name(device), "as_trained": summary(seconds, len(picked))},
            "shipped_bytes": {"files": 0},
            "eval_flops": int(counter.get_total_flops() * len(task.eval_rows) / max(len(picked), 1))}
