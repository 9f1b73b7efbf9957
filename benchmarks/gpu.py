"""What a GPU gives harness's cells, measured on the device this finds, with nothing but the repository.

1. The device's dense matmul peak, measured here (bf16 on a GPU, fp32 on a CPU): what utilisation is
   counted against.
2. On a GPU, the memory the CUDA context and allocator hold before any tensor (what a memory budget
   must leave free beside a cell's estimate).
3. BERT-base-sized and T5-small-sized backbones built from configs (random weights, nothing to
   download), full fine-tuning and LoRA r=8, at sequence length 128 in bf16 (fp32 on a CPU): training
   tokens per second, model FLOP utilisation (FLOPs of one step counted by torch's FlopCounterMode,
   against the measured peak), and the peak memory of a step (the allocator's, via
   harness.testing.measured_peak) against harness's estimate (harness.plan.estimate.cell_memory).
4. Serving: the BERT-base-sized classifier fine-tuned fully and with LoRA r=8 (its adapter
   unmerged and merged), timed as every cell's serving is (harness.run.serving: latency per example
   at batch 1, median and 95th percentile over 32 rows after 2 warm-up calls, and throughput at
   batch 64), on rows of 128 tokens in the cell's precision.
5. Grid throughput: 16 small cells (a tiny BERT on a generated task) one after another in this
   process, then packed onto the GPU by their memory estimates with --executor ray.

    python benchmarks/gpu.py            # measures, prints a table, appends it to benchmarks/results.md
    python benchmarks/gpu.py --smoke    # a few steps of tiny models, 2 cells: the tests run it (writes nothing)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import machine, record  # noqa: E402

BERT_BASE = {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "intermediate_size": 3072, "vocab_size": 30522}
T5_SMALL = {"hidden_size": 512, "num_layers": 6, "num_heads": 8, "intermediate_size": 2048, "vocab_size": 32128,
            "d_kv": 64}
SMOKE_SIZE = {"hidden_size": 64, "num_layers": 1, "num_heads": 2, "intermediate_size": 128, "vocab_size": 500}


def matmul_peak(device: str, dtype: torch.dtype, n: int, repeats: int) -> float:
    """FLOP/s of an n x n x n matmul, best of `repeats` timed runs of 10."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = 0.0
    for _ in range(repeats + 1):  # the first warms up
        sync(device)
        start = time.perf_counter()
        for _ in range(10):
            a @ b
        sync(device)
        best = max(best, 10 * 2 * n**3 / (time.perf_counter() - start))
    return best


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def cuda_context() -> int | None:
    """Bytes the device holds once CUDA is initialised and before any tensor: context, kernels'
    modules and what other processes hold (mem_get_info sees the whole device)."""
    if not torch.cuda.is_available():
        return None
    torch.cuda.init()
    free, total = torch.cuda.mem_get_info()
    return total - free - torch.cuda.memory_reserved()


def parts(family: str, size: dict, task: str, strategy: str, train: dict):
    from harness.config.registry import STRATEGIES, TaskCatalogue, task_type_of
    from harness.config.schemas import ModelSpec, TrainConfig
    from harness.run.backbones import Backbone

    card = TaskCatalogue().get(task)
    spec = ModelSpec(source=f"tiny:{family}", size=size)
    backbone = Backbone(family, spec, "tiny", family, f"bench-{family}")  # sizes beyond the suite keys (T5's d_kv)
    args = {"r": 8, "lora_alpha": 16} if strategy == "lora" else {}
    return (backbone, task_type_of(card), STRATEGIES.get(strategy).from_suite(args, "bench", strategy),
            TrainConfig(**train))


def train_speed(backbone, task_type, strategy, train, device: str, precision: str, steps: int) -> tuple[float, float]:
    """(training tokens per second, FLOP/s) over `steps` optimizer steps at the longest batch; a step's
    FLOPs are counted once by FlopCounterMode (forward and backward matmuls, attention included)."""
    from torch.utils.flop_counter import FlopCounterMode

    from harness.testing import longest_inputs, trainable_model

    model, params = trainable_model(backbone, task_type, strategy, device)
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    batch = longest_inputs(model, task_type, train, train.batch_size, device)
    tokens = sum(t.numel() for n, t in batch.items() if n in ("input_ids", "labels") and t.dim() > 1)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    model.train()

    def step() -> None:
        with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    with FlopCounterMode(display=False) as counter:
        step()
    step()  # warm
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    seconds = time.perf_counter() - start
    return tokens * steps / seconds, counter.get_total_flops() * steps / seconds


def serving(backbone, task_type, strategy, device: str, precision: str, length: int) -> dict:
    """The serving figures of a cell's model as harness.run.serving measures them (both ways for a
    merging adapter), on 32 rows of `length` tokens."""
    import datasets

    from harness.base.device import autocast
    from harness.run.serving import forward_cost, served_both_ways
    from harness.testing import trainable_model

    model, _ = trainable_model(backbone, task_type, strategy, device)
    model.eval()
    rows = datasets.Dataset.from_dict({"input_ids": [[5 + i % 400 for i in range(length)]] * 32,  # any vocabulary
                                       "attention_mask": [[1] * length] * 32})

    def collate(batch: list[dict]) -> dict:
        return {k: torch.tensor([row[k] for row in batch]) for k in ("input_ids", "attention_mask")}

    with autocast({"device": device, "precision": precision}):
        return served_both_ways(model, lambda served: forward_cost(served, rows, collate, 64, seed=0))


