"""Where a run ran: package versions, device, harness revision, and drift from requirements.lock."""

from __future__ import annotations

import platform
import subprocess
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psutil
import torch
from packaging.version import Version

import harness

PACKAGES = ("torch", "transformers", "peft", "datasets", "accelerate", "tokenizers", "scikit-learn", "scipy", "numpy",
            "seqeval", "sacrebleu", "rouge-score")
# requirements.lock: the versions the tests passed with (pip reads it with -c; see the README). It
# sits beside the package in a source checkout, which is how the README installs harness.
REQUIREMENTS = Path(harness.__file__).resolve().parent.parent / "requirements.lock"


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


def requirements_drift(pinned_file: Path | None = None) -> list[str]:
    """'name installed (lock: locked)' for every installed package whose version is not the one
    requirements.lock pins (a local build label such as torch's +cpu or +cu128 does not count); empty
    when there is no such file. Packages it names but this environment lacks are not counted."""
    pinned_file = pinned_file or REQUIREMENTS
    if not pinned_file.exists():
        return []
    differences = []
    for line in pinned_file.read_text(encoding="utf-8").splitlines():
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
