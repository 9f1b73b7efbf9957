"""The robustness view: each task's score on its more evaluation sets (the card's extra splits, and
the suite's perturbations of eval: harness.run.eval_sets), next to the score on eval, with the drop
from eval. A perturbed set holds eval's examples, so its drop gets a paired test: whether the drop
holds for these trained models, tested with the examples as the unit (harness.report.stats.drop_test),
Holm-corrected over the board's tests; an extra split holds other examples, so its drop is untested."""

from __future__ import annotations

import math

import numpy as np

from harness.config.registry import METRICS
from harness.report import stats
from harness.report.board import Board, Cell, Column
from harness.report.cells import diverged_note, place
from harness.report.results import Results


def robustness_boards(results: Results, task: str | None) -> list[Board]:
    return [board for name in ([task] if task else results.task_names) if (board := _task_board(results, name))]


def _task_board(results: Results, task: str) -> Board | None:
    runs, metric = results.runs[results.runs.task == task], METRICS.get(results.tasks[task]["primary"])
    rows = [row for row in results.pairs() if ((runs.model == row[0]) & (runs.strategy == row[1])).any()]
    clean, sets, infos = {}, {}, {}  # row -> [(seed, predictions, references)]; set -> row -> runs; set -> infos
    for row in rows:
        clean[row] = []
        for run in runs[(runs.model == row[0]) & (runs.strategy == row[1])].itertuples():
            kept, more = results.predictions(run.run_id), results.eval_sets(run.run_id)
            if kept is None or not more:
                continue
            clean[row].append((int(run.seed), kept[0], kept[1]))
            for name, found in more.items():
                sets.setdefault(name, {}).setdefault(row, []).append((int(run.seed), found["predictions"],
                                                                      found["references"]))
                infos.setdefault(name, []).append(found["info"])
    if not sets:
        return None
    columns = [Column("eval", f"eval ({metric.name})", "score", _scores(rows, clean, metric))]
    tests = {}
    for name, found in sets.items():
        scores = _scores(rows, found, metric)
        drops, p_cells = [], []
        for row, score, base in zip(rows, scores, columns[0].cells):
            pairs = {s for s, _, _ in found.get(row, [])} & {s for s, _, _ in clean[row]}
            both = [(metric(c[1], c[2]) - metric(p[1], p[2])) for c in clean[row] for p in found.get(row, [])
                    if c[0] == p[0] and c[0] in pairs]
            drops.append(Cell(mean=float(np.mean(both)), n=len(both)) if both else Cell())
            p_cells.append(Cell())
            if infos[name][0]["kind"] == "perturbation" and both:
                tested = stats.drop_test(clean[row], found[row], metric)
                if tested is not None and not math.isnan(tested.p_value):
                    tests[(name, row)] = tested.p_value
                    p_cells[-1].test = tested.test
        place(drops, lowest=True)
        columns += [Column(name, f"{name}", "score", scores), Column(f"{name}_drop", f"{name} drop", "change", drops),
                    Column(f"{name}_p", f"{name} p", "p", p_cells)]
    adjusted = stats.holm(tests)
    for (name, row), p in adjusted.items():
        cell = next(c for c in columns if c.key == f"{name}_p").cells[rows.index(row)]
        cell.mean, cell.p_value, cell.n = p, p, 1
    notes = [f"{name}: {_said(infos[name])}" for name in sets]
    notes.append(f"drop: the eval score minus the set's, in points, mean over the seeds run on both; p: the paired "
                 f"test of that drop on the same examples, each seed's models held fixed (is the drop more than the "
                 f"choice of examples explains?), Holm-corrected over this board's {len(tests)} test(s); an extra split "
                 f"holds other examples: untested")
    return Board(f"{results.name}: robustness · {task}", ["model", "strategy"], rows, columns,
                 notes + diverged_note(results, task))


def _scores(rows: list[tuple], found: dict, metric) -> list[Cell]:
    cells = []
    for row in rows:
        values = [metric(p, r) for _, p, r in found.get(row, [])]
        summary = stats.summarize(values)
        cells.append(Cell(mean=summary.mean, std=summary.std, low=summary.low, high=summary.high, n=summary.n)
                     if values else Cell())
    place(cells)
    return cells


def _said(infos: list[dict]) -> str:
    """What a set is, in words, from its runs' infos (the first; changed rows as their range)."""
    info = infos[0]
    if info["kind"] == "split":
        return f"the card's split {info['split']!r}, {info['rows']} rows"
    changed = sorted({(i["rows"], i["changed_rows"]) for i in infos}, reverse=True)  # by the eval rows scored
    site = "contractible phrases" if info["perturbation"] == "contractions" else "words"
    return (f"{info['perturbation']} on {info['share']:.0%} of the {site} of {', '.join(info['columns'])} in eval "
            f"({info['of']}), seed {info['seed']}: " + "; ".join(f"{c} of {n} rows changed" for n, c in changed))