def grid(cells: int, packed: bool, smoke: bool) -> float:
    """Seconds for `cells` small cells, one after another here, or packed on Ray by their estimates."""
    from rich.console import Console

    from harness.base.device import Target, training_device
    from harness.config.suite import load_suite
    from harness.executors.local import run_local
    from harness.plan.plan import make_plan
    from harness.store.database import Store
    from harness.testing import write_suite

    folder = Path(tempfile.mkdtemp(prefix="harness-gpu-bench-"))
    seeds = list(range(cells))
    train = {"epochs": 1, "batch_size": 32, "max_length": 48, **({"max_train_samples": 64} if smoke else {})}
    loaded = load_suite(write_suite(folder, seeds=seeds, train=train))
    with Store(folder / "store.sqlite") as store:
        from harness.sweep.grid import grid as grid_of

        plan = make_plan(loaded, grid_of(loaded, store).cells, store, None, training_device())
        start = time.perf_counter()
        if not packed:
            run_local(plan.runnable(), store, Console(quiet=True))
        else:
            import ray

            from harness.executors import RayOptions
            from harness.executors.ray import run_ray

            if not ray.is_initialized():
                ray.init(address="local", include_dashboard=False, log_to_driver=False, configure_logging=False,
                         **({"num_gpus": 1} if not torch.cuda.is_available() else {}))
            estimates = {c.spec.id: c.memory.peak for c in plan.cells if c.memory and not c.memory.error}
            memory = Target.here().memory or 80 * 2**30  # fake GPUs (smoke on a CPU): any size packs
            run_ray(plan.runnable(), store, Console(quiet=True), RayOptions(cpus_per_cell=0.5, gpu_memory=memory),
                    estimates)
        seconds = time.perf_counter() - start
        done = len(store.done())
    if done != cells:
        raise SystemExit(f"grid: {done} of {cells} cells done")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few steps of tiny models; writes nothing")
    args = parser.parse_args()
    from harness.base.device import Target, gib
    from harness.plan.estimate import EstimateOf, cell_memory
    from harness.testing import measured_peak

    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = Target.here().compute("auto")["precision"] if device == "cuda" else "fp32"
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    peak = matmul_peak(device, dtype, 256 if args.smoke else (8192 if device == "cuda" else 1024), 1 if args.smoke else 5)
    lines = [f"device: {machine()}", f"dense {precision} matmul peak (measured): {peak / 1e12:.2f} TFLOP/s"]
    if (context := cuda_context()) is not None:
        lines.append(f"held before any tensor (CUDA context, other processes): {gib(context)}")
    lines.append(f"{'model':22} {'strategy':8} {'tokens/s':>10} {'MFU':>6} {'peak':>10} {'estimate':>10} {'ratio':>6}")
    steps, seq, batch = (2, 16, 2) if args.smoke else (20, 128, 32)
    for name, family, size, task, extra in (
        ("BERT-base-sized", "bert", SMOKE_SIZE if args.smoke else BERT_BASE, "gen_sentiment", {}),
        ("T5-small-sized", "t5", SMOKE_SIZE if args.smoke else T5_SMALL, "gen_headline", {"max_target_length": 32}),
    ):
        for strategy_name in ("full", "lora"):
            settings = {"batch_size": batch, "eval_batch_size": batch, "max_length": seq, "precision": "auto", **extra}
            backbone, task_type, strategy, train = parts(family, size, task, strategy_name, settings)
            speed, achieved = train_speed(backbone, task_type, strategy, train, device, precision, steps)
            utilisation = achieved / peak
            estimate = cell_memory(EstimateOf(backbone, task_type, strategy, train, device, precision=precision)).peak
            real = measured_peak(backbone, task_type, strategy, train, device)
            lines.append(f"{name:22} {strategy_name:8} {speed:>10.0f} {utilisation:>6.1%} {gib(real):>10} "
                         f"{gib(estimate):>10} {estimate / real:>6.2f}")
            print(lines[-1], flush=True)
    lines.append(f"{'serving (batch 1)':31} {'median ms':>10} {'p95 ms':>8} {'rows/s @64':>11}")
    size = SMOKE_SIZE if args.smoke else BERT_BASE
    for strategy_name in ("full", "lora"):
        backbone, task_type, strategy, _ = parts("bert", size, "gen_sentiment", strategy_name, {})
        for way, figures in serving(backbone, task_type, strategy, device, precision, seq).items():
            latency = figures["latency_ms"]
            lines.append(f"{'BERT-base-sized ' + strategy_name + ' ' + way.replace('_', ' '):31} "
                         f"{latency['median']:>10.2f} {latency['p95']:>8.2f} {figures['throughput']:>11.0f}")
            print(lines[-1], flush=True)
    cells = 2 if args.smoke else 16
    one_by_one, packed = grid(cells, False, args.smoke), grid(cells, True, args.smoke)
    lines.append(f"grid of {cells} small cells: one at a time {one_by_one:.1f} s, packed by memory on Ray "
                 f"{packed:.1f} s ({one_by_one / packed:.2f}x)")
    text = "\n".join(lines)
    print(text)
    if not args.smoke:
        record("gpu.py", text)


if __name__ == "__main__":
    main()
