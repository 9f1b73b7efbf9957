"""Executors run the jobs of a plan and hand each record to the store: local (this process) or Ray."""

from __future__ import annotations

from pathlib import Path

from harness.base.device import Target, describe, release
from harness.config.spec import RunSpec
from harness.run.cell import run_cell
from harness.run.joint import run_joint
from harness.run.training import Progress
from harness.store.database import RunRecord


def run_job(specs: list[RunSpec], progress: Progress | None = None, artifacts: Path | None = None) -> list[RunRecord]:
    """The records of one job (see plan.jobs): one cell, or every cell of one joint model. A cell
    planned for other hardware than this process has (its compute is in its run id) is not run."""
    here = Target.here()
    for spec in specs:
        if (actual := here.compute(spec.train.precision)) != spec.compute:
            raise RuntimeError(f"planned to train on {describe(spec.compute)}, but this process would train on "
                               f"{describe(actual)}: plan and run where the cells train (with --executor ray the "
                               f"driver plans for the cluster's workers)")
    try:
        records = run_joint(specs, progress, artifacts) if specs[0].partners else [run_cell(specs[0], progress, artifacts)]
    finally:
        release()  # the finished (or failed) cell's models and tensors, before the next cell
    for record in records:
        record.info["compute"] = specs[0].compute
    return records


def execute(executor: str, jobs: list[list[RunSpec]], store, console, **ray_options):
    """Run `jobs` with the `executor` named ("local" or "ray", which takes `ray_options`); its Summary."""
    if executor == "ray":
        from harness.executors.ray import run_ray

        return run_ray(jobs, store, console, **ray_options)
    from harness.executors.local import run_local

    return run_local(jobs, store, console)
