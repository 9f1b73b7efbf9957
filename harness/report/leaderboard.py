"""Leaderboard views built from `Results`: which rows, which columns, which cells are best.

Every view is a row of `VIEWS` (its name, what it shows, its heading in the HTML report, how it
is built); the CLI's `--view` choices and help, `harness report` and `boards` read that table.

A score cell holds the mean, std and 95% Student-t interval of the mean over seeds. In each task
column the best and second-best means are marked, and the rows the data cannot exclude from being
best at ALPHA, for the column as a whole, are its best set (harness.report.best: a max-t step-down
over the column, paired over examples, seed variance pooled over the column's rows); members other
than the best mean are marked †. A seed far from its row's others (stats.outliers) or a run that
diverged marks its cell ‡. Averages over tasks use each task's combined
score (its card's `average` metrics, as GLUE does), with the rank and win rate of each row.
Rendering into formats is harness.report.export's job.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.base.device import CPU_COMPUTE, describe
from harness.config.registry import METRICS
from harness.report import stats
from harness.report.best import ALPHA, METHOD, best_set
from harness.report.board import Board, Cell, Column
from harness.report.calibration import calibration_board
from harness.report.cells import averages, by, diverged_note, place, task_scores
from harness.report.costs import cost_boards
from harness.report.forgetting import forgetting_board
from harness.report.results import Results
from harness.report.robustness import robustness_boards
from harness.report.tuning import curve


@dataclass(frozen=True)
class View:
    name: str
    shows: str  # one line for the CLI's help
    heading: str  # its section in the HTML report
    build: Callable[[Results, str | None], list[Board]]  # (results, only this task) -> boards

    @property
    def stem(self) -> str:
        """The file name its tables are written under."""
        return "leaderboard" if self.name == "overall" else f"leaderboard-{self.name}"


def _overall(results: Results, task: str | None) -> list[Board]:
    return [_score_board(results, results.name, ["model", "strategy"], results.pairs(), by("model", "strategy"))]


def _strategies(results: Results, task: str | None) -> list[Board]:
    return [_score_board(results, f"{results.name} · {m}", ["strategy"], [(s,) for _, s in results.pairs(model=m)],
                         by("strategy", model=m)) for m in results.models]


def _backbones(results: Results, task: str | None) -> list[Board]:
    return [_score_board(results, f"{results.name} · {s}", ["model"], [(m,) for m, _ in results.pairs(strategy=s)],
                         by("model", strategy=s)) for s in results.strategies]


def _tasks(results: Results, task: str | None) -> list[Board]:
    return [_task_board(results, name) for name in ([task] if task else results.task_names)]


# The leaderboard views, in the order `harness report` writes them.
VIEWS: dict[str, View] = {view.name: view for view in (
    View("overall", "backbone x strategy rows, tasks as columns (one board)", "Leaderboard", _overall),
    View("strategies", "one board per backbone, a strategy per row", "Strategies per backbone", _strategies),
    View("backbones", "one board per strategy, a backbone per row", "Backbones per strategy", _backbones),
    View("cost", "what each row costs to train and serve next to its score, Pareto rows marked (--task: that "
                 "task's cells; one board per task where rows do not share their tasks)", "Cost", cost_boards),
    View("task", "every metric of a task (--task: only that one)", "Every metric, per task", _tasks),
    View("calibration", "expected calibration error and Brier score of each classification task (runs that kept "
                        "class probabilities)", "Calibration", calibration_board),
    View("robustness", "each task's score on its more evaluation sets (extra splits, the suite's perturbations of "
                       "eval) and the drop from eval, with the paired test", "Robustness", robustness_boards),
    View("forgetting", "the backbone's pretraining loss on the suite's held-out text after each row, and its change "
                       "(suites with `retention`)", "Forgetting", forgetting_board),
    View("tuning", "a sweep's chosen setting per cell, its trials, tuning time and expected best score for a budget",
         "Tuning", lambda results, task: [_tuning_board(results, task)] if len(results.trials) else []),
)}


def boards(results: Results, view: str = "overall", task: str | None = None) -> list[Board]:
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}")
    return VIEWS[view].build(results, task)


def _score_board(results: Results, title: str, index: list[str], rows: list[tuple], select) -> Board:
    runs = results.runs
    diverged = pd.DataFrame(results.diverged, columns=["model", "strategy", "task", "seed"])
    columns = []
    for task in results.task_names:
        metric = results.tasks[task]["primary"]
        groups = [select(runs, row, task) for row in rows]
        cells = [_cell(g.score) for g in groups]
        place(cells)
        for cell, seeds in zip(cells, _outlier_seeds(groups)):
            cell.outliers = seeds
        for cell, row in zip(cells, rows):
            cell.outliers = sorted(set(cell.outliers) | {int(s) for s in select(diverged, row, task).seed})
        column = Column(task, f"{task} ({metric})", "score", cells)
        _mark_best_set(results, column, groups, metric)
        columns.append(column)
    table = task_scores(results, rows, select)
    columns.append(Column("average", "average", "score", averages(table)))
    if len(results.task_names) > 1:
        rank = stats.ranks(table).mean(axis=1) if table.size else np.full(len(rows), np.nan)
        rate = stats.win_rates(table) if table.size else np.full(len(rows), np.nan)
        columns.append(Column("rank", "mean rank", "rank", [Cell(mean=float(r), n=1) for r in rank]))
        columns.append(Column("win_rate", "win rate", "rate", [Cell(mean=float(r), n=1) for r in rate]))
    share_cells = []
    for row in rows:
        values = [v for t in results.task_names for v in select(runs, row, t).trainable_share.dropna()]
        share_cells.append(Cell(mean=float(np.median(values)), n=1) if values else Cell())
    columns.append(Column("trainable_share", "trainable", "share", share_cells))
    board = Board(title, index, rows, columns)
    board.notes = _notes(results, board)
    return board


def _outlier_seeds(groups) -> list[list[int]]:
    """Per row, the seeds (their numbers) that stats.outliers finds far from the row's others."""
    found = stats.outliers([list(g.score) for g in groups])
    return [[int(g.seed.iloc[i]) for i in positions] for g, positions in zip(groups, found)]


