"""Executors run the jobs of a plan and hand each record to the store: local (this process) or Ray."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from harness.base.device import Target, describe, release
from harness.base.errors import HarnessError
from harness.config.spec import RunSpec

if TYPE_CHECKING:  # what runs a cell is imported where one runs, not where an executor starts (see pool.start_pool)
    from harness.executors.pool import Workers
    from harness.run.training import Progress
    from harness.store.database import RunRecord


def run_job(specs: list[RunSpec], progress: Progress | None = None, artifacts: Path | None = None) -> list[RunRecord]:
    """The records of one job (see plan.jobs): one cell, or every cell of one joint model. A cell
    planned for other hardware than this process has (its compute is in its run id) is not run."""
    from harness.run.cell import run_cells

    here = Target.here()
    for spec in specs:
        if (actual := here.compute(spec.train.precision)) != spec.compute:
            raise RuntimeError(f"planned to train on {describe(spec.compute)}, but this process would train on "
                               f"{describe(actual)}: plan and run where the cells train (with --executor ray the "
                               f"driver plans for the cluster's workers)")
    try:
        records = run_cells(specs, progress, artifacts)
    finally:
        release()  # the finished (or failed) cell's models and tensors, before the next cell
    for record in records:
        record.info["compute"] = specs[0].compute
    return records


@dataclass(frozen=True)
class RayOptions:
    """How cells run on Ray (--executor ray): the cluster, Ray's retries, and what each cell asks for.
    `gpu_memory` and `gpu_context` (bytes) are the cluster's, found by Executor.start."""

    address: str | None = None  # a cluster's; None starts a local Ray with `workers` CPUs
    workers: int | None = None
    max_retries: int = 2
    gpus_per_cell: float | None = None  # None: from each cell's memory estimate (small cells pack)
    cpus_per_cell: float = 1.0
    gpu_memory: int = 0
    gpu_context: int = 0


@dataclass(frozen=True)
class Executor:
    """Where a plan's jobs run: this process, or Ray with `ray`'s options. `target` is where the cells
    will train when that is not this process (the cluster's workers): plans are made for it."""

    ray: RayOptions | None = None
    target: Target | None = None
    workers: int = 1  # without Ray: cells at once, each in a worker process (1: one after another, here)
    pool: Workers | None = None  # those worker processes, started with the executor

    @classmethod
    def start(cls, ray: RayOptions | None = None, workers: int = 1) -> Executor:
        """The executor, connected: with Ray, joined (or started) and asked where its cells will train;
        with local workers, their processes started (they import what a cell needs meanwhile)."""
        if ray is None and workers > 1:
            from harness.executors.pool import cores, start_pool

            if workers > cores():
                raise HarnessError(f"--workers {workers}: this machine has {cores()} CPU cores, and local workers "
                                   f"are at most one per core (with --executor ray, --workers sets the local Ray's CPUs)")

            return cls(workers=workers, pool=start_pool(workers))
        if ray is None:
            return cls()
        from harness.executors.ray import cluster_target, connect

        connect(ray.address, ray.workers)
        target = cluster_target(ray.gpus_per_cell)
        return cls(replace(ray, gpu_memory=target.memory or 0, gpu_context=target.context or 0), target)

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.stop()

    @property
    def local(self) -> bool:
        return self.ray is None

    def describe(self) -> str:
        """'' for this process; ' in N worker processes (...)'; ' on Ray' or ' on Ray at ADDRESS'."""
        if self.ray is None and self.workers > 1:
            from harness.executors.pool import describe

            return describe(self.workers)
        if self.ray is None:
            return ""
        return f" on Ray{f' at {self.ray.address}' if self.ray.address else ''}"

    def run(self, jobs: list[list[RunSpec]], store, console, estimates: dict[str, int] | None = None):
        """Run `jobs` (estimates: peak bytes by run id, for packing cells onto GPUs); their Summary."""
        if self.ray is not None:
            from harness.executors.ray import run_ray

            return run_ray(jobs, store, console, self.ray, estimates)
        if self.workers > 1:
            from harness.executors.pool import run_pool

            return run_pool(jobs, store, console, self.workers, pool=self.pool)
        from harness.executors.local import run_local

        return run_local(jobs, store, console)
