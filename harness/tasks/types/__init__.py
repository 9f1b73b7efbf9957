"""Task types: all the code that depends on a task's type lives in one class per type.

A task type builds the head (which AutoModelFor* class, with which labels), validates and
tokenizes rows, decodes model outputs into per-example predictions, and scores them with the
card's metrics. Nothing outside a task type asks which type of task it is holding.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import datasets

from harness.base.errors import DataError
from harness.config.card import TaskCard
from harness.config.parsing import Strict
from harness.config.registry import METRICS
from harness.config.schemas import TrainConfig, train_fields


class NoOptions(Strict):
    pass


class TaskType:
    type: ClassVar[str]
    Options: ClassVar[type[Strict]] = NoOptions  # the card's `options:` for this task type
    label_names: ClassVar[list[str]] = ["labels"]  # the model inputs that hold the targets
    generates: ClassVar[bool] = False  # predictions come from `generate`, not from one forward pass
    # its head reads the body's pooled output: its body has a pooler that other heads' bodies lack
    pooled: ClassVar[bool] = False
    # TrainConfig fields this task type never reads: not hashed into its run ids
    unused_train: ClassVar[frozenset[str]] = train_fields("targets")

    def __init__(self, card: TaskCard):
        self.card = card
        self.options = self.Options.model_validate(card.options)

    @classmethod
    def check_card(cls, card: TaskCard) -> str | None:
        """Why `card` cannot be used with this task type (key path and reason), or None."""
        raise NotImplementedError

    @property
    def model_class(self) -> type:
        raise NotImplementedError

    def check_model(self, model) -> str | None:
        """Why this task type cannot use `model` (a meta-device instance), or None."""
        return None

    def bind(self, model) -> None:
        """See the loaded backbone before preprocessing (seq2seq lays rows out by architecture)."""

    def head(self) -> dict[str, Any]:
        """Keyword arguments for the model config that shape the head."""
        raise NotImplementedError

    def texts(self, split: datasets.Dataset) -> Iterator[str]:
        """Every text of a split, for building a tiny backbone's tokenizer."""
        raise NotImplementedError

    def row_texts(self, split: datasets.Dataset) -> list[str]:
        """Each row's input as one text (its input columns joined; words of a token task joined by
        spaces): what overlap between splits is counted on (harness.tasks.overlap)."""
        def one(value) -> str:
            return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else "" if value is None else str(value)
        columns = [split[c] for c in self.card.inputs if c in split.column_names]
        return [" ".join(one(v) for v in values) for values in zip(*columns)] if columns else [""] * len(split)

    def perturbed_columns(self) -> list[str]:
        """The input columns a perturbation may change without changing a label (harness.tasks.perturb)."""
        return list(self.card.inputs)

    def right(self, prediction, reference) -> bool:
        """Whether one example's prediction is right (harness.report.examples): equal to the reference."""
        return prediction == reference

    def preprocess(self, split: datasets.Dataset, name: str, tokenizer, train: TrainConfig) -> tuple[datasets.Dataset, dict]:
        """(model-ready rows, counts of what preprocessing did, e.g. truncated rows)."""
        raise NotImplementedError

    def collator(self, tokenizer):
        raise NotImplementedError

    def longest_batch(self, rows: int, train: TrainConfig) -> dict[str, Any]:
        """The model inputs of a training batch of `rows` examples at the longest length settings
        allow, as {name: (shape, dtype)}: what memory estimates run the model on."""
        return {"input_ids": ((rows, train.max_length), "long"), "attention_mask": ((rows, train.max_length), "long"),
                "labels": ((rows,), "long")}

    def positions(self, train: TrainConfig, config) -> int:
        """The most positions one sequence takes at these settings, in training or prediction, on a
        backbone with `config`: what its position embeddings must hold."""
        return train.max_length

    def few_shot(self, split: datasets.Dataset, k: int, seed: int) -> datasets.Dataset:
        """k training examples in all, drawn with `seed` (classification draws k per class)."""
        return split.shuffle(seed=seed).select(range(min(k, len(split))))

    def decode(self, predictions: Any, features: datasets.Dataset) -> list:
        """Per-example predictions from the model's raw outputs on preprocessed `features`."""
        raise NotImplementedError

    def probabilities(self, predictions: Any, features: datasets.Dataset) -> list[list[float]] | None:
        """Per-example class probabilities from the model's raw outputs, where the task has classes
        (what calibration reads: harness.report.calibration); None otherwise."""
        return None

    def generate(self, model, tokenizer, features: datasets.Dataset, train: TrainConfig) -> list:
        """Per-example predictions by generation (task types with `generates`)."""
        raise NotImplementedError

    def references(self, features: datasets.Dataset) -> list:
        """Per-example references, aligned with `decode`'s predictions."""
        raise NotImplementedError

    def references_of(self, rows: datasets.Dataset, name: str) -> list:
        """Per-example references straight from raw rows of split `name`, for strategies that
        predict without preprocessing (prompting)."""
        raise NotImplementedError

    def breakdown(self, predictions: Sequence, references: Sequence) -> dict:
        """Finer scores kept with the run (per entity type, answerable or not), beyond the card's metrics."""
        return {}

    def score(self, predictions: Sequence, references: Sequence) -> dict[str, float]:
        return {name: METRICS.get(name)(predictions, references) for name in self.card.metrics}

    def signatures(self) -> dict[str, str]:
        return {name: METRICS.get(name).signature for name in self.card.metrics}

    def require_columns(self, split: datasets.Dataset, name: str) -> None:
        """The card's input and label columns must be in the split."""
        for column in [*self.card.inputs, self.card.label]:
            if column not in split.column_names:
                raise DataError(f"{self.where(name)}: no column {column!r} (columns: {', '.join(split.column_names)})")

    def where(self, split: str, row: int | None = None) -> str:
        at = f", row {row}" if row is not None else ""
        return f"task {self.card.name!r}, split {split!r}{at}"


def source_rows(split: datasets.Dataset) -> list[int]:
    """Each row's index in its source split (what error messages name), else its position."""
    from harness.tasks.data import ROW

    return list(split[ROW]) if ROW in split.column_names else list(range(len(split)))
