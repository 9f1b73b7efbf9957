"""From a suite file to run specs: load and resolve every name, validate every argument, expand the grid."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.base.device import Target
from harness.base.digest import file_digest
from harness.base.errors import ConfigError, did_you_mean, unknown
from harness.config import consent
from harness.config.card import TaskCard
from harness.config.parsing import format_error, parse
from harness.config.registry import TASK_TYPES, TaskCatalogue, task_type_of
from harness.config.schemas import Suite, TrainConfig, deep_merge
from harness.config.spec import HeldOut, Partner, RunSpec, Trial
from harness.config.upstream import check_upstream, upstream_cells, with_runs
from harness.config.yamlfile import read_yaml
from harness.hub.lock import apply_lock, lock_path, read_lock
from harness.run.backbones import Backbone, resolve
from harness.strategies import Strategy
from harness.strategies.recipe import build
from harness.sweep.space import key_of, merged, points, size, split
from harness.tasks.data import fingerprint


@dataclass
class LoadedSuite:
    """A suite whose every name has been resolved and every argument validated."""

    suite: Suite
    path: Path
    cards: dict[str, TaskCard]
    strategies: dict[str, tuple[str, dict[str, Any], Strategy]]  # label -> (name, arguments, strategy)
    backbones: dict[str, Backbone | str] = field(default_factory=dict)  # alias -> backbone, or why not
    target: Target | None = None  # where the cells train (their compute is in their ids); None: this machine
    code: list[str] = field(default_factory=list)  # what it names that runs code, one line each (harness.config.consent)
    held_out: HeldOut | None = None  # the suite's `retention`, resolved

    @property
    def name(self) -> str:
        return self.suite.name

    @property
    def store_path(self) -> Path:
        return Path(self.suite.store) if self.suite.store else Path("results") / "harness.sqlite"


def load_suite(path: str | Path, catalogue: TaskCatalogue | None = None, locked: bool = True) -> LoadedSuite:
    """Parse and resolve a suite file; any problem is a one-line ConfigError before anything runs.
    With a lock file beside it (harness.hub.lock) and `locked`, its hub sources are read at the locked commits."""
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
        crossed = suite.crossed.get(label)  # a row of `recipes`: its errors name the strategy and the recipe
        key = f"strategies.{crossed[0]} + recipes.{crossed[1]}" if crossed else f"strategies.{label}"
        strategies[label] = (name, raw, build(name, raw, where, key))

    for label, (_, _, strategy) in strategies.items():
        if not strategy.joint:
            continue
        key = f"strategies.{label}" + ("" if strategy.alone else f".{strategy.together.name}")
        for i, task in enumerate(strategy.together.args.tasks or []):
            if task not in cards:
                raise ConfigError(f"{where}: {key}.tasks.{i}: {unknown('suite task', task, list(cards))}")

    code = consent.sources(suite, where, cards, strategies)
    if code and not consent.granted():  # before anything is loaded: nothing named runs without --trust-code
        raise consent.UntrustedCode(code)

    backbones: dict[str, Backbone | str] = {}
    for alias, spec in suite.models.items():
        try:
            backbones[alias] = resolve(alias, spec)
        except ConfigError as exc:
            backbones[alias] = str(exc)
    commits = read_lock(lock_path(path)) if locked else {}
    if commits:  # the commits `harness lock` resolved: the hub sources are read at them
        kinds = {alias: b.kind for alias, b in backbones.items() if not isinstance(b, str)}
        suite, cards = apply_lock(suite, kinds, cards, commits)
        backbones = {alias: resolve(alias, suite.models[alias]) if kinds.get(alias) == "hub" else b
                     for alias, b in backbones.items()}
    loaded = LoadedSuite(suite, path, cards, strategies, backbones, code=code,
                         held_out=_held_out(suite, path, cards, catalogue))
    _check_cells(loaded)
    check_upstream(loaded, where)
    return loaded


def _held_out(suite: Suite, path: Path, cards: dict[str, TaskCard], catalogue: TaskCatalogue) -> HeldOut | None:
    """The suite's `retention` resolved: a file (relative to the suite) by its content, or a task's card."""
    settings, where = suite.retention, str(path)
    if settings is None:
        return None
    if settings.file is not None:
        file = (path.parent / Path(settings.file).expanduser()).resolve()
        if not file.is_file():
            raise ConfigError(f"{where}: retention.file: no such file: {file}")
        return HeldOut(settings=settings, path=str(file), fingerprint=file_digest(file))
    try:
        card = cards.get(settings.task) or catalogue.get(settings.task, base=path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{where}: retention.task: {exc}") from None
    return HeldOut(settings=settings, card=card, card_path=str(card.path) if card.path else None,
                   fingerprint=fingerprint(card))


def _check_cells(loaded: LoadedSuite) -> None:
    """Refuse, in one line, a rule naming an unknown model, task or strategy, and a cell whose
    training settings (with the overrides and sweep points that reach it) do not validate."""
    suite, cards, strategies, where = loaded.suite, loaded.cards, loaded.strategies, str(loaded.path)
    axes = {"model": list(suite.models), "task": list(cards),
            "strategy": list(strategies) + [label for label, _ in suite.crossed.values()],
            "recipe": list(suite.recipes or [])}
    rules = [(f"overrides.{i}.when", o.when) for i, o in enumerate(suite.overrides)]
    rules += [(f"exclude.{i}", rule) for i, rule in enumerate(suite.exclude)]
    rules += [(f"sweep.spaces.{i}.when", s.when) for i, s in enumerate(suite.sweep.spaces if suite.sweep else [])]
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
                train = suite.train_for(model, task, label)
                if reason := _selection_problem(train, card):
                    raise ConfigError(f"{where}: train.early_stopping.metric (model {model!r}, task {task!r}, "
                                      f"strategy {label!r}): {reason}")
                if train.label_smoothing and strategies[label][2].own_loss:
                    raise ConfigError(f"{where}: train.label_smoothing (model {model!r}, task {task!r}, strategy "
                                      f"{label!r}): smooths the task's own loss, which distillation replaces")

    for model in suite.models if suite.sweep else []:
        for task in cards:
            for label in strategies:
                if not suite.excluded(model, task, label):
                    _check_sweep(loaded, model, task, label)


def _selection_problem(train: TrainConfig, card: TaskCard) -> str | None:
    """Why early stopping cannot monitor what it is told to on this task, or None."""
    metric = train.early_stopping.metric if train.early_stopping else None
    if metric is None:
        return None
    if metric == "loss":
        if TASK_TYPES.get(card.type).generates:
            return f"task {card.name!r} is scored on generated text, which has no dev loss; name one of its metrics"
        return None
    if metric not in card.metrics:
        return unknown("metric", metric, [*card.metrics, "loss"]) + f" for task {card.name!r}"
    return None


def _check_sweep(loaded: LoadedSuite, model: str, task: str, label: str) -> None:
    """Refuse, in one line, a sweep that cannot run on this cell: a grid over its budget, a range
    in a grid, a joint strategy, or a point whose settings or arguments do not validate."""
    sweep, where = loaded.suite.sweep, str(loaded.path)
    space = merged(sweep, model, task, *loaded.suite.axes(label))
    if space is None:
        return
    cell = f"sweep.spaces (model {model!r}, task {task!r}, strategy {label!r})"
    name, raw, strategy = loaded.strategies[label]
    if strategy.joint:
        raise ConfigError(f"{where}: {cell}: strategy {name!r} trains several tasks in one model; a sweep tunes "
                          f"one cell at a time and cannot tune it")
    if sweep.prune and (why := _prune_problem(sweep.prune, loaded.suite.train_for(model, task, label), strategy)):
        raise ConfigError(f"{where}: {cell}: sweep.prune: {why}")
    if sweep.search == "grid" and size(space) == float("inf"):
        raise ConfigError(f"{where}: {cell}: a range (low / high) can only be drawn from: use search: random, "
                          f"or list the values to try")
    if sweep.search == "grid" and size(space) > sweep.budget:
        raise ConfigError(f"{where}: {cell}: the grid has {size(space):.0f} points, more than sweep.budget "
                          f"({sweep.budget}); raise the budget, try fewer values, or use search: random")
    base = loaded.suite.train_for(model, task, label)
    for point in points(space, sweep.search, sweep.budget, sweep.seed):
        train, _, _ = _point_settings(loaded, label, base, point, cell)
        if reason := _selection_problem(train, loaded.cards[task]):
            raise ConfigError(f"{where}: {cell}: early_stopping.metric: {reason}")


def _prune_problem(prune, train: TrainConfig, strategy: Strategy) -> str | None:
    """Why a pruned sweep cannot tune this cell, or None."""
    if not strategy.trains:
        return "the method does not train, so there is nothing to stop early"
    if train.early_stopping or train.eval_every_steps:
        return ("train.early_stopping / eval_every_steps evaluate dev on their own schedule; prune evaluates at "
                "its rungs")
    if train.max_steps and prune.compute:
        return "compute counts trial-epochs, and train.max_steps stops trials by steps"
    if importlib.util.find_spec("optuna") is None:
        return "needs optuna (pip install 'optuna>=4', or the harness[tune] extra)"
    return None


def _point_settings(loaded: LoadedSuite, label: str, base: TrainConfig, point: dict,
                    cell: str = "sweep.spaces") -> tuple[TrainConfig, dict[str, Any], Strategy]:
    """A sweep point on top of a cell's own settings: (its training settings, its strategy
    arguments, the strategy built with them); a value or key that does not validate is a one-line
    ConfigError naming `cell`."""
    where, (name, raw, _) = str(loaded.path), loaded.strategies[label]
    update, args = split(point)
    try:
        train = TrainConfig.model_validate(deep_merge(base.model_dump(), update))
    except ValidationError as exc:
        raise ConfigError(format_error(exc, TrainConfig, where, ("sweep", "spaces", "space"))) from None
    try:
        strategy = build(name, raw | args, where, "sweep.spaces.space")
    except ConfigError as exc:
        keys = [k for k in point if not k.startswith("strategy.") and k.split(".")[0] not in TrainConfig.model_fields]
        if not keys:
            raise
        close = did_you_mean(keys[0], TrainConfig.model_fields)
        raise ConfigError(f"{where}: {cell}: {keys[0]!r} is not a train setting"
                          f"{close if 'did you mean' in close else ''}, and as an argument of strategy "
                          f"{name!r}: {str(exc).removeprefix(where + ': ')}") from None
    return train, raw | args, strategy


def expand(loaded: LoadedSuite, finals: dict[tuple[str, str, str], str] | None = None) -> list[RunSpec]:
    """Every model x task x strategy x seed cell, in a stable order, as run specs.

    A cell the suite's sweep tunes gives its trials instead (every point of its space on the
    sweep's seeds) and, for the (model, task, row) groups in `finals` ({group: chosen point's
    key}, see harness.sweep.grid), the chosen point on every suite seed. A row that learns from
    cells of the suite (a teacher, an intermediate task) comes last, each naming the run ids it learns from (harness.config.upstream)."""
    learners = upstream_cells(loaded.strategies)
    kept = {(cell.model or model, cell.task, cell.strategy) for cells in learners.values() for cell in cells
            for model in loaded.suite.models}
    specs = _expand(loaded, finals, [label for label in loaded.strategies if label not in learners], kept)
    if learners:
        index = {(s.model, s.task, s.strategy, s.seed): s.id for s in specs if s.sweep is None}

        def upstream_of(model: str, task: str, label: str, shown: str, seed: int) -> dict[str, str]:
            runs = {}
            for cell in learners[label]:
                row = cell.strategy + shown.removeprefix(label)  # the same shots: 'full@16' for 'kd@16'
                key = (cell.model or model, cell.task or task, row, seed)
                if (found := index.get(key)) is None:
                    raise ConfigError(f"{loaded.path}: strategies.{label}.{cell.key}: the grid has no cell (model "
                                      f"{key[0]!r}, task {key[1]!r}, strategy {row!r}, seed {seed}) for {model!r} "
                                      f"on {task!r} to learn from")
                runs[cell.role] = found
            return runs

        specs += _expand(loaded, finals, list(learners), upstream_of=upstream_of)
    return list({spec.id: spec for spec in specs}.values())  # a trial on a suite seed is that seed's final too


def _expand(loaded: LoadedSuite, finals: dict | None, labels: list[str], kept: set = frozenset(),
            upstream_of=None) -> list[RunSpec]:
    """The cells of the rows `labels`; those of (model, task or None, row) in `kept` keep their
    model (others learn from them); with `upstream_of(model, task, label, row, seed)`, each names
    the run ids of the cells it learns from."""
    suite, target = loaded.suite, loaded.target or Target.here()
    specs = []
    data_prints = {name: fingerprint(card) for name, card in loaded.cards.items()}
    for alias, model_spec in suite.models.items():
        backbone = loaded.backbones.get(alias)
        model_print = backbone.fingerprint if isinstance(backbone, Backbone) else "unresolved"
        model_kind = backbone.kind if isinstance(backbone, Backbone) else None
        for task, card in loaded.cards.items():
            task_type = task_type_of(card)
            metrics = {name: sig.rsplit("|", 1)[-1] for name, sig in task_type.signatures().items()}
            for label in labels:
                name, raw, strategy = loaded.strategies[label]
                partners = _partners(loaded, alias, task, label, data_prints)
                if suite.excluded(alias, task, label) or partners is None:
                    continue
                space = merged(suite.sweep, alias, task, *suite.axes(label)) if suite.sweep else None
                for shots in suite.shots:
                    train = suite.train_for(alias, task, label)
                    if shots is not None:
                        train = train.model_copy(update={"shots": shots})
                    if {(alias, task, label), (alias, None, label)} & kept:  # learnt from: no run id hashes it
                        train = train.model_copy(update={"save_model": True})
                    # a suite that sweeps shots shows each k as its own row: 'lora@16'
                    shown = label if len(suite.shots) == 1 else f"{label}@{shots or 'all'}"

                    def cell(seed: int, train=train, args=raw, resolved=strategy.resolved(), trial=None) -> RunSpec:
                        runs = upstream_of(alias, task, label, shown, seed) if upstream_of else {}
                        if runs:
                            args = with_runs(args, name, runs)
                            resolved = build(name, args, str(loaded.path), f"strategies.{label}").resolved()
                        return RunSpec(
                            suite=suite.name, model=alias, model_spec=model_spec, model_fingerprint=model_print,
                            model_kind=model_kind,
                            task=task, card=card, card_path=str(card.path) if card.path else None,
                            data_fingerprint=data_prints[task], strategy=shown, strategy_key=label, strategy_name=name,
                            strategy_args=args, strategy_resolved=resolved, train=train, seed=seed, metrics=metrics,
                            partners=partners, sweep=trial, after=sorted(runs.values()),
                            compute=target.compute(train.precision), retention=loaded.held_out,
                            robustness=suite.robustness)

                    if space is None:
                        specs += [cell(seed) for seed in suite.seeds]
                        continue
                    chosen = (finals or {}).get((alias, task, shown))
                    specs += _sweep_cells(loaded, space, label, train, cell, chosen)
    return specs


def _partners(loaded: LoadedSuite, alias: str, task: str, label: str, data_prints: dict) -> dict | None:
    """The tasks a joint row's cell trains with, its own included ({}: a row that trains alone, or
    a task the row cannot take); None when the suite's `tasks:` for the row leaves the task out."""
    strategy = loaded.strategies[label][2]
    if not strategy.joint:
        return {}
    if strategy.together.args.tasks is not None and task not in strategy.together.args.tasks:
        return None
    members = joint_members(loaded, alias, label)
    return {t: Partner(card=loaded.cards[t], data_fingerprint=data_prints[t],
                       card_path=str(loaded.cards[t].path) if loaded.cards[t].path else None)
            for t in members} if task in members else {}


