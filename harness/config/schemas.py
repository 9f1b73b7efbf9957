"""Typed schemas for suite files, task cards and training settings (their strict loading is
harness.config.parsing's).

Defaults live here, in the schema, and nowhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Union

from pydantic import (
    Field,
    StrictInt,
    field_validator,
    model_validator,
)

from harness.base.errors import did_you_mean
from harness.config.measures import Retention, Robustness
from harness.config.parsing import Strict

# --------------------------------------------------------------------------- training settings


class EarlyStopping(Strict):
    patience: StrictInt = Field(2, ge=1, description="evaluations without improvement before stopping")
    metric: str | None = Field(None, description="metric to monitor; the task's primary metric if unset")
    threshold: float = Field(0.0, ge=0, description="minimum improvement that counts")


class Generation(Strict):
    """How generation tasks (summarization, translation) decode; recorded with their scores."""

    num_beams: StrictInt = Field(1, ge=1)
    max_new_tokens: StrictInt = Field(64, ge=1)
    length_penalty: float = 1.0
    no_repeat_ngram_size: StrictInt = Field(0, ge=0)
    prefix: str = Field("", description="text put before every source (T5's 'summarize: ')")


# More passes than this over a training set is a slip of the keyboard, not a setting: it would
# train for days on any task (use max_steps for a long run on a small set).
MAX_EPOCHS = 1000
# The world's average carbon intensity of electricity, as codecarbon takes it where it knows no location
CARBON_INTENSITY = 475.0
CARBON_SOURCE = "world average, IEA Global Energy & CO2 Status Report 2019"


class TrainConfig(Strict):
    """How every cell trains. One training path reads these for every strategy."""

    epochs: float = Field(3.0, gt=0, le=MAX_EPOCHS, allow_inf_nan=False,
                          description="passes over the training data, fractions allowed (ignored if max_steps is set)")
    max_steps: StrictInt | None = Field(None, gt=0, description="optimizer steps; overrides epochs")
    learning_rate: float = Field(5e-5, gt=0)
    batch_size: StrictInt = Field(32, ge=1, description="training batch size per device")
    eval_batch_size: StrictInt = Field(64, ge=1)
    gradient_accumulation_steps: StrictInt = Field(1, ge=1)
    max_length: StrictInt = Field(128, ge=8, description="tokens per example; longer inputs are truncated and counted")
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    lr_scheduler: str = "linear"
    max_grad_norm: float = Field(1.0, gt=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    early_stopping: EarlyStopping | None = Field(None, description="evaluate each epoch and stop on a plateau")
    eval_every_steps: StrictInt | None = Field(
        None, ge=1, description="also evaluate every N steps during training (logged for curves; early stopping uses it)")
    max_train_samples: StrictInt | None = Field(None, ge=1, description="use only the first N training rows")
    shots: StrictInt | None = Field(None, ge=1, description="few-shot: train on k examples per class (k in all for "
                                                       "other task types), drawn with the run's seed")
    few_shot_dev: bool = Field(True, description="with shots: draw dev k per class too, so that selection sees no "
                                                 "more labelled rows than training (false: the whole dev split)")
    dropout: float | None = Field(None, ge=0, lt=1, description="override every dropout probability of the backbone")
    save_model: bool = Field(False, description="keep the fine-tuned model (the adapter alone for PEFT methods) "
                                                "in <store folder>/runs/<run id>/model")
    max_eval_samples: StrictInt | None = Field(None, ge=1, description="use only the first N evaluation rows")
    max_target_length: StrictInt = Field(128, ge=4, description="target tokens of generation tasks; longer targets "
                                                          "are truncated and counted")
    generation: Generation = Generation()
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 on a GPU that supports it (with TF32 matmuls), else fp32")
    group_by_length: bool = Field(False, description="batch examples of similar length together (less padding)")
    auto_batch_size: bool = Field(False, description="on out-of-memory, halve the per-device batch and double "
                                                     "gradient accumulation (the effective batch stays) and retry")
    report_to: list[str] = Field(["none"], description="trackers (tensorboard, mlflow, wandb ...), through Trainer's "
                                 "integrations: one run per cell, named and tagged as the cell (harness.run.tracking)")

    @field_validator("report_to")
    @classmethod
    def _trackers(cls, names: list[str]) -> list[str]:
        from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

        for name in names:
            if name != "none" and name not in INTEGRATION_TO_CALLBACK:
                raise ValueError(f"unknown tracker {name!r}{did_you_mean(name, [*INTEGRATION_TO_CALLBACK, 'none'])}")
        return [n for n in names if n != "none"] or ["none"]


# What reads each TrainConfig field, declared once; the run id, the preprocessing cache, the memory
# estimate's cache and joint training read their fields from here (`train_fields`), and a test
# holds that every field is declared.
#   result     it can change a cell's result: hashed into the run id
#   later      added after results were first stored: hashed only when it differs from its default,
#              so that adding it reran no stored cell
#   targets    read only by task types that generate targets (see TaskType.unused_train): not hashed
#              into the others' ids
#   preprocess read by task_type.preprocess: part of the preprocessing cache's key
#   shape      the peak memory of a training step depends on it: part of the estimate's key
#   per_task   may differ between the tasks of one joint model (their evaluation rows, their shots)
TRAIN_ROLES: dict[str, frozenset[str]] = {name: frozenset(roles.split()) for name, roles in {
    "epochs": "result",
    "max_steps": "result",
    "learning_rate": "result",
    "batch_size": "result shape",
    "eval_batch_size": "result shape",
    "gradient_accumulation_steps": "result shape",
    "max_length": "result preprocess shape",
    "warmup_ratio": "result",
    "weight_decay": "result",
    "lr_scheduler": "result",
    "max_grad_norm": "result",
    "label_smoothing": "result",
    "early_stopping": "result",
    "eval_every_steps": "result",
    "max_train_samples": "result",
    "shots": "result per_task",
    "few_shot_dev": "result later per_task",
    "dropout": "result",
    "save_model": "",  # keeping the model changes nothing it scores
    "max_eval_samples": "result per_task",
    "max_target_length": "result targets preprocess shape",
    "generation": "result targets preprocess shape",  # beams hold a key/value cache each
    "precision": "result later shape",
    "group_by_length": "result later",
    "auto_batch_size": "result later shape",
    "report_to": "",  # where a cell's curves are also sent: nothing it scores
}.items()}
ROLES = frozenset({"result", "later", "targets", "preprocess", "shape", "per_task"})


def train_fields(role: str) -> frozenset[str]:
    """The TrainConfig fields declared with `role` (see TRAIN_ROLES)."""
    if role not in ROLES:
        raise ValueError(f"unknown TrainConfig role {role!r}")
    return frozenset(name for name, roles in TRAIN_ROLES.items() if role in roles)


# --------------------------------------------------------------------------- models


class ModelSpec(Strict):
    """A backbone: hub id, local folder, `package:<module>[/sub/folder]` or `tiny:<family>`."""

    source: str
    revision: str | None = None
    trust_remote_code: bool = False
    gguf_file: str | None = Field(None, description="a GGUF file in the source folder (transformers de-quantizes it)")
    size: dict[str, int | float | str] = Field(
        default_factory=dict, description="config overrides for tiny built backbones (hidden_size, num_layers ...)"
    )


# --------------------------------------------------------------------------- suites

Names = Union[str, list[str]]


class When(Strict):
    model: Names | None = None
    task: Names | None = None
    strategy: Names | None = None
    recipe: Names | None = Field(None, description="with `recipes:`, the recipe crossed with the strategy")

    def names(self, axis: str) -> list[str] | None:
        value = getattr(self, axis)
        return [value] if isinstance(value, str) else value

    def matches(self, model: str, task: str, strategy: str | tuple[str, ...], recipe: str | None = None) -> bool:
        """Whether the rule reaches a cell; `strategy` may be several names of one row (its label and,
        with `recipes:`, the strategy it crosses)."""
        cell = {"model": (model,), "task": (task,), "strategy": (strategy,) if isinstance(strategy, str) else strategy,
                "recipe": (recipe,)}
        return all((names := self.names(axis)) is None or any(n in names for n in cell[axis]) for axis in cell)


class Override(Strict):
    when: When
    train: dict[str, Any]


class Range(Strict):
    """A range random search draws from (uniformly, or log-uniformly with `log`)."""

    low: float
    high: float
    log: bool = Field(False, description="draw log-uniformly (learning rates)")
    integer: bool = Field(False, description="round each draw to an integer (ranks, epochs)")

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


class Space(Strict):
    """The settings a sweep tries on the cells `when` names: train keys (dotted for nested ones:
    `early_stopping.patience`) and strategy arguments (`strategy.<arg>` where a name is both)."""

    when: When = When()
    space: dict[str, list[Any] | Range] = Field(min_length=1)

    @field_validator("space")
    @classmethod
    def _values(cls, v: dict[str, list[Any] | Range]) -> dict[str, list[Any] | Range]:
        for key, values in v.items():
            if isinstance(values, list):
                if not values:
                    raise ValueError(f"{key}: no values to try")
                if len({repr(x) for x in values}) < len(values):
                    raise ValueError(f"{key}: a value is listed more than once")
        return v


class Prune(Strict):
    """Trials stopped early on dev by Optuna's successive-halving pruner (harness.sweep.pruning); a
    group's trials then run one after another, each judged against those before it."""

    pruner: Literal["successive_halving"] = "successive_halving"
    # Optuna counts progress in thousandths of an epoch (harness.sweep.pruning): no rung below one
    min_epochs: float = Field(0.25, ge=0.001, allow_inf_nan=False,
                              description="epochs a trial trains before its first dev evaluation (the first rung)")
    reduction_factor: StrictInt = Field(3, ge=2, le=100, description="rungs at min_epochs x factor^k; at each, a trial "
                                                                     "goes on if in the best 1/factor so far")
    compute: float | None = Field(None, gt=0, allow_inf_nan=False,
                                  description="trial-epochs each (model, task, strategy) may spend per trial seed: the "
                                              "next trial starts only while its whole run fits, the same for every "
                                              "strategy; epochs a stopped trial did not train leave room for more")


