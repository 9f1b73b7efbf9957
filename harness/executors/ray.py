"""Run the jobs of a plan as Ray tasks (a local Ray, or a cluster at `address`).

Each job (one cell, or the cells of one joint model) is a Ray task asking for the resources it
needs: CPUs, and on a cluster with GPUs a whole GPU for a large backbone or a share of one for a
small backbone, so that several small cells pack onto one device. The driver alone writes the
store, record by record as tasks finish. A task whose worker dies (node preempted, process
killed for memory) is retried up to `max_retries` times by Ray; a cell that raises is recorded as
failed with its error, as the local executor does. Ctrl-C cancels the tasks still running and
keeps every record already written; running the same command again resumes.

Workers run `harness.executors.run_job` and so need harness installed where they run (a local Ray
shares this environment; a cluster's workers need the same package, see Ray's runtime_env).
"""

from __future__ import annotations

import math
import os
import time

from rich.console import Console
from rich.progress import Progress

from harness.config.spec import RunSpec
from harness.executors import RayOptions
from harness.executors.local import Summary, claim, failure, grid_columns, keep, still_to_do
from harness.store.database import Store

# Environment a worker must see as the driver does (offline switches, caches, thread counts).
PASSED_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_EVALUATE_OFFLINE", "HF_HOME", "TRANSFORMERS_OFFLINE",
              "TOKENIZERS_PARALLELISM", "HARNESS_TRUST_CODE")

# Backbones with fewer parameters share a GPU: (parameters below, share of one GPU), when a cell
# has no memory estimate or the GPUs' memory is not known.
GPU_SHARES = ((50e6, 0.25), (200e6, 0.5))
HEADROOM = 1.25  # a cell asks for this many times its estimated peak (allocator fragmentation, workspaces)
SHARE_STEP = 1 / 8  # shares are whole eighths of a GPU


def memory_share(peak: int, device_memory: int, context: int = 0) -> float:
    """The share of one GPU a cell asks for from its peak memory estimate: with headroom, plus what
    its worker process holds before any tensor (`context`, measured on a worker), rounded up to an
    eighth, a whole GPU at most (a larger cell is refused by preflight, or runs alone)."""
    need = peak * HEADROOM + context
    return min(1.0, max(SHARE_STEP, math.ceil(need / device_memory / SHARE_STEP) * SHARE_STEP))


def out_of_memory(record) -> bool:
    error = (record.error or "").lower()
    return record.status == "failed" and ("out of memory" in error or "outofmemoryerror" in error)


def run_remote(specs: list[RunSpec], artifacts: str) -> list:
    """What a Ray worker runs: the job's records; a cell that raises gives a failed record."""
    import ray

    from harness.executors.pool import run_in_worker

    records = run_in_worker(specs, artifacts)
    node = ray.get_runtime_context().get_node_id()
    for record in records:  # which node ran it: a cluster's records say where they came from
        record.info["ray_node"] = node
    return records


def gpu_share(specs: list[RunSpec]) -> float:
    """The share of one GPU a job asks for, from its backbone's parameter count (meta device, no weights)."""
    from harness.config.registry import task_type_of
    from harness.run.backbones import resolve

    spec = specs[0]
    try:
        card = spec.task_card()
        task_type, strategy = task_type_of(card), spec.build_strategy()
        model = resolve(spec.model, spec.model_spec).build(*strategy.architecture(task_type))
    except Exception:
        return 1.0  # unknown size: a whole GPU
    params = sum(p.numel() for p in model.parameters())
    return next((share for limit, share in GPU_SHARES if params < limit), 1.0)