def _sweep_cells(loaded: LoadedSuite, space, label: str, train: TrainConfig, cell, chosen: str | None) -> list[RunSpec]:
    """A swept cell's trials (every point on the sweep's seeds) and, with the key of the `chosen`
    point, that point on every suite seed (its finals). A pruned sweep's trial on a seed names the
    trial before it there (harness.sweep.pruning); a final on a seed no trial ran is never pruned."""
    sweep = loaded.suite.sweep
    tried = points(space, sweep.search, sweep.budget, sweep.seed)
    out, before = [], {}
    for order, point in enumerate(tried):
        settings, args, strategy = _point_settings(loaded, label, train, point)
        trial = Trial(point=point, seeds=sweep.seeds, finals=loaded.suite.seeds, budget=sweep.budget, search=sweep.search,
                      draw_seed=sweep.seed if sweep.search == "random" else None, settings=len(tried), order=order)
        seeds = list(sweep.seeds) + (list(loaded.suite.seeds) if chosen == key_of(point) else [])
        for seed in dict.fromkeys(seeds):
            pruned = sweep.prune is not None and seed in sweep.seeds
            one = trial.model_copy(update={"prune": sweep.prune, "follows": before.get(seed)}) if pruned else trial
            out.append(cell(seed, settings, args, strategy.resolved(), one))
            if pruned:
                before[seed] = out[-1].id
    return out


def joint_members(loaded: LoadedSuite, model: str, label: str) -> list[str]:
    """The tasks a joint strategy trains together on `model`: those it names (else all the
    suite's tasks) of the types it applies to, less the cells the suite excludes."""
    strategy = loaded.strategies[label][2]
    named = strategy.together.args.tasks
    return [t for t, card in loaded.cards.items()
            if (named is None or t in named) and card.type in strategy.task_types
            and not loaded.suite.excluded(model, t, label)]
