"""A plan's rounds: run its jobs; while a sweep's finals wait for their group's trials, or students
for their teacher cells, re-plan once those are over and run what joins, until nothing new can run.

The choice itself (sweep.selection) is a pure function of the store; this is only the loop that
gives it trials to read. `harness run` calls `run_rounds` once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.executors import Executor
from harness.executors.local import Summary
from harness.plan.plan import Plan


@dataclass
class Rounds:
    """What the rounds did: every round's summary added up, and the last plan and grid."""

    summary: Summary
    plan: Plan
    grid: object  # harness.sweep.grid.Grid


def run_rounds(plan: Plan, grid, executor: Executor, console,
               replan: Callable[[set[str]], tuple[Plan, object]],
               chose: Callable[[Plan, int, str], None] | None = None) -> Rounds:
    """Run `plan`'s jobs with `executor`; then, while `grid` has finals waiting, `replan(counted_out)`
    (the run ids attempted and not done: failed trials count as over) and run the cells it adds.
    `chose(plan, n, why)` hears of each later round before it runs (n cells; why they can run now)."""
    total, attempted = Summary(), set()
    jobs = plan.runnable()
    while jobs:
        total.add(executor.run(jobs, plan.store, console, plan.peaks()))
        attempted |= {spec.id for job in jobs for spec in job}
        if not grid.pending:
            break
        why = "the sweep chose" if grid.waiting else "the cells they learn from are done"
        plan, grid = replan(attempted - plan.store.done(list(attempted)))
        jobs = [kept for job in plan.runnable() if (kept := [s for s in job if s.id not in attempted])]
        if any(s.sweep and s.sweep.prune and s.seed in s.sweep.seeds for job in jobs for s in job):
            why = "a pruned sweep's next trials follow the ones before them"
        if jobs and chose:
            chose(plan, sum(map(len, jobs)), why)
    return Rounds(total, plan, grid)
