"""Cells of the suite that other cells learn from, and so run first.

- A distillation teacher, `distill: {teacher: {strategy: <row>, model: <alias>}}`: the cell of
  that row on the same task and seed (the student's own model unless `model` says).
- An intermediate task, `start: {strategy: <row>, task: <task>}`: the cell of that row on the same
  model and seed trained on another task first; this cell's body starts from its fine-tuned body
  (intermediate-task transfer, as jiant does: MNLI, then RTE).

Such a cell keeps its model (`save_model`, which no run id hashes), and the cells that learn from
it name it by its run id (`run:<id>`), so their ids change whenever its does. They wait in the
grid until it is done (harness.sweep.grid), as a sweep's finals wait for their trials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.base.errors import ConfigError
from harness.strategies.distill import TeacherCell
from harness.strategies.recipe import StartCell


@dataclass(frozen=True)
class Upstream:
    """One cell a row learns from: `role` "distill" (a teacher) or "start" (an intermediate task)."""

    role: str
    strategy: str
    model: str | None = None  # None: the learning cell's own model
    task: str | None = None  # None: the learning cell's own task

    @property
    def key(self) -> str:
        return "distill.teacher" if self.role == "distill" else "start"


def upstream_cells(strategies: dict[str, tuple[str, dict[str, Any], Any]]) -> dict[str, list[Upstream]]:
    """{row label: the cells it learns from} of the rows that learn from cells of the suite."""
    out: dict[str, list[Upstream]] = {}
    for label, (_, _, recipe) in strategies.items():
        part = recipe.parts.get("distill")
        if part is not None and isinstance(part.args.teacher, TeacherCell):
            out.setdefault(label, []).append(Upstream("distill", part.args.teacher.strategy, part.args.teacher.model))
        if isinstance(recipe.start, StartCell):
            out.setdefault(label, []).append(Upstream("start", recipe.start.strategy, task=recipe.start.task))
    return out


def check_upstream(loaded, where: str) -> None:
    """Refuse, in one line, a cell to learn from that the suite does not have: an unknown model,
    task or row, a row that learns from another itself, or a row its sweep tunes (its chosen
    setting is not known before the sweep ends)."""
    suite, found = loaded.suite, upstream_cells(loaded.strategies)
    for label, cells in found.items():
        for cell in cells:
            key = f"{where}: strategies.{label}.{cell.key}"
            if cell.model is not None and cell.model not in suite.models:
                raise ConfigError(f"{key}.model: {cell.model!r} is not a model of the suite ({', '.join(suite.models)})")
            if cell.task is not None and cell.task not in loaded.cards:
                raise ConfigError(f"{key}.task: {cell.task!r} is not a task of the suite ({', '.join(loaded.cards)})")
            if cell.strategy not in loaded.strategies:
                raise ConfigError(f"{key}.strategy: {cell.strategy!r} is not a strategy row of the suite "
                                  f"({', '.join(loaded.strategies)})")
            if cell.strategy in found:
                raise ConfigError(f"{key}.strategy: {cell.strategy!r} learns from a cell itself; the cell to learn "
                                  f"from must train alone")
            models = [cell.model] if cell.model else list(suite.models)
            tasks = [cell.task] if cell.task else list(loaded.cards)
            if suite.sweep and any(s.when.matches(model, task, *suite.axes(cell.strategy))
                                   for s in suite.sweep.spaces for task in tasks for model in models):
                raise ConfigError(f"{key}: the sweep tunes row {cell.strategy!r}; the cell to learn from must be "
                                  f"one that is not tuned")


def with_runs(args: dict[str, Any], name: str, runs: dict[str, str]) -> dict[str, Any]:
    """A row's suite arguments with the cells it learns from named by run id ({role: run id};
    `name`: the strategy it uses: a distill part alone holds its teacher at the top)."""
    args = dict(args)
    if "start" in runs:
        args["start"] = f"run:{runs['start']}"
    if "distill" in runs:
        if name == "distill":
            args["teacher"] = f"run:{runs['distill']}"
        else:
            args["distill"] = dict(args["distill"]) | {"teacher": f"run:{runs['distill']}"}
    return args


def vocabulary_mismatch(loaded, spec) -> str | None:
    """Why a student cannot read its teacher cell's inputs (they tokenize differently), or None."""
    teacher = next((c for c in upstream_cells(loaded.strategies).get(spec.strategy_key, []) if c.role == "distill"),
                   None)
    if teacher is None or (teacher.model or spec.model) == spec.model:
        return None
    ours, theirs = loaded.backbones.get(spec.model), loaded.backbones.get(teacher.model)
    if isinstance(ours, str) or isinstance(theirs, str):
        return None  # the backbone's own refusal says why
    try:
        same = _vocabulary(ours) == _vocabulary(theirs)
    except Exception as exc:  # a tokenizer that cannot be read: the run would fail on it too
        return f"strategy {spec.strategy_key!r}: cannot compare the tokenizers of {spec.model!r} and {teacher.model!r}: {exc}"
    if same:
        return None
    return (f"strategy {spec.strategy_key!r}: teacher {teacher.model!r} and student {spec.model!r} tokenize "
            f"differently; distillation feeds the teacher the student's token ids, which needs one vocabulary")


_VOCABULARIES: dict[tuple, str] = {}


def _vocabulary(backbone) -> str:
    """backbone.vocabulary(), read once per process for each backbone."""
    key = (backbone.kind, backbone.location, backbone.fingerprint)
    if key not in _VOCABULARIES:
        _VOCABULARIES[key] = backbone.vocabulary()
    return _VOCABULARIES[key]
