"""The run spec: a frozen, self-contained value naming one cell, and its id.

A worker can run a `RunSpec` with nothing else. Its id is a hash of what determines the result
(backbone weights, task card and data, strategy and its resolved arguments, training settings,
seed, metric variants, harness results version), and never of display names, so renaming an
alias does not rerun anything.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field

from harness import RESULTS_VERSION
from harness.base.device import CPU_COMPUTE
from harness.base.digest import json_digest
from harness.config.card import TaskCard
from harness.config.measures import Retention, Robustness
from harness.config.parsing import Strict
from harness.config.registry import METRICS, TASK_TYPES
from harness.config.schemas import ModelSpec, Prune, TrainConfig, train_fields
from harness.strategies import Strategy
from harness.strategies.recipe import build
from harness.sweep.space import shown
from harness.tasks.perturb import PERTURB_VERSION

# Card fields no result depends on: what a report reads. Metrics are computed from the stored
# predictions at report time (harness.report.results), unless they need the model (RunSpec.identity).
REPORT_ONLY = {"description", "average", "metrics"}
FOLDERS = ("local", "package")  # backbones identified by the content of their folder (model_fingerprint)


class Partner(Strict):
    """A task that a joint strategy (multitask) trains together with the cell's own task."""

    card: TaskCard
    card_path: str | None
    data_fingerprint: str

    def task_card(self) -> TaskCard:
        return self.card.model_copy(update={"path": Path(self.card_path) if self.card_path else None})


def card_identity(card: TaskCard) -> dict[str, Any]:
    identity = card.model_dump(mode="json", exclude=REPORT_ONLY | ({"options"} if not card.options else set()))
    if identity["source"].get("data_files") is None:  # hashed only when set: ids from before it stay
        identity["source"].pop("data_files", None)
    if not identity["splits"].get("extra"):
        identity["splits"].pop("extra", None)
    return identity


class HeldOut(Strict):
    """The suite's `retention` resolved for a worker: the settings, the file's absolute path or the
    task's card, and a digest of the text's content (what the id hashes, never the path)."""

    settings: Retention
    path: str | None = None  # a file
    card: TaskCard | None = None  # a task
    card_path: str | None = None
    fingerprint: str

    def identity(self) -> dict[str, Any]:
        return {"settings": self.settings.model_dump(mode="json", exclude={"file", "task"}), "text": self.fingerprint}

    def task_card(self) -> TaskCard | None:
        return self.card.model_copy(update={"path": Path(self.card_path) if self.card_path else None}) if self.card else None


class Trial(Strict):
    """What makes a cell part of a sweep: the setting it tries and how the sweep was drawn. Its
    record holds dev scores as well (selection reads them). Only `scored_on` and, for random
    search, the draw's seed are hashed: the setting itself is hashed as the cell's settings."""

    point: dict[str, Any]  # the setting, as the space names it
    seeds: list[int]  # the seeds every trial runs with (the sweep's)
    finals: list[int]  # the suite's seeds: the chosen setting runs on each (a trial on one of them is that final)
    budget: int
    search: str  # grid | random
    draw_seed: int | None = None  # random search only
    settings: int  # points this cell's space gives (at most budget)
    order: int = 0  # this point's place among them (selection breaks ties by it)
    # a pruned sweep's trial (harness.sweep.pruning): the pruner, the run id of the group's trial
    # before it on its seed (its fate depends on those), and their records' pruning info when it runs
    prune: Prune | None = None
    follows: str | None = None
    earlier: list[dict[str, Any]] = Field(default_factory=list)  # filled by the grid; never hashed

    def identity(self) -> dict[str, Any]:
        pruned = {"prune": self.prune.model_dump(mode="json"), "follows": self.follows} if self.prune else {}
        return {"scored_on": "dev", **({"search": "random", "seed": self.draw_seed} if self.search == "random" else {}),
                **pruned}


