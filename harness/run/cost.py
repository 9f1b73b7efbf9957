"""What a run costs and where it ran: phase timings, peak memory, parameter counts, environment."""

from __future__ import annotations

import platform
import subprocess
import threading
import time
from contextlib import contextmanager
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psutil
import torch
from packaging.version import Version
from torch import nn

import harness
from harness.base.device import release

PACKAGES = ("torch", "transformers", "peft", "datasets", "accelerate", "tokenizers", "scikit-learn", "scipy", "numpy",
            "seqeval", "sacrebleu", "rouge-score")
# The versions the tests passed with (pip reads it with -c; see the README). It sits beside the
# package in a source checkout, which is how the README installs harness.
LOCK = Path(harness.__file__).resolve().parent.parent / "requirements.lock"


class PhaseTimer:
    """Wall time per named phase (load, preprocess, train, evaluate)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start


class PeakMemory:
    """Peak memory over a block: CUDA allocated memory on a GPU, else the process's resident set,
    sampled every few milliseconds (RSS includes what the process held before the block)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak_bytes = 0
        self.kind = "cuda_max_allocated" if torch.cuda.is_available() else "cpu_peak_rss"
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        if torch.cuda.is_available():
            release()  # what an earlier cell left is not this block's
            torch.cuda.reset_peak_memory_stats()
        else:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        process = psutil.Process()
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, process.memory_info().rss)
            self._stop.wait(self.interval)

    def __exit__(self, *exc: object) -> None:
        if torch.cuda.is_available():
            self.peak_bytes = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            self.peak_bytes = max(self.peak_bytes, psutil.Process().memory_info().rss)

    @property
    def megabytes(self) -> float:
        return round(self.peak_bytes / 2**20, 1)


def parameter_counts(model: nn.Module, trained: set[str] | None = None) -> dict[str, int | float]:
    """Trainable and total parameters, and what must be saved to reproduce the fine-tuned model:
    the trained parameters (the rest is the pretrained backbone, or rebuilt from the seed)."""
    named = dict(model.named_parameters())
    trained = trained if trained is not None else {n for n, p in named.items() if p.requires_grad}
    trainable = sum(named[n].numel() for n in trained)
    total = sum(p.numel() for p in named.values())
    saved = sum(named[n].numel() * named[n].element_size() for n in trained)
    return {"trainable_params": trainable, "total_params": total,
            "trainable_share": round(trainable / total, 6) if total else 0.0,
            "saved_mb": round(saved / 2**20, 3)}


@cache
def environment() -> dict[str, Any]:
    """Package versions, device and harness revision: recorded with every run."""
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    else:
        device = f"cpu ({platform.processor() or platform.machine()}, {psutil.cpu_count()} cores, {torch.get_num_threads()} threads)"
    return {
        "harness": harness.__version__,
        "results_version": harness.RESULTS_VERSION,
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
        "packages": packages,
    }


def lock_differences(lock: Path | None = None) -> list[str]:
    """'name installed (lock: locked)' for every installed package whose version is not the one
    the lock pins (a local build label such as torch's +cpu or +cu128 does not count); empty
    when there is no lock. Packages the lock names but this environment lacks are not counted."""
    lock = lock or LOCK
    if not lock.exists():
        return []
    differences = []
    for line in lock.read_text(encoding="utf-8").splitlines():
        name, _, pinned = line.split("#", 1)[0].strip().partition("==")
        if not pinned:
            continue
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue
        if Version(installed).public != Version(pinned).public:
            differences.append(f"{name} {installed} (lock: {pinned})")
    return differences


def _git_commit() -> str | None:
    root = Path(harness.__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
