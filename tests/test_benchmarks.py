"""The GPU benchmark runs in its CPU smoke mode (tiny models, a few steps, two cells), so that the
script cannot rot before someone runs it on a GPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.system  # the whole script, Ray included, on tiny models: .ci/run runs it
def test_gpu_benchmark_smoke():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--smoke"], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "matmul peak (measured)" in out
    rows = [line for line in out.splitlines() if line.startswith(("BERT-base-sized", "T5-small-sized"))]
    trained = {row for row in rows if "%" in row}  # training: tokens/s, MFU, peak, estimate, ratio
    assert len(trained) == 4 and all(len(row.split()) >= 7 for row in trained)
    served = {" ".join(row.split()[1:-3]): [float(v) for v in row.split()[-3:]] for row in rows if "%" not in row}
    assert set(served) == {"full as trained", "lora unmerged", "lora merged"}  # median ms, p95 ms, rows/s
    assert all(0 < median <= p95 and rows_per_second > 0 for median, p95, rows_per_second in served.values())
    assert "grid of 2 small cells: one at a time" in out and "packed by memory on Ray" in out