def _mark_best_set(results: Results, column: Column, groups, metric_name: str) -> None:
    """Each cell's membership of the column's best set, from the runs' stored predictions. A row is
    tested when every run with a score kept its predictions on the examples the column shares; runs
    with a NaN score are left out (and counted), as the cell's mean leaves them out."""
    metric = METRICS.get(metric_name)
    cells = column.cells
    for cell, group in zip(cells, groups):
        cell.dropped = int(group.score.isna().sum())
    finite = [g[g.score.notna()] for g in groups]
    runs = [_runs_of(results, g) if len(g) else None for g in finite]
    present = [i for i, r in enumerate(runs) if r is not None]
    kept, _ = stats.comparable([runs[i] for i in present], metric)
    tested = [i for i, found in zip(present, kept) if len(found) == len(finite[i])]
    column.untested = sum(1 for i, c in enumerate(cells) if c.n and i not in tested)
    if not tested or not any(cells[i].place == 1 for i in tested):  # the best mean cannot be tested: no set
        column.untested = sum(1 for c in cells if c.n)
        return
    noise = stats.pooled_noise([list(g.score) for g in groups])
    found = best_set([kept[present.index(i)] for i in tested], metric, noise)
    column.noise = noise
    name = f"{METHOD} ({'pooled seeds + examples' if noise.dof else 'examples'})"
    for i, member, p in zip(tested, found.members, found.p_values):
        cells[i].best_set, cells[i].p_value, cells[i].test = member, p, name


def _task_board(results: Results, task: str) -> Board:
    rows = results.pairs()
    runs = results.runs[results.runs.task == task]
    columns = []
    for metric in results.tasks[task]["metrics"]:
        cells = []
        for model, strategy in rows:
            group = runs[(runs.model == model) & (runs.strategy == strategy)]
            cells.append(_cell([m.get(metric, math.nan) for m in group.metrics]))
        place(cells)
        columns.append(Column(metric, metric, "score", cells))
    board = Board(f"{results.name} · {task}: all metrics", ["model", "strategy"], rows, columns)
    board.notes = _notes(results, board)
    return board


