"""Extractive question answering, SQuAD v1.1 and v2.0 style.

Long contexts are split into windows of `max_length` tokens that overlap by `doc_stride` tokens;
each window is a feature. A training feature points at the answer's first and last tokens, or at
the first token ([CLS]) when the answer is not inside that window or there is none. To predict,
the `n_best` highest start and end logits of every window of a question are paired, spans that
leave the context, run backwards or exceed `max_answer_length` tokens are dropped, and the best
span by start + end logit is mapped back to context characters through the tokenizer's offsets.
With `version_2: true` the answer is empty when the no-answer score (the [CLS] start + end logits,
lowest over the windows) exceeds the best span's score by more than `null_threshold`.

A row whose answer text is not found at its answer_start, a question with no answer in a v1.1
task, or an empty context is an error naming the row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import datasets
import numpy as np
import transformers
from pydantic import Field

from harness.base.errors import DataError
from harness.config.card import TaskCard
from harness.config.parsing import Strict
from harness.config.schemas import TrainConfig
from harness.tasks.types import TaskType, source_rows


class QAOptions(Strict):
    doc_stride: int = Field(128, ge=0, description="tokens shared by consecutive windows of a long context")
    max_answer_length: int = Field(30, ge=1, description="longest answer, in tokens")
    n_best: int = Field(20, ge=1, description="start and end candidates per window")
    version_2: bool = Field(False, description="questions may have no answer (SQuAD 2.0)")
    null_threshold: float = Field(0.0, description="answer only when the best span beats no-answer by this much")
    id: str = Field("id", description="column of question ids")


class QuestionAnsweringType(TaskType):
    type = "question_answering"
    Options = QAOptions
    label_names: ClassVar[list[str]] = ["start_positions", "end_positions"]

    @classmethod
    def check_card(cls, card: TaskCard) -> str | None:
        if len(card.inputs) != 2:
            return f"inputs: a QA task needs [question column, context column], got {card.inputs}"
        if card.labels is not None:
            return "labels: a QA task has no classes (its label column holds the answers)"
        version_2 = bool(card.options.get("version_2", False))
        for metric in card.metrics:
            if metric.startswith("squad_v2_") != version_2 and metric.startswith("squad_"):
                want = "squad_v2_exact / squad_v2_f1" if version_2 else "squad_exact / squad_f1"
                return f"metrics: {metric!r} does not fit this task's options.version_2 ({version_2}); use {want}"
        return None

    @property
    def model_class(self) -> type:
        return transformers.AutoModelForQuestionAnswering

    def head(self) -> dict[str, Any]:
        return {}

    def longest_batch(self, rows: int, train: TrainConfig) -> dict[str, Any]:
        batch = super().longest_batch(rows, train)
        del batch["labels"]
        return batch | {"start_positions": ((rows,), "long"), "end_positions": ((rows,), "long")}

    def texts(self, split: datasets.Dataset) -> Iterator[str]:
        for column in self.card.inputs:
            for text in split[column]:
                if isinstance(text, str):
                    yield text

    def answers(self, split: datasets.Dataset, name: str) -> list[tuple[list[str], list[int]]]:
        """(texts, character starts) of every row's answers, each checked against its context."""
        self.require_columns(split, name)
        context = self.card.inputs[1]
        out = []
        for row, text, answers in zip(source_rows(split), split[context], split[self.card.label]):
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{self.where(name, row)}: the context is empty")
            texts, starts = list((answers or {}).get("text") or []), list((answers or {}).get("answer_start") or [])
            if len(texts) != len(starts):
                raise DataError(f"{self.where(name, row)}: {len(texts)} answer texts but {len(starts)} answer_start values")
            if not texts and not self.options.version_2:
                raise DataError(f"{self.where(name, row)}: no answer; a task with unanswerable questions needs "
                                "options.version_2: true")
            for answer, start in zip(texts, starts):
                if text[int(start):int(start) + len(answer)] != answer:
                    found = text[int(start):int(start) + len(answer)]
                    raise DataError(f"{self.where(name, row)}: answer {answer!r} is not at answer_start {start} "
                                    f"(the context has {found!r} there)")
            out.append((texts, [int(s) for s in starts]))
        return out

    def preprocess(self, split: datasets.Dataset, name: str, tokenizer, train: TrainConfig):
        answers = self.answers(split, name)
        question_column, context_column = self.card.inputs
        questions = [q.lstrip() if isinstance(q, str) else "" for q in split[question_column]]
        contexts = list(split[context_column])
        pad_right = tokenizer.padding_side == "right"
        stride = min(self.options.doc_stride, max(train.max_length // 2, 1))
        encoded = tokenizer(
            questions if pad_right else contexts, contexts if pad_right else questions,
            truncation="only_second" if pad_right else "only_first", max_length=train.max_length, stride=stride,
            return_overflowing_tokens=True, return_offsets_mapping=True,
        )
        mapping = encoded.pop("overflow_to_sample_mapping")
        offsets_all = encoded.pop("offset_mapping")
        features: dict[str, list] = {k: list(v) for k, v in encoded.items()}
        features |= {"start_positions": [], "end_positions": [], "example": [], "offsets": [], "gold": []}
        outside = 0
        context_index = 1 if pad_right else 0
        for i, offsets in enumerate(offsets_all):
            example = mapping[i]
            sequence_ids = encoded.sequence_ids(i)
            # offsets of context tokens only; (-1, -1) marks the question, specials and padding
            context_offsets = [list(o) if s == context_index else [-1, -1] for o, s in zip(offsets, sequence_ids)]
            texts, starts = answers[example]
            start_token = end_token = 0
            if texts:
                start_char, end_char = starts[0], starts[0] + len(texts[0])
                inside = [j for j, (a, b) in enumerate(context_offsets) if a >= 0]
                if inside and context_offsets[inside[0]][0] <= start_char and context_offsets[inside[-1]][1] >= end_char:
                    start_token = next(j for j in inside if context_offsets[j][1] > start_char)
                    end_token = next(j for j in reversed(inside) if context_offsets[j][0] < end_char)
                else:
                    outside += 1
            features["start_positions"].append(start_token)
            features["end_positions"].append(end_token)
            features["example"].append(example)
            features["offsets"].append(context_offsets)
            features["gold"].append(texts)
        info = {"rows": len(split), "windows": len(mapping), "rows_split": len(mapping) - len(set(mapping)),
                "windows_without_answer": outside, "doc_stride": stride}
        dataset = datasets.Dataset.from_dict(features | {"context": [contexts[e] for e in mapping]})
        return dataset, info

    def collator(self, tokenizer):
        return RightPadded(tokenizer)

    def decode(self, predictions: Any, features: datasets.Dataset) -> list:
        start_logits, end_logits = (np.asarray(p) for p in predictions[:2])
        n_best, longest = self.options.n_best, self.options.max_answer_length
        best: dict[int, tuple[float, str]] = {}
        null: dict[int, float] = {}
        order: list[int] = []
        for i, (example, offsets, context) in enumerate(zip(features["example"], features["offsets"], features["context"])):
            if example not in best:
                order.append(example)
                best[example] = (-np.inf, "")
            starts, ends = start_logits[i][: len(offsets)], end_logits[i][: len(offsets)]
            null[example] = min(null.get(example, np.inf), float(starts[0] + ends[0]))
            for s in np.argsort(starts)[::-1][:n_best]:
                if offsets[s][0] < 0:
                    continue
                for e in np.argsort(ends)[::-1][:n_best]:
                    if offsets[e][0] < 0 or e < s or e - s + 1 > longest:
                        continue
                    score = float(starts[s] + ends[e])
                    if score > best[example][0]:
                        best[example] = (score, context[offsets[s][0]: offsets[e][1]])
        out = []
        for example in order:
            score, text = best[example]
            if self.options.version_2 and null[example] > score + self.options.null_threshold:
                text = ""
            out.append(text)
        return out

    def references(self, features: datasets.Dataset) -> list:
        seen, out = set(), []
        for example, gold in zip(features["example"], features["gold"]):
            if example not in seen:
                seen.add(example)
                out.append(list(gold))
        return out

    def references_of(self, rows: datasets.Dataset, name: str) -> list:
        return [texts for texts, _ in self.answers(rows, name)]

    def perturbed_columns(self) -> list[str]:
        """The question alone: the answers are character spans of the context."""
        return [self.card.inputs[0]]

    def right(self, prediction, reference) -> bool:
        """SQuAD's exact match: the answer, normalised, is one of the references (or, with none, empty)."""
        from harness.metrics.squad import exact_v2

        return exact_v2(prediction, list(reference)) == 1.0

    def breakdown(self, predictions, references) -> dict:
        if not self.options.version_2:
            return {}
        from harness.metrics.squad import has_answer_breakdown

        return {"squad_v2": has_answer_breakdown(predictions, references)}


class RightPadded(transformers.DataCollatorWithPadding):
    """QA batches padded on the right whatever the tokenizer's padding side: a window's start and end
    positions (training) and its offsets (decoding, which reads a row's logits from position 0)
    count tokens from the window's first, so nothing may come before it. Left padding (decoder
    tokenizers) shifted every span by the row's padding."""

    def __call__(self, features):
        return self.tokenizer.pad(features, padding=self.padding, max_length=self.max_length,
                                  pad_to_multiple_of=self.pad_to_multiple_of, return_tensors=self.return_tensors,
                                  padding_side="right")