class Sweep(Strict):
    """Tuning with equal budgets: trials scored on dev, the best mean dev setting run on every seed."""

    budget: StrictInt = Field(ge=1, description="trials per (model, task, strategy), the same for every strategy")
    search: Literal["grid", "random"] = Field(
        "grid", description="grid: every point (refused when a space has more than budget); random: seeded draws")
    seeds: list[StrictInt] = Field([0], min_length=1, description="seeds each trial runs with; the chosen setting "
                                                                 "then runs on every suite seed")
    seed: StrictInt = Field(0, description="seed of random search's draws (hashed into the trials' run ids)")
    spaces: list[Space] = Field(min_length=1)
    prune: Prune | None = Field(None, description="stop trials early on dev (successive halving through Optuna)")

    @field_validator("seeds")
    @classmethod
    def _unique(cls, values: list) -> list:
        if len(set(values)) < len(values):
            raise ValueError("a seed is listed more than once")
        return values


class Suite(Strict):
    """A suite file: the grid of models x tasks x strategies x seeds and how each cell trains."""

    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$", max_length=100)  # a folder name: never '..'
    description: str = ""
    models: dict[str, str | ModelSpec]
    tasks: list[str] = Field(min_length=1)
    strategies: dict[str, dict[str, Any] | None]
    seeds: list[StrictInt] = Field([0], min_length=1)
    shots: list[StrictInt | None] = Field([None], min_length=1, description="few-shot axis: k per class, null for all data")
    train: TrainConfig = TrainConfig()
    overrides: list[Override] = Field(default_factory=list)
    recipes: dict[str, dict[str, Any] | None] | None = Field(
        None, description="recipe parts crossed with every strategy ({name: {augment: ..., distill: ..., base: ...}}; "
                          "{} is the strategy alone): rows 'strategy+name'")
    exclude: list[When] = Field(default_factory=list, description="cells left out of the grid (model, task, strategy, "
                                                                  "recipe)")
    store: str | None = Field(None, description="SQLite store path; results/harness.sqlite if unset")
    sweep: Sweep | None = Field(None, description="tune each cell's settings on dev with an equal budget "
                                                  "(see harness.sweep.grid)")
    retention: Retention | None = Field(
        None, description="measure forgetting: the backbone's pretraining loss on this held-out text before and after "
                          "each cell (hashed into the cells' ids only when set)")
    robustness: Robustness | None = Field(
        None, description="score every cell on perturbed copies of eval too (hashed into the ids only when set)")
    carbon_intensity: float = Field(
        CARBON_INTENSITY, gt=0, le=2000, allow_inf_nan=False,
        description="grams of CO2-equivalent per kWh of the electricity the cells ran on, for the cost view's CO2e "
                    f"(default {CARBON_INTENSITY:g}: {CARBON_SOURCE}); read when a report is made, never hashed")

    # Set by load_suite, not by the file.
    path: Path | None = Field(None, exclude=True)
    # With `recipes`: each row label -> (the strategy it crosses, the recipe), the rows in `strategies`.
    crossed: dict[str, tuple[str, str]] = Field(default_factory=dict, exclude=True)

    @field_validator("models")
    @classmethod
    def _models(cls, v: dict[str, str | ModelSpec]) -> dict[str, ModelSpec]:
        if not v:
            raise ValueError("at least one model is needed")
        return {alias: ModelSpec(source=m) if isinstance(m, str) else m for alias, m in v.items()}

    @field_validator("strategies")
    @classmethod
    def _strategies(cls, v: dict[str, dict[str, Any] | None]) -> dict[str, dict[str, Any]]:
        if not v:
            raise ValueError("at least one strategy is needed")
        return {label: dict(args or {}) for label, args in v.items()}

    @field_validator("tasks", "seeds", "shots")
    @classmethod
    def _unique(cls, values: list) -> list:
        dupes = sorted({str(x) for x in values if values.count(x) > 1})
        if dupes:
            raise ValueError(f"{', '.join(dupes)} listed more than once")
        return values

    @model_validator(mode="before")
    @classmethod
    def _cross(cls, data: Any) -> Any:
        """Every strategy with every recipe: row 'label+recipe' (the label alone for an empty recipe)."""
        if not isinstance(data, dict):
            return data
        if "crossed" in data:
            raise ValueError("crossed: not a suite key (harness writes it from `recipes`)")
        recipes, strategies = data.get("recipes"), data.get("strategies")
        if not recipes or not isinstance(recipes, dict) or not isinstance(strategies, dict) or not all(
                value is None or isinstance(value, dict) for value in [*recipes.values(), *strategies.values()]):
            return data  # the fields' own validation says what is wrong
        rows, crossed = {}, {}
        for label, args in strategies.items():
            for name, parts in recipes.items():
                args, parts = dict(args or {}), dict(parts or {})
                if both := sorted(set(parts) & set(args)):
                    raise ValueError(f"strategies.{label} and recipes.{name} both set {', '.join(map(str, both))}")
                row = f"{label}+{name}" if parts else label
                if row in rows:
                    raise ValueError(f"recipes.{name}: row {row!r} is already a row of the grid")
                rows[row], crossed[row] = {"use": args.get("use", label)} | args | parts, (label, name)
        return data | {"strategies": rows, "crossed": crossed}

    def axes(self, row: str) -> tuple[tuple[str, ...], str | None]:
        """(the names a rule's `strategy` may give this row, its recipe) for When.matches."""
        label, recipe = self.crossed.get(row, (row, None))
        return (row, label), recipe

    def excluded(self, model: str, task: str, strategy: str) -> bool:
        return any(rule.matches(model, task, *self.axes(strategy)) for rule in self.exclude)

    def train_for(self, model: str, task: str, strategy: str) -> TrainConfig:
        """The base training settings with every matching override applied in file order."""
        settings = self.train.model_dump()
        for override in self.overrides:
            if override.when.matches(model, task, *self.axes(strategy)):
                settings = deep_merge(settings, override.train)
        return TrainConfig.model_validate(settings)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
