"""From a suite file to run specs: load and resolve every name, validate every argument, expand the grid."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.backbones import Backbone, resolve
from harness.config import Suite, TaskCard, TrainConfig
from harness.data import fingerprint
from harness.errors import ConfigError, unknown
from harness.registry import ADAPTERS, STRATEGIES, TaskCatalogue
from harness.schema import format_error, parse
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

    for model in suite.models:
        for task, card in cards.items():
            for label in strategies:
                if reason := _selection_problem(suite.train_for(model, task, label), card):
                    raise ConfigError(f"{where}: train.early_stopping.metric (model {model!r}, task {task!r}, "
                                      f"strategy {label!r}): {reason}")

    backbones: dict[str, Backbone | str] = {}
    for alias, spec in suite.models.items():
        try:
            backbones[alias] = resolve(alias, spec)
        except ConfigError as exc:
            backbones[alias] = str(exc)
    return LoadedSuite(suite, path, cards, strategies, backbones)


def _selection_problem(train: TrainConfig, card: TaskCard) -> str | None:
    """Why early stopping cannot monitor what it is told to on this task, or None."""
    metric = train.early_stopping.metric if train.early_stopping else None
    if metric is None:
        return None
    if metric == "loss":
        if ADAPTERS.get(card.type).generates:
            return f"task {card.name!r} is scored on generated text, which has no dev loss; name one of its metrics"
        return None
    if metric not in card.metrics:
        return unknown("metric", metric, [*card.metrics, "loss"]) + f" for task {card.name!r}"
    return None


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
