"""Run cells several at a time on this machine, each in a worker process (`harness run --workers N`).

For backbones too small to keep every core busy in one process (a 22M-parameter encoder on a CPU
gains 1.4x from its second thread; a tiny decoder nothing), N cells at once, each with 1/N of the
torch threads, finish a grid sooner: the quickstart's 40 cells (as they were before #29) took
203.8 s in two workers on 2 CPU cores against 259.7 s in one process. Latency and energy measured
while other cells run include their contention (`harness measure` times kept runs alone). Nothing
else changes: each worker runs `harness.executors.run_job`, the cell seeds itself, and this process
alone writes the store, record by record as jobs finish, as with Ray. The workers fork from a
server process that imports what a cell runs once (harness.executors.warm), started with the
executor so that it imports while this process plans; each worker takes the environment of the
command that started it.

A cell's threads are recorded with it (its environment's `device` names them): on a CPU, floating-point sums
split over another number of threads round differently, and a chaotic run (a random tiny backbone
at a large learning rate) can end elsewhere; the run id is the same, as for another CPU.

A cell that raises is recorded as failed and the grid goes on. A worker that dies (killed, or out
of memory) stops the grid with one line: the records already written stay, the unfinished cells'
claims are given back, and running the same command again resumes. Ctrl-C stops the workers and
keeps every record already written.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from harness.base.errors import HarnessError, literal
from harness.config.spec import RunSpec
from harness.executors.local import Summary, claim, failure, grid_columns, keep, still_to_do
from harness.store.database import Store


def cores() -> int:
    """The CPU cores this process may run on."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_each(workers: int) -> int:
    """The torch threads each of `workers` processes gets: this process's, shared out (at least 1)."""
    import torch

    return max(1, torch.get_num_threads() // workers)


def _start_worker(threads: int, environ: dict[str, str]) -> None:
    """A worker's set-up: the environment of the command that started it (a worker forks from a server
    that may be older: the consent to run a suite's code travels in it), Ctrl-C left to the parent (it
    stops the workers), and its share of the threads. Progress bars in a worker lock with a thread
    lock: tqdm's default is a multiprocessing lock, a named semaphore that a killed worker leaves
    behind (the resource tracker then warns of it at exit)."""
    import os
    import threading

    import torch
    from tqdm import tqdm

    from harness.base.noise import quiet

    os.environ.clear()
    os.environ.update(environ)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    tqdm.set_lock(threading.RLock())
    quiet()


def _ready() -> None:
    """A worker's first task: import what a cell runs, before any cell is sent (forked workers have)."""
    import harness.executors.warm  # noqa: F401


def _context():
    """Workers fork from a server process that imported what a cell runs once (no thread and no
    computation of this process is copied into them); spawned, each imports it, where there is no fork."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["harness.executors.warm"])
    return context


class Workers(ProcessPoolExecutor):
    """Worker processes with their share of the threads, started in the background: starting one
    waits for the server it forks from to import what a cell runs (about 6 s), which this process
    spends importing and planning instead."""

    def __init__(self, workers: int) -> None:
        import os
        import threading

        super().__init__(workers, mp_context=_context(), initializer=_start_worker,
                         initargs=(threads_each(workers), dict(os.environ)))
        self.starting = threading.Thread(target=self._start, args=(workers,), name="harness-workers-start",
                                         daemon=True)
        self.starting.start()

    def _start(self, workers: int) -> None:
        for _ in range(workers):
            try:
                self.submit(_ready)
            except RuntimeError:  # shut down (or broken) before every process started: nothing more to start
                return

    def stop(self) -> None:
        """End the workers now (Ctrl-C, an error, or the run is over): what they run is not recorded,
        and nothing they still do (their first imports, when nothing was left to run) is waited for."""
        self.starting.join()  # every process it starts is one to end
        for process in list((self._processes or {}).values()):  # no public way before Python 3.14
            process.kill()
        self.shutdown(wait=True, cancel_futures=True)


def start_pool(workers: int) -> Workers:
    """`workers` worker processes, importing what a cell needs now (while this process plans), not
    when the first cell is sent."""
    return Workers(workers)


def run_in_worker(specs: list[RunSpec], artifacts: str) -> list:
    """What a worker runs: the job's records; a cell that raises gives a failed record."""
    from harness.executors import run_job

    try:
        return run_job(specs, None, Path(artifacts))
    except Exception as exc:  # noqa: BLE001 - recorded as the cell's failure, as the local executor does
        return [failure(spec, exc) for spec in specs]


def run_pool(jobs: list[list[RunSpec]], store: Store, console: Console, workers: int, work=None,
             pool: Workers | None = None) -> Summary:
    """Run every cell of `jobs` not already done in `workers` worker processes (`pool`'s, else new
    ones, ended here); records are written here as jobs finish. `work` (specs, artifacts folder) ->
    [RunRecord] is what a worker runs (run_in_worker by default; a test's must be importable by a
    new process)."""
    summary = Summary()
    todo = still_to_do(store, jobs, summary)
    start = time.perf_counter()
    threads, owned = threads_each(workers), pool is None
    artifacts = str(store.path.parent.resolve() / "runs")
    pool = pool or start_pool(workers)
    pending: dict = {}
    try:
        with Progress(*grid_columns(), console=console, transient=True) as progress, store.keep_alive():
            grid = progress.add_task(f"grid in {workers} worker processes ({threads} threads each)",
                                     total=sum(map(len, todo)))
            for job in todo:
                job = claim(store, job, summary, lambda n: progress.advance(grid, n))
                if job:
                    pending[pool.submit(work or run_in_worker, job, artifacts)] = (job, time.perf_counter())
            while pending:
                finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for future in finished:
                    job, submitted = pending.pop(future)
                    try:
                        records = future.result()
                    except BrokenProcessPool:
                        _died(store, [job, *(j for j, _ in pending.values())], summary, start)
                    for spec, record in zip(job, records):
                        keep(store, spec, record, record.cost.get("wall_seconds", time.perf_counter() - submitted),
                             summary, console)
                        progress.advance(grid)
    except KeyboardInterrupt:
        pool.stop()
        store.release([s.id for job, _ in pending.values() for s in job])
        raise
    finally:
        if owned:
            pool.stop()
    summary.seconds = time.perf_counter() - start
    return summary


def _died(store: Store, jobs: list[list[RunSpec]], summary: Summary, start: float) -> None:
    """A worker died: give back the unfinished `jobs`' claims and stop the grid in one line."""
    unfinished = [s for job in jobs for s in job]
    store.release([s.id for s in unfinished])
    names = ", ".join(literal(s.label) for s in unfinished[:3]) + (f" and {len(unfinished) - 3} more"
                                                                   if len(unfinished) > 3 else "")
    raise HarnessError(f"a worker process died (killed, or out of memory) while running one of: {names}; the "
                       f"{len(summary.done) + len(summary.failed)} records written in "
                       f"{time.perf_counter() - start:.0f}s are kept and those cells are not; run the same "
                       f"command again to resume (without --workers, a cell that kills its process is named)")


def describe(workers: int) -> str:
    """' in N worker processes' for the run's first line."""
    return f" in {workers} worker processes ({threads_each(workers)} torch threads each)"

