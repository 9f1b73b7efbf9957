"""How much of a short `harness run` is not training or evaluation.

Runs benchmarks/overhead.yaml through the real command in a fresh store, then splits the
command's wall time into: training + evaluation (Trainer.train and predict), the rest of each cell
(data loading, tokenizer/model build, preprocessing, strategy, scoring, the store write), and the
process itself (imports, suite loading, planning, the leaderboard). Prints the figures; with
--record, appends them to benchmarks/results.md with the machine named.

    python benchmarks/overhead.py [--record]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.store.database import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record  # noqa: E402

HERE = Path(__file__).resolve().parent


def measure() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        store_path = Path(tmp) / "bench.sqlite"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "harness", "run", str(HERE / "overhead.yaml"), "--store", str(store_path)],
                       check=True, capture_output=True)
        command = time.perf_counter() - start
        with Store(store_path) as store:
            frame = store.frame()
    cells = len(frame)
    seconds = frame.cost.map(lambda c: c["seconds"])
    train_eval = sum(s["train"] + s["evaluate"] for s in seconds)
    cell_wall = sum(frame.cost.map(lambda c: c["wall_seconds"]))
    return {
        "cells": cells,
        "command_s": command,
        "train_eval_s": train_eval,
        "in_cell_other_s": cell_wall - train_eval,
        "process_s": command - cell_wall,
        "load_s": sum(s["load"] for s in seconds),
        "preprocess_s": sum(s["preprocess"] for s in seconds),
    }


def report(m: dict) -> str:
    other = m["command_s"] - m["train_eval_s"]
    lines = [
        f"cells: {m['cells']}, `harness run` wall time: {m['command_s']:.1f} s",
        f"training + evaluation: {m['train_eval_s']:.1f} s ({100 * m['train_eval_s'] / m['command_s']:.0f}%)",
        f"not training or evaluation: {other:.1f} s ({100 * other / m['command_s']:.0f}%), of which",
        f"  inside cells: {m['in_cell_other_s']:.1f} s ({m['in_cell_other_s'] / m['cells']:.2f} s per cell; "
        f"load {m['load_s']:.2f} s, preprocess {m['preprocess_s']:.2f} s in all)",
        f"  process start, suite loading, planning, leaderboard: {m['process_s']:.1f} s",
        f"share of a cell's own time that is not training or evaluation: "
        f"{100 * m['in_cell_other_s'] / (m['in_cell_other_s'] + m['train_eval_s']):.1f}%",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="append the figures to benchmarks/results.md")
    args = parser.parse_args()
    text = report(measure())
    print(text)
    if args.record:
        record("overhead.py", text)


if __name__ == "__main__":
    main()
