"""From a suite file to run specs: load and resolve every name, expand the grid, preflight each cell."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.backbones import Backbone, resolve
from harness.config import Suite, TaskCard, TrainConfig, format_error, parse
from harness.data import fingerprint
from harness.device import gib
from harness.errors import ConfigError, HarnessError, unknown
from harness.estimate import SHAPE_SETTINGS, MemoryEstimate, cell_memory
from harness.registry import ADAPTERS, STRATEGIES, TaskCatalogue
from harness.spec import Partner, RunSpec
from harness.strategies import Strategy
from harness.yamlfile import read_yaml


@dataclass
class LoadedSuite:
    """A suite whose every name has been resolved and every argument validated."""

    suite: Suite
    path: Path
    cards: dict[str, TaskCard]
    strategies: dict[str, tuple[str, dict[str, Any], Strategy]]  # label -> (name, arguments, strategy)
    backbones: dict[str, Backbone | str] = field(default_factory=dict)  # alias -> backbone, or why not

    @property
    def name(self) -> str:
        return self.suite.name

    @property
    def store_path(self) -> Path:
        return Path(self.suite.store) if self.suite.store else Path("results") / "harness.sqlite"


def load_suite(path: str | Path, catalogue: TaskCatalogue | None = None) -> LoadedSuite:
    """Parse and resolve a suite file; any problem is a one-line ConfigError before anything runs."""
    path = Path(path)
    where = str(path)
    suite = parse(Suite, read_yaml(path), where)
    catalogue = catalogue or TaskCatalogue()

    cards: dict[str, TaskCard] = {}
    for i, name in enumerate(suite.tasks):
        try:
            card = catalogue.get(name, base=path.parent)
        except ConfigError as exc:
            raise ConfigError(f"{where}: tasks.{i}: {exc}") from None
        cards[card.name] = card

    strategies: dict[str, tuple[str, dict[str, Any], Strategy]] = {}
    for label, raw in suite.strategies.items():
        raw = dict(raw)
        name = raw.pop("use", label)
        if name not in STRATEGIES:
            raise ConfigError(f"{where}: strategies.{label}: {unknown('strategy', name, STRATEGIES.names())}")
        strategies[label] = (name, raw, STRATEGIES.get(name).from_suite(raw, where, f"strategies.{label}"))

    for label, (_, _, strategy) in strategies.items():
        named = (strategy.args.tasks or []) if strategy.joint else []
        for i, task in enumerate(named):
            if task not in cards:
                raise ConfigError(f"{where}: strategies.{label}.tasks.{i}: {unknown('suite task', task, list(cards))}")

    axes = {"model": list(suite.models), "task": list(cards), "strategy": list(strategies)}
    rules = [(f"overrides.{i}.when", o.when) for i, o in enumerate(suite.overrides)]
    rules += [(f"exclude.{i}", rule) for i, rule in enumerate(suite.exclude)]
    for key, when in rules:
        for axis, known in axes.items():
            for name in when.names(axis) or []:
                if name not in known:
                    raise ConfigError(f"{where}: {key}.{axis}: {unknown(axis, name, known)}")
    for i, override in enumerate(suite.overrides):
        for model in suite.models:
            for task in cards:
                for label in strategies:
                    try:
                        suite.train_for(model, task, label)
                    except ValidationError as exc:
                        raise ConfigError(format_error(exc, TrainConfig, where, ("overrides", i, "train"))) from None

    backbones: dict[str, Backbone | str] = {}
    for alias, spec in suite.models.items():
        try:
            backbones[alias] = resolve(alias, spec)
        except ConfigError as exc:
            backbones[alias] = str(exc)
    return LoadedSuite(suite, path, cards, strategies, backbones)


def expand(loaded: LoadedSuite) -> list[RunSpec]:
    """Every model x task x strategy x seed cell, in a stable order, as run specs."""
    suite = loaded.suite
    specs = []
    data_prints = {name: fingerprint(card) for name, card in loaded.cards.items()}
    for alias, model_spec in suite.models.items():
        backbone = loaded.backbones.get(alias)
        model_print = backbone.fingerprint if isinstance(backbone, Backbone) else "unresolved"
        for task, card in loaded.cards.items():
            adapter = ADAPTERS.get(card.type)(card)
            metrics = {name: sig.rsplit("|", 1)[-1] for name, sig in adapter.signatures().items()}
            for label, (name, raw, strategy) in loaded.strategies.items():
                if suite.excluded(alias, task, label):
                    continue
                partners = {}
                if strategy.joint:
                    if strategy.args.tasks is not None and task not in strategy.args.tasks:
                        continue  # the suite's `tasks:` for this strategy leaves this task out
                    members = joint_members(loaded, alias, label)
                    if task in members:
                        partners = {t: Partner(card=loaded.cards[t], data_fingerprint=data_prints[t],
                                               card_path=str(loaded.cards[t].path) if loaded.cards[t].path else None)
                                    for t in members}
                for shots in suite.shots:
                    train = suite.train_for(alias, task, label)
                    if shots is not None:
                        train = train.model_copy(update={"shots": shots})
                    # a suite that sweeps shots shows each k as its own row: 'lora@16'
                    shown = label if len(suite.shots) == 1 else f"{label}@{shots or 'all'}"
                    for seed in suite.seeds:
                        specs.append(RunSpec(
                            suite=suite.name, model=alias, model_spec=model_spec, model_fingerprint=model_print,
                            task=task, card=card, card_path=str(card.path) if card.path else None,
                            data_fingerprint=data_prints[task], strategy=shown, strategy_key=label, strategy_name=name,
                            strategy_args=raw, strategy_resolved=strategy.resolved(), train=train, seed=seed,
                            metrics=metrics, partners=partners,
                        ))
    return specs


def joint_members(loaded: LoadedSuite, model: str, label: str) -> list[str]:
    """The tasks a joint strategy trains together on `model`: those it names (else all the
    suite's tasks) of the types it applies to, less the cells the suite excludes."""
    strategy = loaded.strategies[label][2]
    named = strategy.args.tasks
    return [t for t, card in loaded.cards.items()
            if (named is None or t in named) and card.type in strategy.task_types
            and not loaded.suite.excluded(model, t, label)]


def jobs(specs: list[RunSpec]) -> list[list[RunSpec]]:
    """Specs grouped into what one worker runs at once: a cell alone, or every cell of one joint
    model (same backbone, strategy row, seed and training settings), in first-seen order."""
    groups: dict[tuple, list[RunSpec]] = {}
    for spec in specs:
        key = (spec.model, spec.strategy, spec.seed, spec.train.model_dump_json(exclude={"max_eval_samples"}),
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
        card = loaded.cards[spec.task]
        missing = _missing_files(card)
        if missing:
            refused[spec.id] = f"task {spec.task!r}: data file missing: {', '.join(missing)}"
            continue
        adapter = ADAPTERS.get(card.type)(card)
        head = json.dumps(adapter.head(), sort_keys=True, default=str)
        key = (spec.model, card.type, head, spec.strategy_key)
        if key not in checked:
            checked[key] = _check_cell(backbone, adapter, loaded.strategies[spec.strategy_key][2], spec.strategy_key)
        if not checked[key] and (spec.model, head) not in configs:
            configs[spec.model, head] = backbone.config(**adapter.head())
        reason = checked[key] or _check_positions(backbone, configs[spec.model, head], adapter, spec)
        if reason:
            refused[spec.id] = reason
    return refused


def _check_positions(backbone: Backbone, config, adapter, spec: RunSpec) -> str | None:
    """Why the cell's length settings need more positions than the backbone has, or None."""
    limit, needed = backbone.position_limit(config), adapter.positions(spec.train, config)
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
        adapter = ADAPTERS.get(card.type)(card)
        key = json.dumps([spec.model, card.type, adapter.head(), spec.strategy_key,
                          spec.train.model_dump(mode="json", include=SHAPE_SETTINGS)], sort_keys=True, default=str)
        if key not in done:
            estimate = cell_memory(backbone, adapter, strategy, spec.train, device, cache=cache)
            done[key] = (estimate, _memory_reason(estimate, backbone, adapter, strategy, spec, budget, device, cache))
        estimates[spec.id], reason = done[key]
        if reason:
            refused[spec.id] = reason
    return estimates, refused


def _memory_reason(estimate: MemoryEstimate, backbone: Backbone, adapter, strategy: Strategy, spec: RunSpec,
                   budget: int | None, device: str, cache: Path | None) -> str | None:
    label = f"strategy {spec.strategy_key!r} on {spec.model!r}, task {spec.task!r}"
    if estimate.error:
        return f"{label}: a training step fails: {estimate.error}"
    if budget is None or estimate.peak <= budget:
        return None
    if spec.train.auto_batch_size and spec.train.batch_size > 1:
        smallest = cell_memory(backbone, adapter, strategy, spec.train, device, batch=1, cache=cache)
        if smallest.peak <= budget:
            return None  # auto_batch_size will find a batch that fits
        estimate = smallest
    return (f"{label}: needs about {estimate.describe()}, more than the {gib(budget)} available on {device}; "
            f"lower train.batch_size or max_length{'' if spec.train.auto_batch_size else ', or set train.auto_batch_size'}")


def _check_joint(loaded: LoadedSuite, spec: RunSpec) -> str | None:
    """Why the tasks of one joint model cannot train together, or None."""
    label, members = spec.strategy_key, list(spec.partners)
    if len(members) < 2:
        return f"strategy {label!r} on {spec.model!r}: joint training needs two tasks or more, has {members}"
    # what may differ per task: its evaluation rows; shots come from the suite's axis, equal for all
    per_task = {"max_eval_samples", "shots"}
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
            adapter = ADAPTERS.get(loaded.cards[task].type)(loaded.cards[task])
            try:
                model = backbone.build(strategy.model_class(adapter), strategy.head(adapter))
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


def _missing_files(card: TaskCard) -> list[str]:
    return [str(card.resolve(p)) for p in (card.source.files or {}).values() if not card.resolve(p).exists()]


def _check_cell(backbone: Backbone, adapter, strategy: Strategy, label: str) -> str | None:
    if strategy.task_types is not None and adapter.type not in strategy.task_types:
        return f"strategy {label!r} applies to {', '.join(sorted(strategy.task_types))} tasks, not {adapter.type}"
    try:
        model = backbone.build(strategy.model_class(adapter), strategy.head(adapter))
    except HarnessError as exc:
        return str(exc)
    except Exception as exc:
        return f"model {backbone.alias!r}: cannot build a {adapter.type} model: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    reason = adapter.check_model(model)
    if reason:
        return f"task type {adapter.type!r} on {backbone.alias!r}: {reason}"
    reason = strategy.check(model)
    return f"strategy {label!r} on {backbone.alias!r}: {reason}" if reason else None
