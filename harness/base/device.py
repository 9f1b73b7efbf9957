"""The bottom floor: which device a cell trains on, in which precision, and how much memory it may use."""

from __future__ import annotations

import contextlib
import gc
import re
from dataclasses import dataclass, field

import psutil
import torch

from harness.base.errors import HarnessError

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


@dataclass(frozen=True)
class Target:
    """Where cells will train: the device kind, how many devices one cell uses (Trainer spreads a
    cell over every GPU it sees), and the precision `auto` means there."""

    kind: str = "cpu"
    devices: int = 1
    auto: str = "fp32"
    memory: int = field(default=0, compare=False)  # bytes of one device (GPUs only): what packing divides
    # bytes a process holds on its device before any tensor (CUDA context, kernels): measured on a Ray
    # worker when packing asks (executors.ray.cluster_target), as each packed cell's process holds one
    context: int = field(default=0, compare=False)

    @classmethod
    def here(cls) -> Target:
        """This process's: bf16 only on GPUs that compute in it natively (compute capability 8 and
        later; older GPUs emulate it slowly, so auto is fp16 there, with Trainer's loss scaler)."""
        if not torch.cuda.is_available():
            return cls()
        native = torch.cuda.get_device_capability()[0] >= 8
        total = torch.cuda.get_device_properties(0).total_memory
        return cls("cuda", torch.cuda.device_count(), "bf16" if native else "fp16", total)

    @classmethod
    def of(cls, compute: dict) -> Target:
        """The target a stored cell's compute (of a cell with precision auto) was trained on."""
        return cls(compute.get("device", "cpu"), int(compute.get("devices", 1)), compute.get("precision", "fp32"))

    def compute(self, setting: str) -> dict:
        """What a cell with train.precision `setting` trains in here: part of its run id (see
        RunSpec.identity) and of its record. Never raises: a CPU asked for bf16 is planned as such,
        and refused by preflight (see `impossible`)."""
        return {"device": self.kind, "precision": self.auto if setting == "auto" else setting,
                "devices": self.devices}


def held_before_tensors() -> int:
    """Bytes of the first GPU that this process's tensors do not account for, measured now: once
    CUDA is initialised, its context and kernel modules (and what other processes hold there)."""
    torch.cuda.init()
    free, total = torch.cuda.mem_get_info()
    return max(total - free - torch.cuda.memory_reserved(), 0)


def parse_target(text: str) -> Target:
    """`--on` as a user writes it: cpu, cuda, cuda:fp16 (what auto means there), cuda:bf16x4 (4 devices a cell)."""
    found = re.fullmatch(r"(cpu|cuda)(?::(fp32|bf16|fp16))?(?:x([1-9][0-9]*))?", text.strip())
    if not found or (found[1] == "cpu" and found[2] not in (None, "fp32")):
        raise HarnessError(f"--on {text!r}: expected cpu, cuda, cuda:bf16, cuda:fp16 or cuda:fp32, with xN for N "
                           f"devices a cell (cuda:bf16x4)")
    kind, auto, devices = found[1], found[2] or ("bf16" if found[1] == "cuda" else "fp32"), int(found[3] or 1)
    return Target(kind, devices, auto)


CPU_COMPUTE = Target().compute("auto")  # what every run was before the compute was recorded: not hashed


def describe(compute: dict) -> str:
    """'cuda in bf16', 'cpu in fp32', 'cuda in bf16 on 4 devices'."""
    devices = compute.get("devices", 1)
    return f"{compute['device']} in {compute['precision']}" + (f" on {devices} devices" if devices > 1 else "")


def impossible(compute: dict) -> str | None:
    """Why a cell cannot train in `compute` (half precision without a GPU), or None."""
    if compute["device"] == "cpu" and compute["precision"] in ("bf16", "fp16"):
        return f"train.precision {compute['precision']!r} needs a CUDA GPU; the cells train on the CPU (use auto or fp32)"
    return None


def precision(setting: str) -> str:
    """The precision a cell trains in on this machine (see Target.here)."""
    chosen = Target.here().compute(setting)
    if problem := impossible(chosen):
        raise ValueError(problem)
    return chosen["precision"]


def precision_args(setting: str) -> dict:
    """TrainingArguments for the precision: mixed-precision autocast, and TF32 matmuls on GPUs
    (Ampere and later) for what stays in fp32."""
    chosen = precision(setting)
    gpu = torch.cuda.is_available()
    return {"bf16": chosen == "bf16", "fp16": chosen == "fp16",
            "tf32": bool(gpu and torch.cuda.get_device_capability()[0] >= 8) or None}


def autocast(compute: dict):
    """Mixed-precision autocast for a cell's `compute` (bf16 / fp16 on a GPU), else a no-op: what
    predictions outside Trainer (zero-shot, in-context) run under, as Trainer's evaluation does."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(compute["precision"])
    enabled = compute["device"] == "cuda" and dtype is not None and torch.cuda.is_available()
    return torch.autocast("cuda", dtype=dtype, enabled=enabled) if enabled else contextlib.nullcontext()


def release() -> None:
    """Free what a finished cell left: unreachable objects (which may hold GPU tensors), then the
    CUDA allocator's cached blocks, so the next cell's memory and its recorded peak are its own.

    What survives is the process's own (imported modules, caches) and is frozen out of later
    collections: a full collection walked the ~550,000 objects torch, transformers and peft import,
    0.27 s each time on 2 CPU cores, and Python collects on its own during training too. (A frozen
    object that later becomes cyclic garbage is not collected: nothing alive between cells is dropped
    later but caches, which refcounting frees.)"""
    gc.collect()
    gc.freeze()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
