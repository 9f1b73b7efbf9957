"""Which eval examples the rows of a board get right and wrong, from the predictions stored with
each run: the examples one row gets right in every seed and another wrong in every seed, the
examples every row gets wrong in every seed, and a classification cell's confusion matrix.

Right and wrong are the task type's (TaskType.right): a class or a sentence's tag sequence equal
to the reference, a SQuAD answer that matches one reference exactly once normalised, a generated
text whose own score on the card's primary metric reaches 50.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.base.errors import HarnessError
from harness.report.results import Results

Right = Callable[[object, object], bool]


@dataclass
class Flips:
    """Of `task`'s `examples` eval examples (positions): those row `a` gets right in each of its
    seeds and row `b` wrong in each of its, the other way round, and those every row of the board
    gets wrong in every seed."""

    task: str
    a: tuple[str, str]
    b: tuple[str, str]
    examples: int
    a_not_b: list[int]
    b_not_a: list[int]
    all_wrong: list[int]
    seeds: tuple[int, int]


def outcomes(results: Results, row: tuple[str, str], task: str, right: Right) -> tuple[np.ndarray, list] | None:
    """(seeds x examples, True where right; the references) of a row on a task; None where the row
    has no run there or a run kept no predictions."""
    runs = results.runs
    mine = runs[(runs.model == row[0]) & (runs.strategy == row[1]) & (runs.task == task)].sort_values("seed")
    table, references = [], None
    for run_id in mine.run_id:
        kept = results.predictions(run_id)
        if kept is None:
            return None
        predictions, refs = kept
        if references is not None and refs != references:
            raise HarnessError(f"{task}: the runs of {' · '.join(row)} were scored on different examples")
        references = refs
        table.append([right(p, r) for p, r in zip(predictions, refs)])
    return (np.array(table, dtype=bool), references) if table else None


def flips(results: Results, a: tuple[str, str], b: tuple[str, str], task: str, right: Right) -> Flips:
    """The examples rows `a` and `b` disagree on in every seed, and those every row gets wrong."""
    found = {}
    for row in results.pairs():
        if (got := outcomes(results, row, task, right)) is not None:
            found[row] = got
    for row in (a, b):
        if row not in found:
            raise HarnessError(f"{task}: no stored predictions of {' · '.join(row)} (rows with them: "
                               f"{', '.join(' · '.join(r) for r in found) or 'none'})")
    (mine, references), (theirs, other) = found[a], found[b]
    if references != other:
        raise HarnessError(f"{task}: {' · '.join(a)} and {' · '.join(b)} were scored on different examples")
    same = [table for table, refs in found.values() if refs == references]
    wrong_everywhere = ~np.concatenate(same).any(axis=0)
    return Flips(task, a, b, len(references), np.flatnonzero(mine.all(0) & ~theirs.any(0)).tolist(),
                 np.flatnonzero(theirs.all(0) & ~mine.any(0)).tolist(), np.flatnonzero(wrong_everywhere).tolist(),
                 (len(mine), len(theirs)))


def confusion(predictions: list, references: list, labels: list) -> np.ndarray:
    """labels x labels counts: row the reference, column the prediction (scikit-learn's layout)."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(references, predictions, labels=labels)
