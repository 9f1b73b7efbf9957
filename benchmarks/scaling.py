"""One grid through the local executor and through Ray with N workers, on this machine's CPUs.

Runs benchmarks/scaling.yaml with `harness run` (local) and `harness run --executor ray
--workers N` into fresh stores, one after the other, and reports each command's wall time (Ray's
start included), the speedup, and that both stores hold the same cells with the same scores.

    python benchmarks/scaling.py [--workers 2] [--record]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.store.database import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record  # noqa: E402

HERE = Path(__file__).resolve().parent


def timed_run(store: Path, *extra: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness", "run", str(HERE / "scaling.yaml"), "--store", str(store), *extra],
                   check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--record", action="store_true", help="append the figures to benchmarks/results.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        local = timed_run(Path(tmp) / "local.sqlite")
        ray = timed_run(Path(tmp) / "ray.sqlite", "--executor", "ray", "--workers", str(args.workers))
        with Store(Path(tmp) / "local.sqlite") as a, Store(Path(tmp) / "ray.sqlite") as b:
            fa, fb = a.frame().set_index("id"), b.frame().set_index("id")
    cells = len(fa)
    same_cells = set(fa.index) == set(fb.index)
    differ = [i for i in fa.index if i in fb.index and fa.metrics[i] != fb.metrics[i]]
    largest = max((abs(fa.metrics[i][k] - fb.metrics[i][k]) for i in differ for k in fa.metrics[i]), default=0.0)
    cell_seconds = sum(c["wall_seconds"] for c in fa.cost)
    text = "\n".join([
        f"grid: {cells} cells (benchmarks/scaling.yaml), {cell_seconds:.1f} s of cells when run one by one",
        f"local executor:             {local:6.1f} s",
        f"Ray, {args.workers} workers (1 CPU each): {ray:6.1f} s (Ray's start included)",
        f"speedup: {local / ray:.2f}x",
        f"same cells: {same_cells}; cells whose metrics differ: {len(differ)} (largest difference {largest:.2f} points: "
        f"a worker runs torch on 1 thread, the local run on {torch_threads()}, so sums may round differently)",
    ])
    print(text)
    if args.record:
        record("scaling.py", text)


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
