"""The plan of a suite: each cell's status (done, to do, failed, running elsewhere, cannot run and
why), its peak memory estimate and, when probed, its time, and the jobs an executor runs.

`make_plan` decides all of it once; `harness plan` shows it and `harness run` hands its jobs to an
executor. A cell cannot run for a reason known before training: its backbone does not resolve, a
data file is missing, the strategy cannot apply to the model (checked on the meta device), its
lengths need more positions than the backbone has, or its training step fails or does not fit in
the memory budget (checked on fake tensors).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.base.device import gib, impossible
from harness.base.errors import HarnessError, first_line
from harness.config.card import TaskCard
from harness.config.registry import task_type_of
from harness.config.schemas import train_fields
from harness.config.spec import RunSpec
from harness.config.suite import LoadedSuite
from harness.config.upstream import vocabulary_mismatch
from harness.hub import reach as hub
from harness.plan.estimate import EstimateOf, MemoryEstimate, cell_memory
from harness.plan.probe import TimeEstimate, probe_cells
from harness.run.backbones import Backbone
from harness.store.database import Store
from harness.strategies import Strategy

# What a cell's status can be, in the order a plan counts them.
STATUSES = ("done", "to do", "failed", "running", "cannot run")


@dataclass(frozen=True)
class Cell:
    """One cell of the grid as the plan sees it."""

    spec: RunSpec
    status: str  # one of STATUSES
    reason: str | None = None  # cannot run: why; failed: the error (it will be retried); running: who holds it
    memory: MemoryEstimate | None = None  # for cells still to run
    time: TimeEstimate | str | None = None  # with a probe: its estimate, or why the probe failed
    job: int = 0  # index of the cell's job in Plan.jobs


@dataclass(frozen=True)
class Plan:
    """Every cell of a suite and the jobs that run them (see `jobs`), decided once by `make_plan`."""

    suite: LoadedSuite
    store: Store
    cells: tuple[Cell, ...]
    jobs: tuple[tuple[RunSpec, ...], ...]  # every cell's job, those that cannot run included

    @property
    def specs(self) -> list[RunSpec]:
        return [cell.spec for cell in self.cells]

    def where(self, *statuses: str) -> list[Cell]:
        return [cell for cell in self.cells if cell.status in statuses]

    @property
    def refused(self) -> dict[str, str]:
        """{run id: why it cannot run}."""
        return {cell.spec.id: cell.reason or "" for cell in self.where("cannot run")}

    def runnable(self) -> list[list[RunSpec]]:
        """The jobs to hand an executor: every job less its cells that cannot run (cells done are
        kept: the executor counts them as already done, and checks the store again as it goes)."""
        refused = self.refused
        kept = [[s for s in job if s.id not in refused] for job in self.jobs]
        return [job for job in kept if job]

    def peaks(self) -> dict[str, int]:
        """{run id: estimated peak bytes} of the cells whose training step could be estimated."""
        return {c.spec.id: c.memory.peak for c in self.cells if c.memory and not c.memory.error}

    def counts(self) -> dict[str, int]:
        found = [cell.status for cell in self.cells]
        return {status: found.count(status) for status in STATUSES if status in found}

    def probed(self, started: Callable[[int, int, RunSpec], None] | None = None) -> Plan:
        """This plan with a time estimate (or why its probe failed) for every cell to do or failed;
        see probe.probe_cells. `started(i, n, spec)` hears of each probe."""
        pending = {cell.spec.id: cell for cell in self.where("to do", "failed")}
        times, errors = probe_cells([c.spec for c in pending.values()], self.store.path.parent / "runs", started)
        return replace(self, cells=tuple(
            replace(cell, time=times.get(cell.spec.id) or errors.get(cell.spec.id)) if cell.spec.id in pending
            else cell for cell in self.cells))


def make_plan(loaded: LoadedSuite, specs: list[RunSpec], store: Store, budget: int | None, device: str) -> Plan:
    """The plan of `specs` (cells of `loaded`) against `store`: `preflight` for every cell, then a
    peak memory estimate for each cell not done that passed it, refusing those over `budget` bytes
    (None: refuse only cells whose training step fails)."""
    refused = preflight(loaded, specs)
    statuses = store.statuses([s.id for s in specs])
    running = store.claimed_elsewhere([s.id for s in specs])
    done = {run_id for run_id, (status, _) in statuses.items() if status == "done"}
    pending = [s for s in specs if s.id not in refused and s.id not in done]
    estimates, over = memory_preflight(loaded, pending, budget, device, store.path.parent / "cache" / "estimates")
    refused |= over
    grouped = jobs(specs)
    job_of = {spec.id: i for i, job in enumerate(grouped) for spec in job}
    cells = []
    for spec in specs:
        status, error = statuses.get(spec.id, (None, None))
        if spec.id in done:
            status, reason = "done", None
        elif spec.id in refused:
            status, reason = "cannot run", refused[spec.id]
        elif spec.id in running:
            status, reason = "running", running[spec.id]
        elif status == "failed":
            reason = error
        else:
            status, reason = "to do", None
        cells.append(Cell(spec, status, reason, estimates.get(spec.id), None, job_of[spec.id]))
    return Plan(loaded, store, tuple(cells), tuple(tuple(job) for job in grouped))


def jobs(specs: list[RunSpec]) -> list[list[RunSpec]]:
    """Specs grouped into what one worker runs at once: a cell alone, or every cell of one joint
    model (same backbone, strategy row, seed and training settings), in first-seen order."""
    groups: dict[tuple, list[RunSpec]] = {}
    for spec in specs:
        key = (spec.model, spec.strategy, spec.seed, spec.train.model_dump_json(exclude=train_fields("per_task")),
               tuple(spec.partners)) \
            if spec.partners else (spec.id,)
        groups.setdefault(key, []).append(spec)
    return list(groups.values())


def preflight(loaded: LoadedSuite, specs: list[RunSpec]) -> dict[str, str]:
    """{run id: why it cannot run} for cells that would fail for a reason known before training.

    Each (backbone, task head, strategy) is checked once, on a model built on the meta device:
    no weights are loaded and no memory is used.
    """
    refused: dict[str, str] = {}
    checked: dict[tuple, str | None] = {}
    configs: dict[tuple, Any] = {}
    unavailable: dict[tuple, str | None] = {}
    for group in jobs(specs):
        if group[0].partners and (reason := _check_joint(loaded, group[0])):
            refused |= {spec.id: reason for spec in group}
    for spec in specs:
        if spec.id in refused:
            continue
        backbone = loaded.backbones.get(spec.model)
        if isinstance(backbone, str):
            refused[spec.id] = backbone
            continue
        if reason := impossible(spec.compute):
            refused[spec.id] = reason
            continue
        card = loaded.cards[spec.task]
        key = (spec.model, spec.task)
        if key not in unavailable:
            unavailable[key] = _unavailable(spec, backbone, card)
        if unavailable[key]:
            refused[spec.id] = unavailable[key]
            continue
        missing = _missing_files(card)
        if missing:
            refused[spec.id] = f"task {spec.task!r}: data file missing: {', '.join(missing)}"
            continue
        task_type = task_type_of(card)
        head = json.dumps(task_type.head(), sort_keys=True, default=str)
        key = (spec.model, card.type, head, spec.strategy_key)
        if key not in checked:
            checked[key] = _check_cell(backbone, task_type, loaded.strategies[spec.strategy_key][2], spec.strategy_key)
        if not checked[key] and (spec.model, head) not in configs:
            configs[spec.model, head] = backbone.config(**task_type.head())
        reason = checked[key] or _check_positions(backbone, configs[spec.model, head], task_type, spec) or \
            vocabulary_mismatch(loaded, spec)
        if reason:
            refused[spec.id] = reason
    return refused


def _check_positions(backbone: Backbone, config, task_type, spec: RunSpec) -> str | None:
    """Why the cell's length settings need more positions than the backbone has, or None."""
    limit, needed = backbone.position_limit(config), task_type.positions(spec.train, config)
    if limit is None or needed <= limit:
        return None
    settings = "train.max_length" if needed == spec.train.max_length else \
        "train.max_length + max_target_length (or generation.max_new_tokens)"
    return (f"model {spec.model!r} holds {limit} positions, and {settings} at these settings needs {needed} "
            f"on task {spec.task!r}; lower them to fit")


