"""Token classification (NER): word-level tags aligned to subword tokens, scored with seqeval.

Each word's tag goes on its first subword; the other subwords are ignored in the loss
(`label_subwords: all` labels them too, a B- word's continuation pieces with its I- tag). A word's
prediction is its first subword's. Tag schemes: IOB2 and BIOES are learned as they are; IOB1 data
(the original CoNLL-2003 files) is converted to IOB2 when read, so every metric sees IOB2.

Policies, counted in the run's info: words past `max_length` are cut (`truncated` rows,
`words_cut` words) and predicted `O`, so truncation costs recall rather than vanishing from the
score. A row whose tokens and tags differ in length, or with a tag outside the card's labels, is
an error naming the row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import datasets
import numpy as np
import transformers
from pydantic import Field

from harness.base.errors import DataError
from harness.config.card import TaskCard
from harness.config.parsing import Strict
from harness.config.schemas import TrainConfig
from harness.tasks.types import TaskType, source_rows


class TokenOptions(Strict):
    scheme: Literal["IOB1", "IOB2", "BIOES"] = Field("IOB2", description="the tag scheme of the data")
    label_subwords: Literal["first", "all"] = Field("first", description="which subwords of a word carry its tag")


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """IOB1 (I- starts an entity unless it continues one of the same type) to IOB2 (B- starts every entity)."""
    out = []
    for i, tag in enumerate(tags):
        if tag.startswith("I-"):
            previous = out[i - 1] if i else "O"
            if previous == "O" or previous[2:] != tag[2:]:
                tag = "B-" + tag[2:]
        out.append(tag)
    return out


class TokenClassificationType(TaskType):
    type = "token_classification"
    Options = TokenOptions

    @classmethod
    def check_card(cls, card: TaskCard) -> str | None:
        if len(card.inputs) != 1:
            return f"inputs: a token classification task needs one column of word lists, got {card.inputs}"
        if not card.labels:
            return "labels: a token classification task needs its tag names (O, B-PER, I-PER ...)"
        if len(set(card.labels)) != len(card.labels):
            return "labels: names must be unique"
        bad = [t for t in card.labels if t != "O" and not (len(t) > 2 and t[:2] in ("B-", "I-", "E-", "S-"))]
        if bad:
            return f"labels: {bad[0]!r} is not O nor a B-/I-/E-/S- tag"
        return None

    @property
    def model_class(self) -> type:
        return transformers.AutoModelForTokenClassification

    def head(self) -> dict[str, Any]:
        labels = self.card.labels
        return {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                "label2id": {name: i for i, name in enumerate(labels)}}

    def longest_batch(self, rows: int, train: TrainConfig) -> dict[str, Any]:
        return super().longest_batch(rows, train) | {"labels": ((rows, train.max_length), "long")}

    def texts(self, split: datasets.Dataset) -> Iterator[str]:
        for words in split[self.card.inputs[0]]:
            if words:
                yield " ".join(str(w) for w in words)

    def tags(self, split: datasets.Dataset, name: str) -> tuple[list[list[str]], list[list[str]]]:
        """(words, tags as names) of every row, checked."""
        self.require_columns(split, name)
        column, label = self.card.inputs[0], self.card.label
        labels = self.card.labels
        words_all, tags_all = [], []
        for row, words, tags in zip(source_rows(split), split[column], split[label]):
            if words is None or tags is None:
                raise DataError(f"{self.where(name, row)}: {column!r} or {label!r} is empty")
            if len(words) != len(tags):
                raise DataError(f"{self.where(name, row)}: {len(words)} tokens but {len(tags)} tags")
            names = []
            for tag in tags:
                if isinstance(tag, str) and tag in labels:
                    names.append(tag)
                elif isinstance(tag, (int, np.integer)) and 0 <= tag < len(labels):
                    names.append(labels[int(tag)])
                else:
                    raise DataError(f"{self.where(name, row)}: tag {tag!r} is not one of the card's labels")
            if self.options.scheme == "IOB1":
                names = iob1_to_iob2(names)
            words_all.append([str(w) for w in words])
            tags_all.append(names)
        return words_all, tags_all

    def preprocess(self, split: datasets.Dataset, name: str, tokenizer, train: TrainConfig):
        words, tags = self.tags(split, name)
        label2id = {t: i for i, t in enumerate(self.card.labels)}
        encoded = tokenizer(words, is_split_into_words=True, truncation=True, max_length=train.max_length)
        features: dict[str, list] = {k: list(v) for k, v in encoded.items()}
        features |= {"labels": [], "word_starts": [], "gold": tags}
        truncated = cut = 0
        for i, sentence_tags in enumerate(tags):
            word_ids = encoded.word_ids(i)
            labels, starts, previous = [], [], None
            for word in word_ids:
                if word is None:
                    labels.append(-100)
                elif word != previous:
                    labels.append(label2id[sentence_tags[word]])
                    starts.append(len(labels) - 1)
                elif self.options.label_subwords == "all":
                    tag = sentence_tags[word]
                    labels.append(label2id.get("I-" + tag[2:], label2id[tag]) if tag.startswith("B-") else label2id[tag])
                else:
                    labels.append(-100)
                previous = word
            features["labels"].append(labels)
            features["word_starts"].append(starts)
            if len(starts) < len(sentence_tags):
                truncated += 1
                cut += len(sentence_tags) - len(starts)
        return datasets.Dataset.from_dict(features), {"rows": len(tags), "truncated": truncated, "words_cut": cut}

    def collator(self, tokenizer):
        return transformers.DataCollatorForTokenClassification(tokenizer)

    def decode(self, predictions: Any, features: datasets.Dataset) -> list:
        logits = predictions[0] if isinstance(predictions, tuple) else predictions
        best = np.asarray(logits).argmax(axis=-1)
        labels = self.card.labels
        out = []
        for i, (starts, gold) in enumerate(zip(features["word_starts"], features["gold"])):
            tags = [labels[int(best[i, p])] for p in starts]
            out.append(tags + ["O"] * (len(gold) - len(tags)))  # words cut by truncation
        return out

    def references(self, features: datasets.Dataset) -> list:
        return [list(g) for g in features["gold"]]

    def references_of(self, rows: datasets.Dataset, name: str) -> list:
        return self.tags(rows, name)[1]

    def breakdown(self, predictions, references) -> dict:
        from harness.metrics.ner import per_type

        return {"per_type": per_type(predictions, references)}
