"""Executors run the jobs of a plan and hand each record to the store: local (this process) or Ray."""

from __future__ import annotations

from pathlib import Path

from harness.joint import run_joint
from harness.runner import run_cell
from harness.spec import RunSpec
from harness.store import RunRecord
from harness.training import Progress


def run_job(specs: list[RunSpec], progress: Progress | None = None, artifacts: Path | None = None) -> list[RunRecord]:
    """The records of one job (see plan.jobs): one cell, or every cell of one joint model."""
    if specs[0].partners:
        return run_joint(specs, progress, artifacts)
    return [run_cell(specs[0], progress, artifacts)]
