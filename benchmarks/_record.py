"""What every benchmark script shares: the machine's description and appending to results.md."""

from __future__ import annotations

import platform
import time
from pathlib import Path

import psutil
import torch

RESULTS = Path(__file__).resolve().parent / "results.md"


def machine() -> str:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU only"
    return (f"{platform.machine()}, {psutil.cpu_count()} cores, {round(psutil.virtual_memory().total / 2**30)} GiB, "
            f"{device}, torch {torch.__version__}")


def record(script: str, text: str) -> None:
    """Append a script's printed figures to benchmarks/results.md, with the date and the machine."""
    with RESULTS.open("a", encoding="utf-8") as f:
        f.write(f"\n## {script}, {time.strftime('%Y-%m-%d')}, {machine()}\n\n```\n{text}\n```\n")
