"""The leaderboard: one row per backbone x strategy, one column per task (primary metric,
mean ± std over seeds), the average over tasks, and the trainable parameters.

Cells are looked up by the run ids of the suite's current plan, so labels come from the suite as
it is now and results of other suites sharing the store are never mixed in.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from rich.table import Table

from harness.plan import RunSpec
from harness.store import Store


def scores(specs: list[RunSpec], store: Store) -> pd.DataFrame:
    """One row per completed cell: model, strategy, task, seed, primary score, trainable params."""
    by_id = {s.id: s for s in specs}
    frame = store.frame(list(by_id))
    rows = []
    for record in frame[frame.status == "done"].itertuples():
        spec = by_id[record.id]
        rows.append({
            "model": spec.model, "strategy": spec.strategy, "task": spec.task, "seed": spec.seed,
            "metric": spec.card.primary, "score": record.metrics[spec.card.primary],
            "trainable_params": record.cost["trainable_params"], "trainable_share": record.cost["trainable_share"],
        })
    return pd.DataFrame(rows, columns=["model", "strategy", "task", "seed", "metric", "score",
                                       "trainable_params", "trainable_share"])


def leaderboard(specs: list[RunSpec], store: Store) -> pd.DataFrame:
    """Numeric leaderboard: <task>_mean, <task>_std, <task>_n per task, average, trainable params."""
    cells = scores(specs, store)
    models = list(dict.fromkeys(s.model for s in specs))
    strategies = list(dict.fromkeys(s.strategy for s in specs))
    tasks = list(dict.fromkeys(s.task for s in specs))
    rows = []
    for model in models:
        for strategy in strategies:
            mine = cells[(cells.model == model) & (cells.strategy == strategy)]
            row: dict = {"model": model, "strategy": strategy}
            means = []
            for task in tasks:
                values = mine[mine.task == task].score
                row[f"{task}_mean"] = values.mean() if len(values) else math.nan
                row[f"{task}_std"] = values.std(ddof=1) if len(values) > 1 else math.nan
                row[f"{task}_n"] = len(values)
                means.append(row[f"{task}_mean"])
            row["average"] = sum(means) / len(means) if means and not any(math.isnan(m) for m in means) else math.nan
            row["trainable_params"] = mine.trainable_params.median() if len(mine) else math.nan
            row["trainable_share"] = mine.trainable_share.median() if len(mine) else math.nan
            rows.append(row)
    return pd.DataFrame(rows)


def tasks_of(board: pd.DataFrame) -> list[str]:
    return [c.removesuffix("_mean") for c in board.columns if c.endswith("_mean")]


def formatted(board: pd.DataFrame) -> pd.DataFrame:
    """Strings as a reader sees them: '91.3 ± 0.4', '—' where a cell has no result."""
    out = pd.DataFrame({"model": board.model, "strategy": board.strategy})
    for task in tasks_of(board):
        out[task] = [
            _cell(m, s, n) for m, s, n in zip(board[f"{task}_mean"], board[f"{task}_std"], board[f"{task}_n"])
        ]
    out["average"] = [_number(v) for v in board.average]
    out["trainable"] = ["—" if math.isnan(p) else _count(p) for p in board.trainable_params]
    out["share"] = ["—" if math.isnan(s) else _share(s) for s in board.trainable_share]
    return out


def _cell(mean: float, std: float, n: int) -> str:
    if n == 0:
        return "—"
    return f"{mean:.1f}" if n == 1 or math.isnan(std) else f"{mean:.1f} ± {std:.1f}"


def _number(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.1f}"


def _share(share: float) -> str:
    percent = 100 * share
    return f"{percent:.0f}%" if percent >= 99.5 else f"{percent:.2g}%"


def _count(n: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{int(n)}"


def rich_table(table: pd.DataFrame, title: str) -> Table:
    out = Table(title=title, title_justify="left")
    for i, column in enumerate(table.columns):
        out.add_column(column, justify="left" if i < 2 else "right")
    for row in table.itertuples(index=False):
        out.add_row(*[str(v) for v in row])
    return out


def markdown(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" if i < 2 else "---:" for i in range(len(table.columns))) + "|"
    body = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def write(board: pd.DataFrame, table: pd.DataFrame, folder: Path, title: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    md, csv = folder / "leaderboard.md", folder / "leaderboard.csv"
    md.write_text(f"# {title}\n\n" + markdown(table), encoding="utf-8")
    board.to_csv(csv, index=False)
    return [md, csv]
