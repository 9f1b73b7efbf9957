"""Run cells one after another in this process, with a progress display for the grid and the cell.

A cell that raises is recorded as failed with its error and the grid goes on. Ctrl-C stops the
grid between records: what completed is already in the store, and the interrupted cell is absent.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field

import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from harness.base.device import release
from harness.base.errors import first_line, literal
from harness.config.spec import RunSpec
from harness.run.environment import environment
from harness.store.database import RunRecord, Store


@dataclass
class Summary:
    done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (cell label, error)
    skipped: int = 0
    elsewhere: list[str] = field(default_factory=list)  # cells another live process was running
    seconds: float = 0.0

    def add(self, other: Summary) -> None:
        """Count `other`'s cells in this one (a run in several rounds)."""
        self.done += other.done
        self.failed += other.failed
        self.skipped += other.skipped
        self.elsewhere += other.elsewhere
        self.seconds += other.seconds


def failure(spec: RunSpec, exc: BaseException) -> RunRecord:
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        message = f"out of memory: {first_line(exc)}"
    else:
        message = f"{type(exc).__name__}: {first_line(exc)}" if str(exc).strip() else type(exc).__name__
    return RunRecord(
        id=spec.id, spec=spec.model_dump(mode="json"), status="failed", error=message,
        info={"traceback": traceback.format_exc()}, environment=environment(),
    )


def run_local(jobs: list[list[RunSpec]], store: Store, console: Console, run=None) -> Summary:
    """Run every cell of `jobs` (see plan.jobs, Plan.runnable) not already done, job by job; `run`
    (specs, progress, artifacts folder) -> [RunRecord] defaults to executors.run_job."""
    if run is None:
        from harness.executors import run_job as run
    release()  # what the command imported is frozen out of the collections every cell's objects go through
    summary = Summary()
    todo = still_to_do(store, jobs, summary)
    start = time.perf_counter()
    with Progress(*grid_columns(), console=console, transient=True) as progress, store.keep_alive():
        grid = progress.add_task("grid", total=sum(map(len, todo)))
        cell = progress.add_task("", total=None)
        for job in todo:
            job = claim(store, job, summary, lambda n: progress.advance(grid, n))
            if not job:
                continue
            shown = job[0].label if len(job) == 1 else f"{job[0].label} (joint: {len(job)} tasks)"
            progress.update(cell, description=f"  {shown}", completed=0, total=None)

            def report(step: int, total: int, _cell=cell) -> None:
                progress.update(_cell, completed=step, total=total)

            job_start = time.perf_counter()
            try:
                records = run(job, report, store.path.parent / "runs")
            except Exception as exc:  # the grid goes on; the record says why this cell failed
                records = [failure(spec, exc) for spec in job]
            for spec, record in zip(job, records):
                keep(store, spec, record, time.perf_counter() - job_start, summary, console)
                progress.advance(grid)
    summary.seconds = time.perf_counter() - start
    return summary


def grid_columns() -> tuple:
    """A grid's progress display: the cell (its label printed literally), a bar, done of all, time."""
    return TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()


def still_to_do(store: Store, jobs: list[list[RunSpec]], summary: Summary) -> list[list[RunSpec]]:
    """`jobs` less their cells the store holds as done (counted in `summary.skipped`)."""
    done = store.done([s.id for job in jobs for s in job])
    todo = [[s for s in job if s.id not in done] for job in jobs]
    summary.skipped = sum(map(len, jobs)) - sum(map(len, todo))
    return [job for job in todo if job]


def claim(store: Store, job: list[RunSpec], summary: Summary, skipped) -> list[RunSpec]:
    """The cells of `job` this process now holds; the rest another live process has taken or
    finished since the grid started (they count as elsewhere, and `skipped(n)` hears of them)."""
    claimed = store.claim([s.id for s in job])
    summary.elsewhere += [s.id for s in job if s.id not in claimed]
    skipped(len(job) - len(claimed))
    return [s for s in job if s.id in claimed]


def keep(store: Store, spec: RunSpec, record: RunRecord, seconds: float, summary: Summary, console: Console) -> None:
    """Write one finished record, give up its claim, and say how the cell went."""
    store.write(record)
    store.release([spec.id])
    if record.status == "done" and (diverged := record.info.get("diverged")):
        summary.done.append(spec.id)
        console.print(f"[yellow]⚠[/] {literal(spec.label)}  [yellow]diverged[/] at step {diverged['step']} "
                      f"({diverged['signal']} {diverged['value']}): recorded, left out of every mean  "
                      f"[dim]({seconds:.1f}s)[/]")
    elif record.status == "done":
        summary.done.append(spec.id)
        primary = spec.card.primary
        console.print(f"[green]✓[/] {literal(spec.label)}  {literal(primary)} {record.metrics[primary]:.1f}  [dim]({seconds:.1f}s)[/]")
    else:
        summary.failed.append((spec.label, record.error or "failed"))
        console.print(f"[red]✗[/] {literal(spec.label)}  [red]{literal(record.error)}[/]")