def memory_preflight(loaded: LoadedSuite, specs: list[RunSpec], budget: int | None, device: str,
                     cache: Path | None = None) -> tuple[dict[str, MemoryEstimate], dict[str, str]]:
    """({run id: its peak memory estimate}, {run id: why it cannot run}) for `specs` (cells that
    passed `preflight`). A cell cannot run when its training step fails on fake tensors, or when it
    needs more than `budget` bytes (None: no limit) and `train.auto_batch_size` could not shrink it
    enough (a per-device batch of 1). One estimate per backbone, head, strategy and shape settings."""
    estimates: dict[str, MemoryEstimate] = {}
    refused: dict[str, str] = {}
    done: dict[str, tuple[MemoryEstimate, str | None]] = {}
    for spec in specs:
        card = loaded.cards[spec.task]
        backbone, strategy = loaded.backbones[spec.model], loaded.strategies[spec.strategy_key][2]
        task_type = task_type_of(card)
        key = json.dumps([spec.model, card.type, task_type.head(), spec.strategy_key, spec.compute["precision"],
                          spec.train.model_dump(mode="json", include=train_fields("shape"))], sort_keys=True, default=str)
        if key not in done:
            of = EstimateOf(backbone, task_type, strategy, spec.train, device, precision=spec.compute["precision"])
            estimate = cell_memory(of, cache)
            done[key] = (estimate, _memory_reason(estimate, of, spec, budget, cache))
        estimates[spec.id], reason = done[key]
        if reason:
            refused[spec.id] = reason
    return estimates, refused


