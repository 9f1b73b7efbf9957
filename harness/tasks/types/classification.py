"""Text classification: single sentences, sentence pairs, and regression (STS-B-like) scores."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import datasets
import numpy as np
import transformers

from harness.base.errors import DataError
from harness.config.card import TaskCard
from harness.config.schemas import TrainConfig
from harness.tasks.types import TaskType, source_rows

REGRESSION_METRICS = {"pearson", "spearman"}


class ClassificationType(TaskType):
    type = "classification"
    pooled = True

    @classmethod
    def check_card(cls, card: TaskCard) -> str | None:
        if len(card.inputs) not in (1, 2):
            return f"inputs: a classification task needs one or two text columns, got {card.inputs}"
        regression = card.labels is None
        for metric in card.metrics:
            if (metric in REGRESSION_METRICS) != regression:
                kind = "a regression task (no labels)" if regression else "a task with labels"
                return f"metrics: {metric!r} does not apply to {kind}"
        if card.labels is not None and len(set(card.labels)) != len(card.labels):
            return "labels: names must be unique"
        if card.labels is not None and len(card.labels) < 2:
            return "labels: a classification task needs at least two labels"
        return None

    @property
    def regression(self) -> bool:
        return self.card.labels is None

    @property
    def model_class(self) -> type:
        return transformers.AutoModelForSequenceClassification

    def head(self) -> dict[str, Any]:
        if self.regression:
            return {"num_labels": 1, "problem_type": "regression"}
        labels = self.card.labels
        return {
            "num_labels": len(labels),
            "id2label": dict(enumerate(labels)),
            "label2id": {name: i for i, name in enumerate(labels)},
            "problem_type": "single_label_classification",
        }

    def longest_batch(self, rows: int, train: TrainConfig) -> dict[str, Any]:
        batch = super().longest_batch(rows, train)
        return batch | {"labels": ((rows,), "float" if self.regression else "long")}

    def texts(self, split: datasets.Dataset) -> Iterator[str]:
        for column in self.card.inputs:
            for text in split[column]:
                if isinstance(text, str):
                    yield text

    def _label(self, value: Any, name: str, row: int) -> float | int:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise DataError(f"{self.where(name, row)}: label is empty")
        if self.regression:
            try:
                return float(value)
            except (TypeError, ValueError):
                raise DataError(f"{self.where(name, row)}: label {value!r} is not a number") from None
        labels = self.card.labels
        if isinstance(value, str) and value in labels:
            return labels.index(value)
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= value < len(labels):
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit() and 0 <= int(value) < len(labels):
            return int(value)
        raise DataError(f"{self.where(name, row)}: label {value!r} is not one of {labels} nor an index into them")

    def preprocess(self, split: datasets.Dataset, name: str, tokenizer, train: TrainConfig):
        self.require_columns(split, name)
        rows = source_rows(split)
        columns = [list(split[c]) for c in self.card.inputs]
        for column_name, column in zip(self.card.inputs, columns):
            for row, text in zip(rows, column):
                if not isinstance(text, str):
                    raise DataError(f"{self.where(name, row)}: column {column_name!r} is empty or not text ({text!r})")
        labels = [self._label(v, name, row) for row, v in zip(rows, list(split[self.card.label]))]
        # Tokenize once in full to count what overflows, then again only the rows that do.
        features = dict(tokenizer(*columns, truncation=False))
        long = [i for i, ids in enumerate(features["input_ids"]) if len(ids) > train.max_length]
        if long:
            cut = tokenizer(*[[c[i] for i in long] for c in columns], truncation=True, max_length=train.max_length)
            for key, values in cut.items():
                for i, value in zip(long, values):
                    features[key][i] = value
        features["labels"] = labels
        dataset = datasets.Dataset.from_dict(features)
        return dataset, {"rows": len(dataset), "truncated": len(long)}

    def few_shot(self, split: datasets.Dataset, k: int, seed: int) -> datasets.Dataset:
        """k examples of each class (as many as there are, if fewer), drawn with `seed`; for
        regression, k in all."""
        if self.regression:
            return super().few_shot(split, k, seed)
        shuffled = split.shuffle(seed=seed)
        taken: dict[int, int] = {}
        keep = []
        rows = source_rows(shuffled)
        for i, value in enumerate(shuffled[self.card.label]):
            label = self._label(value, self.card.splits.train, rows[i])
            if taken.get(label, 0) < k:
                taken[label] = taken.get(label, 0) + 1
                keep.append(i)
        return shuffled.select(keep)

    def collator(self, tokenizer):
        return transformers.DataCollatorWithPadding(tokenizer)

    def decode(self, predictions: Any, features: datasets.Dataset) -> list:
        logits = predictions[0] if isinstance(predictions, tuple) else predictions
        logits = np.asarray(logits)
        if self.regression:
            return [float(x) for x in logits.reshape(-1)]
        return [int(x) for x in logits.argmax(axis=-1)]

    def references(self, features: datasets.Dataset) -> list:
        return list(features["labels"])

    def probabilities(self, predictions: Any, features: datasets.Dataset) -> list[list[float]] | None:
        if self.regression:
            return None
        logits = np.asarray(predictions[0] if isinstance(predictions, tuple) else predictions, dtype=np.float64)
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return np.round(shifted / shifted.sum(axis=-1, keepdims=True), 6).tolist()

    def right(self, prediction, reference) -> bool:
        if self.regression:
            raise NotImplementedError("a regression task's examples are not right or wrong (no threshold is "
                                      "everyone's); compare its rows' scores instead")
        return prediction == reference

    def confusion_labels(self) -> list[str] | None:
        """The class names a confusion matrix is laid out by (None for regression)."""
        return None if self.regression else list(self.card.labels)

    def references_of(self, rows: datasets.Dataset, name: str) -> list:
        """References straight from raw rows (strategies that predict without preprocessing)."""
        return [self._label(v, name, r) for v, r in zip(list(rows[self.card.label]), source_rows(rows))]

    def prompt_input(self, row: dict) -> str:
        """A row's text for a prompt: its input columns, one per line."""
        return "\n".join(str(row[c]).strip() for c in self.card.inputs)
