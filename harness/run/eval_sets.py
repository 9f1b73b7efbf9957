"""A cell's evaluation sets beyond eval: the card's extra splits (`splits.extra`, an out-of-domain
set) and, with the suite's `robustness`, seeded perturbations of eval (harness.tasks.perturb).
Each is predicted by the cell's final model as eval is, and kept with the record (its predictions,
references and class probabilities: the store's eval_sets table), so that every score on it is
computed at report time, as eval's are."""

from __future__ import annotations

from dataclasses import dataclass, field

import datasets

from harness.tasks.perturb import perturbed


@dataclass
class EvalSet:
    """One more evaluation set of a task: its rows, what it is, and once preprocessed its features."""

    rows: datasets.Dataset
    info: dict
    features: datasets.Dataset | None = None
    found: dict = field(default_factory=dict)  # predictions, references, probabilities


def eval_sets(task_type, data, cfg, robustness) -> dict[str, EvalSet]:
    """The card's extra splits and, with the suite's `robustness`, eval's perturbed copies (drawn on the
    whole eval split, so that a cell scored on its first N rows sees the same text as one scored on
    all), each cut to the first max_eval_samples rows, as eval is."""
    sets, n = {}, cfg.max_eval_samples

    def head(rows):
        return rows.select(range(min(n, len(rows)))) if n else rows

    for name, rows in data.extra.items():
        sets[name] = EvalSet(head(rows), {"kind": "split", "split": name, "rows": len(head(rows))})
    for kind, share in (robustness.perturbations.items() if robustness else ()):
        rows, changed = perturbed(data.eval, task_type.perturbed_columns(), kind, share, robustness.seed)
        rows = head(rows)
        name = kind if kind not in sets else f"eval+{kind}"
        sets[name] = EvalSet(rows, {"kind": "perturbation", "perturbation": kind, "share": share,
                                    "seed": robustness.seed, "of": data.eval_source, "rows": len(rows),
                                    "changed_rows": sum(c > 0 for c in changed[:len(rows)]),
                                    "columns": task_type.perturbed_columns()})
    return sets


def kept(sets: dict[str, EvalSet]) -> dict[str, dict] | None:
    """What a record keeps of its task's sets: {name: {predictions, references, probabilities, info}}."""
    return {name: {**one.found, "info": one.info} for name, one in sets.items()} or None