class RunSpec(Strict):
    suite: str
    model: str
    model_spec: ModelSpec
    model_fingerprint: str
    # tiny | local | package | hub (backbones.Backbone.kind): a folder's id is its content, not its path
    model_kind: str | None = None
    task: str
    card: TaskCard
    card_path: str | None
    data_fingerprint: str
    strategy: str  # the row label: the suite's key, with '@k' when the suite sweeps shots
    strategy_key: str  # the suite's key under `strategies`
    strategy_name: str  # the registered strategy
    strategy_args: dict[str, Any]  # as the suite gives them (build_strategy validates them again)
    strategy_resolved: dict[str, Any]  # every argument, defaults included: what the id hashes
    train: TrainConfig
    seed: int
    metrics: dict[str, str]  # name -> variant; only those that need the model are hashed (see identity)
    # joint strategies: every task trained together in one model, this cell's own included
    partners: dict[str, Partner] = Field(default_factory=dict)
    sweep: Trial | None = None  # a cell of a sweep (a trial, or the chosen setting on a suite seed)
    # run ids of the suite's cells it learns from (a teacher, an intermediate task): they run first
    after: list[str] = Field(default_factory=list)
    # what it trains on and in: {"device": cpu | cuda, "precision": fp32 | bf16 | fp16, "devices": n}
    compute: dict[str, Any] = Field(default_factory=lambda: dict(CPU_COMPUTE))
    retention: HeldOut | None = None  # forgetting measured on this text (the suite's `retention`)
    robustness: Robustness | None = None  # perturbed copies of eval scored too (the suite's `robustness`)
    results_version: int = RESULTS_VERSION

    def identity(self) -> dict[str, Any]:
        # Settings that cannot change this cell's result are not hashed: keeping the model, and the
        # settings a task type never reads (generation settings for a classifier). Editing them reruns nothing.
        unused = (set(TrainConfig.model_fields) - train_fields("result")) | TASK_TYPES.get(self.card.type).unused_train
        later = {k for k in train_fields("later") if getattr(self.train, k) == TrainConfig.model_fields[k].default}
        model = self.model_spec.model_dump(mode="json")
        if self.model_kind in FOLDERS:  # moving, renaming or copying the folder changes no id
            model.pop("source")
        identity = {
            "model": {"spec": model, "fingerprint": self.model_fingerprint},
            "task": {"card": card_identity(self.card), "data": self.data_fingerprint},
            "strategy": {"name": self.strategy_name, "args": self.strategy_resolved},
            "train": self.train.model_dump(
                mode="json", exclude=unused | later),
            "seed": self.seed,
            "results_version": self.results_version,
        }
        if model_metrics := {n: v for n, v in self.metrics.items() if n in METRICS and METRICS.get(n).needs_model}:
            identity["metrics"] = model_metrics
        if self.partners:  # a joint model's result depends on every task it trained on
            identity["joint"] = {name: {"card": card_identity(p.card), "data": p.data_fingerprint}
                                 for name, p in sorted(self.partners.items())}
        if self.sweep is not None:
            identity["sweep"] = self.sweep.identity()
        if self.retention is not None:  # measuring forgetting: hashed only when asked for
            identity["retention"] = self.retention.identity()
        if self.robustness is not None:
            identity["robustness"] = self.robustness.model_dump(mode="json") | {"version": PERTURB_VERSION}
        if self.compute != CPU_COMPUTE:  # a GPU run is its own result; CPU fp32 ids predate this key
            identity["compute"] = self.compute
        return identity

    @cached_property
    def id(self) -> str:
        return json_digest(self.identity(), compact=True)

    @property
    def label(self) -> str:
        tried = f" ({shown(self.sweep.point)})" if self.sweep is not None else ""
        return f"{self.model} · {self.task} · {self.strategy}{tried} · seed {self.seed}"

    def task_card(self) -> TaskCard:
        """The card with its file path restored (relative data files resolve against it)."""
        return self.card.model_copy(update={"path": Path(self.card_path) if self.card_path else None})

    def build_strategy(self) -> Strategy:
        return build(self.strategy_name, self.strategy_args, f"run {self.id}", "strategy")
