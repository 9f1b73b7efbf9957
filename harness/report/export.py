"""Leaderboard boards rendered as a terminal table, Markdown, CSV, JSON and LaTeX.

Formatting rules are shared: a score is 'mean ± std' in points, '†' marks a cell not
significantly different from its column's best, the best is bold (and, in LaTeX, the second
underlined, as papers do). CSV and JSON keep every number unrounded, intervals included.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from rich.table import Table

from harness.base.errors import literal, shown
from harness.base.files import write_output
from harness.report.board import FRONTIER, Board, Cell, Column

DAGGER = "†"  # in its column's best set, not the best mean
DOUBLE_DAGGER = "‡"  # a seed far from its row's others, or a diverged run


def text(cell: Cell, kind: str) -> str:
    """A cell as a reader sees it, without emphasis; a cost on the Pareto frontier marked ◆."""
    if not cell.n or math.isnan(cell.mean):
        return "—"
    return _value(cell, kind) + (FRONTIER if cell.frontier else "")


def _value(cell: Cell, kind: str) -> str:
    if kind == "score":
        value = f"{cell.mean:.1f}" if cell.n == 1 or math.isnan(cell.std) else f"{cell.mean:.1f} ± {cell.std:.1f}"
        return value + (DAGGER if cell.tied else "") + (DOUBLE_DAGGER if cell.outliers else "")
    if kind == "count":
        return _count(cell.mean)
    if kind == "share":
        percent = 100 * cell.mean
        return f"{percent:.0f}%" if percent >= 99.5 else f"{percent:.2g}%"
    if kind == "megabytes":
        return f"{cell.mean:,.0f} MB"
    if kind == "seconds":
        return f"{cell.mean:.1f} s"
    if kind == "milliseconds":
        return f"{cell.mean:.2f} ms" if cell.mean < 10 else f"{cell.mean:.0f} ms"
    if kind == "bytes":
        return next(f"{cell.mean / size:.3g} {unit}" for unit, size in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10), ("B", 1))
                    if cell.mean >= size or unit == "B")
    if kind == "flops":
        return next(f"{cell.mean / size:.3g} {unit}FLOP" for unit, size in
                    (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("", 1)) if cell.mean >= size or size == 1)
    if kind in ("kwh", "grams"):
        units = (("kWh", 1), ("Wh", 1e-3), ("mWh", 1e-6)) if kind == "kwh" else (("kg", 1e3), ("g", 1), ("mg", 1e-3))
        return next(f"{cell.mean / size:.3g} {unit}" for unit, size in units if cell.mean >= size or size == units[-1][1])
    if kind == "rank":
        return f"{cell.mean:.2f}"
    if kind == "fraction":
        return f"{cell.mean:.3f}"
    if kind == "p":
        return f"{cell.mean:.3f}" if cell.mean >= 0.001 else "<0.001"
    if kind == "change":
        return f"{cell.mean:+.3f}" if abs(cell.mean) < 1000 else f"{cell.mean:+.3g}"
    if kind == "rate":
        return f"{100 * cell.mean:.0f}%"
    return f"{cell.mean:g}"


def _count(n: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{int(n)}"


# ---------------------------------------------------------------------- terminal and Markdown


def rich_table(board: Board) -> Table:
    table = Table(title=literal(board.title), title_justify="left",
                  caption="\n".join(literal(n) for n in board.notes) or None, caption_justify="left")
    for name in board.index:
        table.add_column(literal(name))
    for column in board.columns:
        table.add_column(literal(column.title), justify="right")
    for i, row in enumerate(board.rows):
        cells = [_rich(column.cells[i], column) for column in board.columns]
        table.add_row(*map(literal, row), *cells)
    return table


def _rich(cell: Cell, column: Column) -> str:
    shown = literal(text(cell, column.kind))
    return f"[bold]{shown}[/]" if column.kind == "score" and cell.place == 1 else shown


def markdown(boards: list[Board]) -> str:
    parts = []
    for board in boards:
        header = [*board.index, *(c.title for c in board.columns)]
        lines = [f"### {_md(board.title)}", "", "| " + " | ".join(_md(h) for h in header) + " |",
                 "|" + "|".join(["---"] * len(board.index) + ["---:"] * len(board.columns)) + "|"]
        for i, row in enumerate(board.rows):
            cells = []
            for column in board.columns:
                shown = _md(text(column.cells[i], column.kind))
                cells.append(f"**{shown}**" if column.kind == "score" and column.cells[i].place == 1 else shown)
            lines.append("| " + " | ".join([*(_md(r) for r in row), *cells]) + " |")
        lines += [""] + [f"{_md(note)}  " for note in board.notes]
        parts.append("\n".join(lines).rstrip() + "\n")
    return "\n".join(parts)


_MD = {"|": "\\|", "*": "\\*", "`": "\\`", "[": "\\[", "]": "\\]", "<": "&lt;", ">": "&gt;",
       "&": "&amp;", "\\": "\\\\", "\n": " ", "\r": " "}


def _md(value: str) -> str:
    """A name as Markdown text: table pipes, emphasis, links and HTML escaped, a newline no longer
    splitting a table row, control characters shown."""
    return shown("".join(_MD.get(ch, ch) for ch in str(value)))


# Spreadsheets run a cell that starts with one of these as a formula (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_safe(value):
    """A text cell a spreadsheet shows as text: a leading quote before a formula's first character."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