def reachable(address: str, seconds: float = 5.0) -> None:
    """Refuse, in one line and within `seconds`, a cluster address nothing answers at (Ray itself
    retries an unreachable head for minutes). 'auto' and 'local' are Ray's to find."""
    import socket

    from harness.base.errors import HarnessError

    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise HarnessError(f"--address {address!r}: expected host:port (or ray://host:port, or auto)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=seconds).close()
    except OSError as exc:
        raise HarnessError(f"--address {address}: nothing answers there ({exc.strerror or exc}); start the cluster "
                           f"with `ray start --head` or give its head's address") from None


def connect(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the Ray at `address`, or start a local one (with `num_cpus`), once per process."""
    try:
        import ray
    except ImportError:
        from harness.base.errors import HarnessError

        raise HarnessError("--executor ray needs Ray: pip install 'ray>=2.9'") from None
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    if address and not ray.is_initialized():
        reachable(address)
    if not ray.is_initialized():  # no address: a new local Ray, even where a cluster runs on this machine
        ray.init(address=address or "local", num_cpus=num_cpus if address is None else None, include_dashboard=False,
                 log_to_driver=False, configure_logging=False, runtime_env={"env_vars": env} if env else None)


def _target_here():
    """A worker's Target, with what its process holds on the GPU before any tensor (its context)."""
    from dataclasses import replace

    from harness.base.device import Target, held_before_tensors

    here = Target.here()
    return replace(here, context=held_before_tensors()) if here.kind == "cuda" else here


def cluster_target(gpus_per_cell: float | None = None):
    """Where the cluster's cells will train (harness.base.device.Target), asked of a worker given what a
    cell asks for: with GPUs in the cluster, a share of one (so the worker sees the one GPU a cell
    sees), else none. With fake GPU resources and no CUDA, that is the CPU, as the cells will find."""
    import ray

    gpus = ray.cluster_resources().get("GPU", 0)
    share = gpus_per_cell if gpus_per_cell is not None else (min(0.25, gpus) if gpus else 0)
    return ray.get(ray.remote(_target_here).options(num_cpus=0, num_gpus=share).remote())


def run_ray(jobs: list[list[RunSpec]], store: Store, console: Console, options: RayOptions = RayOptions(),
            estimates: dict[str, int] | None = None, work=None) -> Summary:
    """Run every cell of `jobs` (see plan.jobs, Plan.runnable) not already done as Ray tasks;
    records are written here, on the driver. On a cluster with GPUs a job asks for the share of one
    that its peak memory estimate (`estimates`, bytes by run id) and a worker's CUDA context
    (`options.gpu_context`) need of `options.gpu_memory` (bytes per GPU), so that small cells pack
    onto one device; a job that runs out of memory with less than a whole GPU is run again alone,
    once. `work` (specs, artifacts folder) -> [RunRecord] is what a task runs, run_remote by default."""
    connect(options.address, options.workers)
    import ray

    cluster_gpus = ray.cluster_resources().get("GPU", 0)
    remote = ray.remote(work or run_remote)
    artifacts = str(store.path.parent.resolve() / "runs")

    summary = Summary()
    todo = still_to_do(store, jobs, summary)
    start = time.perf_counter()
    pending: dict = {}
    with Progress(*grid_columns(), console=console, transient=True) as progress, store.keep_alive():
        grid = progress.add_task(f"grid on Ray ({ray.cluster_resources().get('CPU', 0):.0f} CPUs, "
                                 f"{cluster_gpus:.0f} GPUs)", total=sum(map(len, todo)))
        for job in todo:
            job = claim(store, job, summary, lambda n: progress.advance(grid, n))
            if not job:
                continue
            gpus = options.gpus_per_cell if options.gpus_per_cell is not None else (
                _share(job, estimates or {}, options.gpu_memory, options.gpu_context) if cluster_gpus else 0)
            ref = remote.options(num_cpus=options.cpus_per_cell, num_gpus=gpus, max_retries=options.max_retries,
                                 name=job[0].label).remote(job, artifacts)
            pending[ref] = (job, time.perf_counter(), gpus)
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    job, submitted, gpus = pending.pop(ref)
                    try:
                        records = ray.get(ref)
                    except Exception as exc:  # the worker died more than max_retries times
                        records = [failure(spec, _cause(exc, options.max_retries)) for spec in job]
                    if 0 < gpus < 1 and any(map(out_of_memory, records)):  # packed too tight: again, alone
                        again = remote.options(num_cpus=options.cpus_per_cell, num_gpus=1, max_retries=options.max_retries,
                                               name=job[0].label).remote(job, artifacts)
                        pending[again] = (job, time.perf_counter(), 1)
                        continue
                    for spec, record in zip(job, records):
                        seconds = record.cost.get("wall_seconds", time.perf_counter() - submitted)
                        keep(store, spec, record, seconds, summary, console)
                        progress.advance(grid)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            store.release([s.id for job, *_ in pending.values() for s in job])
            raise
    summary.seconds = time.perf_counter() - start
    return summary


def _share(job: list[RunSpec], estimates: dict[str, int], gpu_memory: int, context: int = 0) -> float:
    """A job's GPU share: from its cells' largest memory estimate when there is one and the GPUs'
    memory is known, else from its backbone's size (gpu_share)."""
    peaks = [estimates[s.id] for s in job if s.id in estimates]
    return memory_share(max(peaks), gpu_memory, context) if peaks and gpu_memory else gpu_share(job)


def _cause(exc: Exception, retries: int) -> Exception:
    """A one-line reason for a task Ray gave up on: for an error raised in the task, its last
    traceback line (the exception itself); for a dead worker, Ray's first line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    raised = isinstance(exc, __import__("ray").exceptions.RayTaskError) and lines
    reason = lines[-1] if raised else f"{type(exc).__name__}: {lines[0] if lines else ''}"
    return RuntimeError(f"Ray task failed after {retries} retries: {reason}")
