"""What a run costs: phase timings, peak memory, parameter counts."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import psutil
import torch
from torch import nn

from harness.base.device import release


class PhaseTimer:
    """Wall time per named phase (load, preprocess, train, evaluate), and with a `meter`
    (harness.run.energy.Metered) energy per phase: what was drawn between phases is "other"'s."""

    def __init__(self, meter=None) -> None:
        self.seconds: dict[str, float] = {}
        self.meter = meter

    @contextmanager
    def __call__(self, phase: str):
        if self.meter is not None:
            self.meter.split("other")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start
            if self.meter is not None:
                self.meter.split(phase)


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
    total = sum(weights_in(p) for p in named.values())
    saved = sum(named[n].numel() * named[n].element_size() for n in trained)
    return {"trainable_params": trainable, "total_params": total,
            "trainable_share": round(trainable / total, 6) if total else 0.0,
            "saved_mb": round(saved / 2**20, 3)}


def weights_in(param: torch.Tensor) -> int:
    """The weights a parameter holds: its elements, or for a quantized one (bitsandbytes packs two
    4-bit weights per byte) the elements of the matrix it stands for."""
    state = getattr(param, "quant_state", None)
    return int(state.shape.numel()) if state is not None and hasattr(state, "shape") else param.numel()
