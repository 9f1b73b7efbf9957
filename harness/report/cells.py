"""Cells of a leaderboard from runs, shared by the views (harness.report.leaderboard) and the cost
view (harness.report.costs): which runs a row holds for a task, the mean score per row and task,
the average over tasks, first and second places, and the note that names diverged runs."""

from __future__ import annotations

import math

import numpy as np

from harness.report import stats
from harness.report.board import Cell
from harness.report.results import Results


def by(*keys: str, **fixed: str):
    """A selector: the runs of one row (its label parts, plus fixed columns) and one task."""
    def select(runs, row: tuple[str, ...], task: str):
        mask = runs.task == task
        for key, value in zip(keys, row):
            mask &= runs[key] == value
        for key, value in fixed.items():
            mask &= runs[key] == value
        return runs[mask]
    return select


def task_scores(results: Results, rows: list[tuple], select) -> np.ndarray:
    """rows x tasks: the mean over seeds of each task's combined score (its card's `average` metrics)."""
    runs = results.runs
    table = [[stats.summarize(list(select(runs, row, task).task_score)).mean for task in results.task_names]
             for row in rows]
    return np.array(table, dtype=float).reshape(len(rows), len(results.task_names))


def averages(table: np.ndarray) -> list[Cell]:
    """The average over tasks of each row that has every task, placed best and second best."""
    cells = [Cell(mean=float(row.mean()), n=1) if row.size and not np.isnan(row).any() else Cell() for row in table]
    place(cells)
    return cells


def place(cells: list[Cell], lowest: bool = False) -> None:
    """Mark the best and second best of a column (the highest, or with `lowest` the lowest)."""
    means = sorted({c.mean for c in cells if c.n and not math.isnan(c.mean)}, reverse=not lowest)
    for cell in cells:
        if cell.n and not math.isnan(cell.mean):
            cell.place = 1 if cell.mean == means[0] else 2 if len(means) > 1 and cell.mean == means[1] else 0


def diverged_note(results: Results, task: str | None = None) -> list[str]:
    """One line naming the runs that diverged (left out of every mean), for every view."""
    runs = [r for r in results.diverged if task in (None, r["task"])]
    if not runs:
        return []
    named = ", ".join(f"{r['model']} · {r['strategy']} · {r['task']} · seed {r['seed']} (step {r['step']}, "
                      f"{r['signal']})" for r in runs)
    return [f"⚠ {len(runs)} run(s) diverged (a non-finite loss, gradient norm or weight) and are left out of the "
            f"means: {named}"]