def _memory_reason(estimate: MemoryEstimate, of: EstimateOf, spec: RunSpec, budget: int | None,
                   cache: Path | None) -> str | None:
    label = f"strategy {spec.strategy_key!r} on {spec.model!r}, task {spec.task!r}"
    if estimate.error:
        return f"{label}: a training step fails: {estimate.error}"
    if budget is None or estimate.peak <= budget:
        return None
    if spec.train.auto_batch_size and spec.train.batch_size > 1:
        smallest = cell_memory(of.at_batch(1), cache)
        if smallest.peak <= budget:
            return None  # auto_batch_size will find a batch that fits
        estimate = smallest
    return (f"{label}: needs about {estimate.describe()}, more than the {gib(budget)} available on {of.device}; "
            f"lower train.batch_size or max_length{'' if spec.train.auto_batch_size else ', or set train.auto_batch_size'}")


def _check_joint(loaded: LoadedSuite, spec: RunSpec) -> str | None:
    """Why the tasks of one joint model cannot train together, or None."""
    label, members = spec.strategy_key, list(spec.partners)
    if len(members) < 2:
        return f"strategy {label!r} on {spec.model!r}: joint training needs two tasks or more, has {members}"
    per_task = train_fields("per_task")
    train = loaded.suite.train_for(spec.model, spec.task, label).model_dump(exclude=per_task)
    for task in members:
        other = loaded.suite.train_for(spec.model, task, label).model_dump(exclude=per_task)
        if other != train:
            changed = sorted(k for k in train if train[k] != other[k])
            return (f"strategy {label!r} on {spec.model!r}: tasks {spec.task!r} and {task!r} train with different "
                    f"settings ({', '.join(changed)}); one joint model needs one set of train settings")
    backbone, strategy = loaded.backbones.get(spec.model), loaded.strategies[label][2]
    if isinstance(backbone, Backbone):
        bodies = {}
        for task in members:
            task_type = task_type_of(loaded.cards[task])
            try:
                model = backbone.build(*strategy.architecture(task_type))
            except Exception:
                continue  # the cell's own check says why this head cannot be built
            bodies[task] = type(getattr(model, model.base_model_prefix, model)).__name__
        if len(set(bodies.values())) > 1:
            shown = ", ".join(f"{t}: {b}" for t, b in bodies.items())
            return f"strategy {label!r} on {spec.model!r}: the tasks' models have different backbones ({shown}); joint training shares one"
    if spec.train.early_stopping or spec.train.eval_every_steps:
        return (f"strategy {label!r}: early_stopping / eval_every_steps select on one task's validation split; "
                f"joint training does not support them")
    return None


def _unavailable(spec: RunSpec, backbone: Backbone, card: TaskCard) -> str | None:
    """Why the cell's hub model or hub dataset cannot be had (hub unreachable, not cached), or None."""
    if backbone.kind == "hub" and (reason := hub.refusal(f"model {spec.model!r}", backbone.location,
                                                          backbone.spec.revision, "model", backbone.spec.gguf_file)):
        return reason
    if card.source.kind == "hub":
        return hub.refusal(f"task {spec.task!r}", card.source.hub, card.source.revision, "dataset")
    return None


def _missing_files(card: TaskCard) -> list[str]:
    return [str(card.resolve(p)) for p in (card.source.files or {}).values() if not card.resolve(p).exists()]


def _check_cell(backbone: Backbone, task_type, strategy: Strategy, label: str) -> str | None:
    if strategy.task_types is not None and task_type.type not in strategy.task_types:
        return f"strategy {label!r} applies to {', '.join(sorted(strategy.task_types))} tasks, not {task_type.type}"
    try:
        model = backbone.build(*strategy.architecture(task_type))
    except HarnessError as exc:
        return str(exc)
    except Exception as exc:
        return f"model {backbone.alias!r}: cannot build a {task_type.type} model: {first_line(exc)}"
    reason = task_type.check_model(model)
    if reason:
        return f"task type {task_type.type!r} on {backbone.alias!r}: {reason}"
    reason = strategy.check(model)
    return f"strategy {label!r} on {backbone.alias!r}: {reason}" if reason else None
