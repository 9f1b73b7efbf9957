"""Teachers that are cells of the suite: `distill: {teacher: {strategy: <row>, model: <alias>}}`.

A student distils from the teacher cell with the same task and seed. That cell keeps its model
(`save_model`, which no run id hashes), and the student's arguments name it by its run id
(`run:<id>`), so the student's id changes whenever the teacher's does. The student waits in the
grid until its teacher is done (harness.sweep.grid), as a sweep's finals wait for their trials.
"""

from __future__ import annotations

from typing import Any

from harness.base.errors import ConfigError
from harness.strategies.distill import TeacherCell


def teacher_cells(strategies: dict[str, tuple[str, dict[str, Any], Any]]) -> dict[str, TeacherCell]:
    """{row label: its teacher cell} of the rows that distil from a cell of the suite."""
    out = {}
    for label, (_, _, recipe) in strategies.items():
        part = recipe.parts.get("distill")
        if part is not None and isinstance(part.args.teacher, TeacherCell):
            out[label] = part.args.teacher
    return out


def check_teachers(loaded, where: str) -> None:
    """Refuse, in one line, a teacher cell the suite does not have: an unknown model or row, the
    student itself, another student, or a row its sweep tunes (its chosen setting is not known
    before the sweep ends)."""
    suite, teachers = loaded.suite, teacher_cells(loaded.strategies)
    for label, teacher in teachers.items():
        key = f"{where}: strategies.{label}.distill.teacher"
        if teacher.model is not None and teacher.model not in suite.models:
            raise ConfigError(f"{key}.model: {teacher.model!r} is not a model of the suite ({', '.join(suite.models)})")
        if teacher.strategy not in loaded.strategies:
            raise ConfigError(f"{key}.strategy: {teacher.strategy!r} is not a strategy row of the suite "
                              f"({', '.join(loaded.strategies)})")
        if teacher.strategy in teachers:
            raise ConfigError(f"{key}.strategy: {teacher.strategy!r} distils from a teacher itself; a teacher "
                              f"cell must train on the task alone")
        models = [teacher.model] if teacher.model else list(suite.models)
        if suite.sweep and any(s.when.matches(model, task, *suite.axes(teacher.strategy))
                               for s in suite.sweep.spaces for task in loaded.cards for model in models):
            raise ConfigError(f"{key}: the sweep tunes row {teacher.strategy!r}; a teacher must be a cell "
                              f"that is not tuned")


def with_teacher(args: dict[str, Any], name: str, run_id: str) -> dict[str, Any]:
    """A student's suite arguments with its teacher named by run id (`name`: the strategy it uses;
    a distill part alone holds the teacher at the top)."""
    if name == "distill":
        return args | {"teacher": f"run:{run_id}"}
    return args | {"distill": dict(args["distill"]) | {"teacher": f"run:{run_id}"}}


def vocabulary_mismatch(loaded, spec) -> str | None:
    """Why a student cannot read its teacher cell's inputs (they tokenize differently), or None."""
    teacher = teacher_cells(loaded.strategies).get(spec.strategy_key)
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
