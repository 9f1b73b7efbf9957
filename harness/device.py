"""The bottom floor: which device a cell trains on, in which precision, and how much memory it may use."""

from __future__ import annotations

import psutil
import torch

GiB = 2**30


def training_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def capacity(device: str) -> int:
    """Bytes a cell may use on `device`: the GPU's free memory, or the machine's available RAM."""
    if device.startswith("cuda"):
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    return int(psutil.virtual_memory().available)


def gib(n: float) -> str:
    """Bytes for people: GiB from a tenth of one, else MiB."""
    return f"{n / GiB:.1f} GiB" if n >= GiB / 10 else f"{n / 2**20:.0f} MiB"


def precision(setting: str) -> str:
    """The precision a cell trains in: `auto` is bf16 on a CUDA GPU that supports it, else fp32."""
    if setting == "auto":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    if setting in ("bf16", "fp16") and not torch.cuda.is_available():
        raise ValueError(f"train.precision {setting!r} needs a CUDA GPU; this machine has none (use auto or fp32)")
    return setting


def precision_args(setting: str) -> dict:
    """TrainingArguments for the precision: mixed-precision autocast, and TF32 matmuls on GPUs
    (Ampere and later) for what stays in fp32."""
    chosen = precision(setting)
    gpu = torch.cuda.is_available()
    return {"bf16": chosen == "bf16", "fp16": chosen == "fp16",
            "tf32": bool(gpu and torch.cuda.get_device_capability()[0] >= 8) or None}