def _tuning_board(results: Results, task: str | None) -> Board:
    """One row per tuned (model, strategy, task): the chosen setting, the trials it was chosen
    from, the expected best dev score (and the eval of that dev-best) at 1 trial and at all of
    them, the finals' eval score and the tuning's train time."""
    rows, cells = [], {key: [] for key in ("trials", "pruned", "dev1", "devn", "eval1", "evaln", "final", "epochs",
                                           "seconds")}
    runs = results.runs
    for (model, name, strategy), choice in sorted(results.choices().items(), key=lambda item: _order(results, *item[0])):
        if task not in (None, name):
            continue
        found = curve(list(choice.candidates))
        finals = runs[(runs.model == model) & (runs.strategy == strategy) & (runs.task == name)]
        rows.append((model, strategy, name, choice.setting))
        for key, value in (("trials", choice.tried), ("pruned", choice.pruned), ("dev1", found["dev"][0]),
                           ("devn", found["dev"][-1]), ("eval1", found["eval"][0]), ("evaln", found["eval"][-1]),
                           ("epochs", choice.epochs), ("seconds", choice.seconds)):
            cells[key].append(Cell(mean=float(value), n=1))
        cells["final"].append(_cell(finals.score))
    titles = {"trials": ("trials", "count"), "pruned": ("stopped early", "count"), "dev1": ("dev @1", "score"),
              "devn": ("dev @all", "score"), "eval1": ("eval @1", "score"), "evaln": ("eval @all", "score"),
              "final": ("eval (final)", "score"), "epochs": ("tuning compute", "trial-epochs"),
              "seconds": ("tuning train time", "seconds")}
    pruning = any(c.pruned for c in results.choices().values()) or bool(results.trials.pruned.any())
    columns = [Column(key, *titles[key], cells[key]) for key in titles if key not in ("pruned", "epochs") or pruning]
    board = Board(f"{results.name}: tuning (chosen on dev)", ["model", "strategy", "task", "chosen"], rows, columns)
    board.notes = ["each row's setting has the best mean dev score of its trials (primary metric); dev @k: the "
                   "expected best dev score of k trials drawn from them, eval @k: the expected eval score of that "
                   "dev-best (Dodge et al. 2019); eval (final): the chosen setting on the suite's seeds, which the "
                   "leaderboard reports; tuning train time: every trial's, summed"]
    if pruning:
        board.notes.append("trials: the settings that ran to the end, the candidates; stopped early: settings "
                           "Optuna's successive-halving pruner stopped on dev at a rung, behind the trials before them "
                           "(their dev curves are kept in their records); tuning compute: the epochs every trial "
                           "trained, summed (what sweep.prune.compute bounds)")
    chosen = sorted(((group, c) for group, c in results.choices().items() if task in (None, group[1])),
                    key=lambda item: _order(results, *item[0]))
    short = [f"{m} · {s} · {t} ({c.tried + c.pruned} of {c.settings})" for (m, t, s), c in chosen
             if c.tried + c.pruned < c.settings and not c.spent]
    if short:
        board.notes.append(f"⚠ chosen before every trial was done (or some cannot run): {', '.join(short)}")
    failed = [t for t in results.trials.itertuples() if t.dev != t.dev and task in (None, t.task)
              and not (t.pruned is True or t.pruned == 1)]
    if failed:  # a diverged trial (or one without a dev score) is a failed trial: its setting is no candidate
        board.notes.append(f"⚠ {len(failed)} trial(s) diverged or have no dev score, so their settings were not "
                           f"candidates: " + ", ".join(f"{t.model} · {t.strategy} · {t.task} ({t.setting}, seed {t.seed})"
                                                       for t in failed))
    edges = [f"{m} · {s} · {t} ({edge})" for (m, t, s), c in chosen if (edge := _at_edge(c))]
    if edges:
        board.notes.append(f"⚠ chosen at the edge of its space (the best may lie beyond it): {', '.join(edges)}")
    return board


def _at_edge(choice) -> str | None:
    """'learning_rate=0.01 is the largest tried' when a numeric setting of three values or more was
    chosen at its smallest or largest; None otherwise."""
    points = [json.loads(s.point) for s in choice.candidates]
    best = json.loads(choice.point)
    for key, value in best.items():
        tried = sorted({p[key] for p in points if isinstance(p.get(key), (int, float)) and not isinstance(p[key], bool)})
        if len(tried) >= 3 and value in (tried[0], tried[-1]):
            return f"{key}={value:g} is the {'largest' if value == tried[-1] else 'smallest'} tried"
    return None


def _order(results: Results, model: str, task: str, strategy: str) -> tuple[int, int, int]:
    """Where a (model, task, strategy) goes among the rows: the suite's order of models, strategies, tasks."""
    def at(names: list[str], name: str) -> int:
        return names.index(name) if name in names else len(names)
    return at(results.models, model), at(results.strategies, strategy), at(list(results.tasks), task)


def _cell(values) -> Cell:
    summary = stats.summarize(list(values))
    return Cell(summary.mean, summary.std, summary.low, summary.high, summary.n)


def _best(cells: list[Cell]) -> int | None:
    best = [i for i, c in enumerate(cells) if c.place == 1]
    return best[0] if best else None


def _runs_of(results: Results, group) -> list | None:
    """(seed, predictions, references) of each run of a cell; None if one of them kept none."""
    found = []
    for row in group.itertuples():
        kept = results.predictions(row.run_id)
        if kept is None:
            return None
        found.append((row.seed, kept[0], kept[1]))
    return found


