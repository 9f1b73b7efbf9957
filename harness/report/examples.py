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
from harness.report.board import Board, Cell, Column, Listing
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


LIMIT = 10  # examples listed per list in the HTML report


def example_blocks(results: Results, cards: dict, limit: int = LIMIT) -> list:
    """The HTML report's examples, per task: what its two best rows (by mean score) disagree on in
    every seed, what every row gets wrong, their confusion matrices (classification), and the eval
    examples that overlap train, each with its text."""
    from harness.config.registry import task_type_of
    from harness.tasks.data import load_splits
    from harness.tasks.overlap import overlap

    blocks: list = []
    for task in results.task_names:
        if task not in cards:
            continue
        task_type, data = task_type_of(cards[task]), load_splits(cards[task])
        texts = task_type.row_texts(data.eval)
        runs = results.runs[results.runs.task == task]
        means = runs.groupby(["model", "strategy"]).score.mean().sort_values(ascending=False)
        ranked = [row for row in means.index if row in results.pairs()]
        if len(ranked) >= 2:
            blocks += _flip_listings(results, task, ranked[0], ranked[1], task_type, texts, limit)
        if labels := getattr(task_type, "confusion_labels", lambda: None)():
            blocks += [confusion_board(results, task, row, labels) for row in ranked[:2]]
        train = task_type.row_texts(data.train)
        found = overlap(train, texts)
        items = [(f"eval #{j}", f"{texts[j]}  ⟵  train #{i}: {train[i]}") for j, i in list(found.found.items())[:limit]]
        blocks.append(Listing(f"{task}: {len(found.found)} of {found.rows} eval examples overlap train", items,
                              max(0, len(found.found) - limit),
                              ["a shared 13-gram, or the whole normalised text under 13 words (harness.tasks.overlap)"]))
    return blocks


def _flip_listings(results: Results, task: str, a, b, task_type, texts: list[str], limit: int) -> list:
    try:
        found = flips(results, a, b, task, task_type.right)
    except (NotImplementedError, HarnessError) as exc:
        return [Listing(f"{task}: which examples flip", [], notes=[str(exc)])]
    out = []
    for title, listed in ((f"right in every seed of {' · '.join(a)}, wrong in every seed of {' · '.join(b)}",
                           found.a_not_b),
                          (f"right in every seed of {' · '.join(b)}, wrong in every seed of {' · '.join(a)}",
                           found.b_not_a),
                          ("wrong in every seed of every row", found.all_wrong)):
        items = [(f"eval #{j}", texts[j] if j < len(texts) else "(text not found)") for j in listed[:limit]]
        out.append(Listing(f"{task}: {len(listed)} of {found.examples} eval examples {title}", items,
                           max(0, len(listed) - limit)))
    out[0].notes.append(f"the task's two best rows by mean score; harness examples SUITE --task {task} --rows A B "
                        f"compares any two")
    return out


def confusion_board(results: Results, task: str, row, labels: list[str]) -> Board:
    runs = results.runs
    counts = np.zeros((len(labels), len(labels)))
    for run_id in runs[(runs.model == row[0]) & (runs.strategy == row[1]) & (runs.task == task)].run_id:
        if (kept := results.predictions(run_id)) is not None:
            counts += confusion(kept[0], kept[1], list(range(len(labels))))
    columns = [Column(f"predicted_{i}", f"predicted {name}", "count", [Cell(mean=float(v), n=1) for v in counts[:, i]])
               for i, name in enumerate(labels)]
    return Board(f"{task} · {' · '.join(row)}: confusion over its seeds", ["reference"], [(n,) for n in labels], columns,
                 ["rows: the reference class; columns: the predicted class; summed over the row's seeds"])
