"""How well a classifier's probabilities say how often it is right: expected calibration error
(10 equal-width bins of the top class's probability, as HELM computes it: the bins' gaps between
mean confidence and accuracy, weighted by their share of examples) and the Brier score (the mean
over examples of the squared distance between the probability vector and the one-hot reference),
from the class probabilities stored with each run. Records from before harness kept them have none,
and are counted as such, never guessed."""

from __future__ import annotations

import numpy as np

from harness.report.board import Board, Cell, Column
from harness.report.cells import diverged_note, place
from harness.report.results import Results

BINS = 10


def ece(probabilities, references, bins: int = BINS) -> float:
    """Expected calibration error (0 to 1) over equal-width bins of the top class's probability."""
    p = np.asarray(probabilities, dtype=float)
    confidence, predicted = p.max(axis=1), p.argmax(axis=1)
    right = predicted == np.asarray(references)
    # bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 goes to the first
    which = np.clip(np.ceil(np.round(confidence * bins, 9)).astype(int) - 1, 0, bins - 1)  # 0.7 * 10 is 7.000...1
    total = 0.0
    for b in range(bins):
        mine = which == b
        if mine.any():
            total += mine.mean() * abs(confidence[mine].mean() - right[mine].mean())
    return float(total)


def brier(probabilities, references) -> float:
    """Mean squared distance between each probability vector and its one-hot reference (0 to 2)."""
    p = np.asarray(probabilities, dtype=float)
    onehot = np.eye(p.shape[1])[np.asarray(references)]
    return float(((p - onehot) ** 2).sum(axis=1).mean())


def calibration_board(results: Results, task: str | None) -> list[Board]:
    """Rows x (ECE, Brier) of each classification task whose runs kept probabilities (mean over seeds)."""
    rows, columns, missing = results.pairs(), [], 0
    for name in [task] if task else results.task_names:
        runs = results.runs[results.runs.task == name]
        cells = {"ece": [], "brier": []}
        for model, strategy in rows:
            values = {"ece": [], "brier": []}
            for run_id in runs[(runs.model == model) & (runs.strategy == strategy)].run_id:
                found, kept = results.probabilities(run_id), results.predictions(run_id)
                if found is None or kept is None:
                    missing += 1
                    continue
                values["ece"].append(ece(found, kept[1]))
                values["brier"].append(brier(found, kept[1]))
            for key in cells:
                cells[key].append(Cell(mean=float(np.mean(values[key])), n=len(values[key])) if values[key] else Cell())
        if any(c.n for c in cells["ece"]):
            for key, title in (("ece", "ECE"), ("brier", "Brier")):
                place(cells[key], lowest=True)
                columns.append(Column(f"{name}_{key}", f"{name} {title}", "fraction", cells[key]))
    if not columns:
        return []
    notes = [f"ECE: expected calibration error over {BINS} equal-width bins of the top class's probability (as "
             f"HELM); Brier: mean squared distance of the probabilities from the one-hot reference; lower is better "
             f"for both; mean over seeds"]
    if missing:
        notes.append(f"{missing} run(s) kept no class probabilities (not classification, or recorded before "
                     f"harness kept them): not shown, not guessed")
    return [Board(f"{results.name}: calibration", ["model", "strategy"], rows, columns, notes + diverged_note(results))]