def _set_notes(board: Board) -> list[str]:
    """What the † and ‡ marks mean on this board, and which cells no statistic could use."""
    notes = []
    sets = [c for c in board.columns if c.noise is not None]
    if sets:
        dofs = sorted({c.noise.dof for c in sets})
        if dofs == [0]:
            seeds = "one seed per row: the sets say which trained models the examples separate, not which strategies"
        else:
            span = f"{dofs[0]}" if len(dofs) == 1 else f"{dofs[0]}-{dofs[-1]}"
            seeds = f"seed variance pooled over each column's rows, on {span} degrees of freedom"
        notes.append(f"† in its column's best set (bold: the best mean): the rows the data cannot exclude from being "
                     f"best at α = {ALPHA}, for each column as a whole ({METHOD} over the column's rows, paired over the "
                     f"same examples; {seeds})")
    label = lambda i: " · ".join(board.rows[i])  # noqa: E731
    untested = sum(c.untested for c in board.columns)
    if untested:
        notes.append(f"{untested} cell(s) are in no best-set test (no stored predictions, or scored on other "
                     f"examples): they carry no † either way")
    scores = [c for c in board.columns if c.kind == "score" and c.key != "average"]
    nan = [f"{label(i)} · {c.key} ({cell.dropped})" for c in scores for i, cell in enumerate(c.cells) if cell.dropped]
    if nan:
        notes.append(f"⚠ runs with no score (NaN) are left out of every statistic: {', '.join(nan)}")
    far = [f"{label(i)} · {c.key} (seed {', '.join(map(str, cell.outliers))})"
           for c in scores for i, cell in enumerate(c.cells) if cell.outliers]
    if far:
        notes.append(f"‡ a seed far from its row's others (more than {stats.OUTLIER_SPREADS:g} robust standard "
                     f"deviations of its column and {stats.OUTLIER_POINTS:g} point from the row's median; with 2 seeds "
                     f"both are named) or a diverged run: {', '.join(far)}; the interval and the best set assume none")
    return notes


def _notes(results: Results, board: Board) -> list[str]:
    notes = diverged_note(results)
    if flagged := {t: found for t, found in results.overlaps.items() if found[0] and t in results.task_names}:
        notes.append("⚠ eval overlaps train: " + "; ".join(
            f"{t}: {n} of {rows} eval examples ({n / rows:.0%}) overlap train" for t, (n, rows) in flagged.items())
            + " (a shared 13-gram, or the whole normalised text under 13 words; `harness examples SUITE --task T "
              "--overlap` lists them)")
    if any(c.kind == "score" and any(cell.n > 1 for cell in c.cells) for c in board.columns):
        notes.append(f"mean ± std over seeds; {board.interval} (mean ± t·s/√n) in the CSV / JSON")
    notes += _set_notes(board)
    if len(results.trials):
        choices = results.choices()
        tuned = sorted({s for (_, _, s) in choices})
        trials = sorted({c.tried for c in choices.values()})
        stopped = " run to the end, others stopped early on dev" if any(c.pruned for c in choices.values()) else ""
        notes.append(f"tuned on dev: {', '.join(tuned)} ({'-'.join(map(str, trials[::len(trials) - 1 or 1]))} "
                     f"trials per cell{stopped}; the chosen setting on every seed, scored on eval; settings, trials "
                     f"and tuning time in the tuning view)")
        if short := sum(c.tried + c.pruned < c.settings and not c.spent for c in choices.values()):
            notes.append(f"⚠ {short} of {len(choices)} tuned cells chose from a sweep not yet done (or with trials "
                         f"that cannot run): their setting may change once it is (see the tuning view)")
    later = Counter(m for names in results.runs.report_time_metrics for m in names)
    if later:  # added to a card after its runs: scored from their stored predictions, no rerun
        notes.append("computed from the stored predictions after the runs: "
                     + ", ".join(f"{m} ({n} runs)" for m, n in sorted(later.items())))
    computes = Counter(describe(c) for c in results.runs.compute)
    if computes and set(computes) != {describe(CPU_COMPUTE)}:  # where the runs trained, when not all on a CPU
        notes.append("trained on " + ", ".join(f"{text} ({n} runs)" if len(computes) > 1 else text
                                               for text, n in computes.most_common()))
    selected = results.runs[results.runs.selected_on.notna() & (results.runs.selected_on == results.runs.reported_on)]
    if len(selected):
        splits = ", ".join(sorted(set(selected.reported_on)))
        notes.append(f"⚠ {len(selected)} of {len(results.runs)} runs chose their checkpoint on the split they report "
                     f"({splits}): those scores are optimistic")
    return notes

