"""The forgetting view: how far each row moved its backbone from its own pretraining objective on
the suite's held-out text (harness.run.retention), per task it was fine-tuned on: the objective
after the cell and its change from the pretrained backbone (mean over seeds; lower is better for
both). Runs measured without it, and backbones that cannot be measured, are named, never guessed."""

from __future__ import annotations

import numpy as np

from harness.report.board import Board, Cell, Column
from harness.report.cells import diverged_note, place
from harness.report.results import Results


def forgetting_board(results: Results, task: str | None) -> list[Board]:
    runs = results.runs
    if "retention" not in runs or not any(isinstance(r, dict) for r in runs.retention):
        return []
    rows, columns, before, reasons, unmeasured = results.pairs(), [], {}, {}, 0
    for name in [task] if task else results.task_names:
        mine = runs[runs.task == name]
        after, change = [], []
        for model, strategy in rows:
            found = [r for r in mine[(mine.model == model) & (mine.strategy == strategy)].retention]
            measured = [r for r in found if isinstance(r, dict) and "change" in r]
            unmeasured += sum(not isinstance(r, dict) for r in found)
            for record in found:
                if isinstance(record, dict) and "not_measured" in record:
                    reasons[model] = record["not_measured"]
            for record in measured:
                before[model] = (record["objective"], record["before"], record["texts"], record["tokens"], record["text"])
            after.append(_mean([r["after"] for r in measured]))
            change.append(_mean([r["change"] for r in measured]))
        if any(c.n for c in change):
            place(after, lowest=True)
            place(change, lowest=True)
            columns += [Column(f"{name}_after", f"{name}: after", "fraction", after),
                        Column(f"{name}_change", f"{name}: change", "change", change)]
    notes = ["the backbone's own pretraining objective on held-out text after each cell, and its change from the "
             "pretrained backbone (mean over seeds; lower is better): masked-LM loss for encoders (nats per masked "
             "token, the same seeded masks before and after), perplexity for decoders"]
    notes += [f"{model}: {kind} {value:g} before fine-tuning, on {texts} texts ({tokens} tokens) of {text}"
              for model, (kind, value, texts, tokens, text) in before.items()]
    notes += [f"{model}: not measured: {reason}" for model, reason in reasons.items()]
    if unmeasured:
        notes.append(f"{unmeasured} run(s) ran without the suite's `retention` setting: not shown")
    if not columns and not reasons:
        return []
    return [Board(f"{results.name}: forgetting", ["model", "strategy"], rows, columns, notes + diverged_note(results))]


def _mean(values: list[float]) -> Cell:
    return Cell(mean=float(np.mean(values)), n=len(values)) if values else Cell()

