"""The GPU benchmark runs in its CPU smoke mode (tiny models, a few steps, two cells), so that the
script cannot rot before someone runs it on a GPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[1]


def test_gpu_benchmark_smoke():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--smoke"], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "matmul peak (measured)" in out
    rows = [line for line in out.splitlines() if line.startswith(("BERT-base-sized", "T5-small-sized"))]
    assert len(rows) >= 4 and all(len(row.split()) >= 7 for row in rows)
    assert "grid of 2 small cells: one at a time" in out and "packed by memory on Ray" in out