# ---------------------------------------------------------------------- CSV and JSON


def frame(boards: list[Board]) -> pd.DataFrame:
    """Every number of every board, one row per board row: <key>_mean, _std, _ci_low, _ci_high, _n ..."""
    rows = []
    for board in boards:
        for i, row in enumerate(board.rows):
            out: dict = {"board": board.title, **dict(zip(board.index, row))}
            for column in board.columns:
                cell = column.cells[i]
                if column.kind == "score":
                    out |= {f"{column.key}_mean": cell.mean, f"{column.key}_std": cell.std,
                            f"{column.key}_ci_low": cell.low, f"{column.key}_ci_high": cell.high,
                            f"{column.key}_n": cell.n, f"{column.key}_place": cell.place,
                            f"{column.key}_best_set": cell.best_set, f"{column.key}_p_best": cell.p_value,
                            f"{column.key}_best_set_test": cell.test,
                            f"{column.key}_seed_df": column.noise.dof if column.noise else None,
                            f"{column.key}_outlier_seeds": " ".join(map(str, cell.outliers)),
                            f"{column.key}_nan_runs": cell.dropped, f"{column.key}_ci": board.interval}
                else:
                    out[column.key] = cell.mean
                    if any(c.frontier for c in column.cells):
                        out[f"{column.key}_pareto"] = cell.frontier
            rows.append(out)
    return pd.DataFrame(rows)


def to_json(boards: list[Board]) -> str:
    def clean(value):
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return json.dumps([clean(asdict(board)) for board in boards], indent=1)


# ---------------------------------------------------------------------- LaTeX

_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
          "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(value: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in shown(value))


def latex(boards: list[Board]) -> str:
    """booktabs tables: best in bold, second underlined, ± as in papers (needs \\usepackage{booktabs})."""
    out = []
    for board in boards:
        spec = "l" * len(board.index) + "r" * len(board.columns)
        header = " & ".join(latex_escape(h) for h in [*board.index, *(c.title for c in board.columns)])
        lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(board.title)}}}",
                 rf"\begin{{tabular}}{{{spec}}}", r"\toprule", header + r" \\", r"\midrule"]
        for i, row in enumerate(board.rows):
            cells = [_latex_cell(column.cells[i], column) for column in board.columns]
            lines.append(" & ".join([*(latex_escape(r) for r in row), *cells]) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        if board.notes:
            notes = latex_escape(" ".join(board.notes))
            for plain, tex in ((DAGGER, r"$^\dagger$"), (DOUBLE_DAGGER, r"$^\ddagger$"), ("±", r"$\pm$"), ("α", r"$\alpha$"), ("⚠ ", "Warning: "),
                              ("×", r"$\times$"), ("·", r"$\cdot$"), ("√", r"$\sqrt{}$"),
                              (FRONTIER, r"$^{\diamond}$")):
                notes = notes.replace(plain, tex)
            lines.append(r"\par\smallskip{\footnotesize " + notes + "}")
        lines.append(r"\end{table}")
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def _latex_cell(cell: Cell, column: Column) -> str:
    if column.kind != "score" or not cell.n or math.isnan(cell.mean):
        return latex_escape(text(cell, column.kind)).replace("—", "--").replace(FRONTIER, r"$^{\diamond}$")
    value = f"{cell.mean:.1f}" if cell.n == 1 or math.isnan(cell.std) else f"{cell.mean:.1f} $\\pm$ {cell.std:.1f}"
    if cell.place == 1:
        value = rf"\textbf{{{value}}}"
    elif cell.place == 2:
        value = rf"\underline{{{value}}}"
    return value + (r"$^\dagger$" if cell.tied else "") + (r"$^\ddagger$" if cell.outliers else "")


# ---------------------------------------------------------------------- files

FORMATS = ("md", "csv", "json", "tex")


def write(boards: list[Board], folder: Path, stem: str, formats=FORMATS) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    writers = {"md": markdown, "csv": lambda b: frame(b).map(csv_safe).to_csv(index=False), "json": to_json,
               "tex": latex}
    paths = []
    for fmt in formats:
        path = folder / f"{stem}.{fmt}"
        write_output(path, writers[fmt](boards))
        paths.append(path)
    return paths
