"""The task card schema: where a task's data comes from, its splits, columns, labels and metrics
(the catalogue of cards is harness.config.registry's; the suite and training schemas are
harness.config.schemas')."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, StrictInt, model_validator

from harness.config.parsing import Strict


class Source(Strict):
    """Where a task's data comes from: exactly one of hub, files or generate."""

    hub: str | None = Field(None, description="Hugging Face dataset id")
    config: str | None = Field(None, description="dataset configuration (hub only)")
    revision: str | None = Field(None, description="pinned dataset revision (hub only): a commit, or a branch such "
                                                   "as refs/convert/parquet (then `harness lock` pins its commit)")
    data_files: dict[str, str | list[str]] | None = Field(
        None, description="hub only: split -> file or glob inside the repository (at `revision`), read with the "
                          "packaged builder of their format; no loading script runs")
    files: dict[str, str] | None = Field(None, description="split -> local csv / tsv / jsonl / json / parquet file")
    format: Literal["csv", "tsv", "json", "jsonl", "parquet", "conll", "squad"] | None = Field(
        None, description="file format; taken from the file extension if unset (conll: CoNLL columns, "
                          "one token per line; squad: the official SQuAD JSON layout)"
    )
    generate: str | None = Field(None, description="name of a generated task (harness/tasks/generated.py)")
    options: dict[str, Any] = Field(default_factory=dict, description="generator arguments")
    seed: StrictInt = Field(0, description="seed of the generated data")

    @model_validator(mode="after")
    def _one_kind(self) -> Source:
        kinds = [k for k in ("hub", "files", "generate") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError("a source needs exactly one of 'hub', 'files' or 'generate'")
        if self.options and not self.generate:
            raise ValueError("'options' applies only to a 'generate' source")
        if (self.config or self.revision or self.data_files) and not self.hub:
            raise ValueError("'config', 'revision' and 'data_files' apply only to a 'hub' source")
        if self.config and self.data_files:
            raise ValueError("'data_files' name the files of one configuration already; drop 'config'")
        return self

    @property
    def kind(self) -> str:
        return "hub" if self.hub else "files" if self.files else "generate"


class Splits(Strict):
    train: str = "train"
    eval: str | None = Field("validation", description="reported split; carved from train when absent")
    validation_fraction: float = Field(0.1, gt=0, lt=1, description="share of train carved off when eval is absent")
    dev: str | None = Field(None, description="the split early stopping and checkpoint choice look at; carved "
                                              "from train (after eval) when absent")
    dev_fraction: float = Field(0.1, gt=0, lt=1, description="share of train carved off as dev when dev is absent")
    group: str | None = Field(None, description="carve whole groups by this column (SQuAD's title: no article "
                                                "in both splits)")
    extra: list[str] = Field(default_factory=list, description="more evaluation sets, each scored as its own: splits "
                                                               "of the source (an out-of-domain file in source.files)")

    @model_validator(mode="after")
    def _nothing_selects_on_eval(self):
        if self.dev is not None and self.dev in (self.eval, self.train):
            role = "eval (what the leaderboard reports)" if self.dev == self.eval else "train"
            raise ValueError(f"dev is the {role} split {self.dev!r}: selection must look at a split of its own")
        for name in self.extra:
            if name in (self.train, self.eval, self.dev) or self.extra.count(name) > 1:
                raise ValueError(f"extra: {name!r} is listed twice, or is the train, eval or dev split")
        return self


class TaskCard(Strict):
    """A declarative task: data source, columns, labels, splits and metrics."""

    name: str
    type: str
    description: str = ""
    source: Source
    inputs: list[str] = Field(default_factory=list, description="text columns (one, or two for sentence pairs)")
    label: str = "label"
    labels: list[str] | None = Field(None, description="class names; absent for regression")
    splits: Splits = Splits()
    metrics: list[str] = Field(min_length=1)
    primary: str
    options: dict[str, Any] = Field(default_factory=dict, description="settings of the task type "
                                    "(tag scheme, doc stride, target column ...); `harness list tasks` shows them")
    average: list[str] | None = Field(
        None, description="metrics averaged into the task's score for averages over tasks, as GLUE does "
                          "(MRPC: [f1, accuracy]); the primary metric if unset")

    path: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _primary_in_metrics(self) -> TaskCard:
        if self.primary not in self.metrics:
            raise ValueError(f"primary metric {self.primary!r} is not among metrics {self.metrics}")
        for name in self.average or []:
            if name not in self.metrics:
                raise ValueError(f"average: {name!r} is not among metrics {self.metrics}")
        return self

    @property
    def averaged(self) -> list[str]:
        return self.average or [self.primary]

    def resolve(self, path: str) -> Path:
        """A data file path, relative to the card's own folder unless absolute."""
        p = Path(path).expanduser()
        if not p.is_absolute() and self.path is not None:
            p = self.path.parent / p
        return p
