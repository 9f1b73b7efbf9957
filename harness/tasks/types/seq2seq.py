"""Sequence to sequence: summarization and translation, on encoder-decoder or decoder-only backbones.

Encoder-decoder (T5, BART, Marian): the source (after the suite's `generation.prefix`) is the
encoder's input and the target the decoder's labels. Decoder-only (Llama, GPT-2): the card's
`prompt` template, filled with the source, is followed by the target and an end-of-sequence token
in one sequence; the loss is on the target alone, and prediction generates after the prompt.
Generation is batched (rows sorted by length), greedy or beam search, with the suite's
`train.generation` settings, which are recorded with the run.

A column may hold one text, or a {language: text} mapping (WMT, IWSLT): `source_lang` and
`target_lang` pick the texts. Empty sources or targets are errors naming the row; sources and
targets past their length limits are truncated and counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import datasets
import torch
import transformers
from pydantic import Field
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_MASKED_LM_MAPPING_NAMES,
)

from harness.base.errors import DataError
from harness.config.card import TaskCard
from harness.config.parsing import Strict
from harness.config.registry import METRICS
from harness.config.schemas import TrainConfig
from harness.run.backbones import GenerationModel
from harness.tasks.types import TaskType, source_rows


class Seq2SeqOptions(Strict):
    source_lang: str | None = Field(None, description="key of the source text when a column holds {lang: text}")
    target_lang: str | None = Field(None, description="key of the target text when a column holds {lang: text}")
    prompt: str = Field("{source}\n", description="decoder-only backbones: the prompt before the target")


def is_encoder_decoder(model) -> bool:
    return bool(getattr(model.config, "is_encoder_decoder", False))


class Seq2SeqType(TaskType):
    type = "seq2seq"
    Options = Seq2SeqOptions
    generates = True
    unused_train: ClassVar[frozenset[str]] = frozenset()  # it reads every setting

    def __init__(self, card: TaskCard):
        super().__init__(card)
        self._decoder_only: bool | None = None

    @classmethod
    def check_card(cls, card: TaskCard) -> str | None:
        if len(card.inputs) != 1:
            return f"inputs: a seq2seq task needs one source column, got {card.inputs}"
        if card.labels is not None:
            return "labels: a seq2seq task has no classes (its label column holds the target text)"
        if "{source}" not in str(card.options.get("prompt", "{source}")):
            return "options.prompt: the template must contain {source}"
        return None

    @property
    def model_class(self) -> type:
        return GenerationModel

    def head(self) -> dict[str, Any]:
        return {}

    def check_model(self, model) -> str | None:
        config = model.config
        if not is_encoder_decoder(model) and config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES \
                and not getattr(config, "is_decoder", False):
            return f"{config.model_type!r} is an encoder-only backbone; generation needs an encoder-decoder or a decoder"
        return None

    def _text(self, value: Any, lang: str | None, column: str, name: str, row: int) -> str:
        if isinstance(value, dict):
            if lang is None or lang not in value:
                raise DataError(f"{self.where(name, row)}: column {column!r} holds {sorted(value)}; "
                                "set options.source_lang and options.target_lang")
            value = value[lang]
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"{self.where(name, row)}: column {column!r} is empty")
        return value.strip()

    def pairs(self, split: datasets.Dataset, name: str) -> tuple[list[str], list[str]]:
        self.require_columns(split, name)
        source, target = self.card.inputs[0], self.card.label
        rows = source_rows(split)
        sources = [self._text(v, self.options.source_lang, source, name, r) for v, r in zip(split[source], rows)]
        targets = [self._text(v, self.options.target_lang, target, name, r) for v, r in zip(split[target], rows)]
        return sources, targets

    def texts(self, split: datasets.Dataset) -> Iterator[str]:
        sources, targets = self.pairs(split, self.card.splits.train)
        yield self.options.prompt
        yield from sources
        yield from targets

    def prompt(self, source: str, train: TrainConfig) -> str:
        """A decoder-only backbone's prompt for one source."""
        return self.options.prompt.format(source=train.generation.prefix + source)

    def preprocess(self, split: datasets.Dataset, name: str, tokenizer, train: TrainConfig, preamble: str = ""):
        """Model-ready rows; `preamble` goes before each decoder-only prompt (in-context demonstrations)."""
        sources, targets = self.pairs(split, name)
        target_ids = tokenizer(text_target=targets, add_special_tokens=False)["input_ids"] if self.decoder_only \
            else tokenizer(text_target=targets)["input_ids"]
        cut_targets = sum(len(t) > train.max_target_length for t in target_ids)
        target_ids = [t[: train.max_target_length] for t in target_ids]
        if self.decoder_only:
            prompts = [preamble + self.prompt(s, train) for s in sources]
            prompt_ids = tokenizer(prompts)["input_ids"]
            cut_sources = sum(len(p) > train.max_length for p in prompt_ids)
            prompt_ids = [p[: train.max_length] for p in prompt_ids]
            eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
            input_ids = [p + t + eos for p, t in zip(prompt_ids, target_ids)]
            labels = [[-100] * len(p) + t + eos for p, t in zip(prompt_ids, target_ids)]
            features = {"input_ids": input_ids, "attention_mask": [[1] * len(x) for x in input_ids], "labels": labels,
                        "prompt_ids": prompt_ids}
        else:
            encoded = tokenizer([train.generation.prefix + s for s in sources])
            cut_sources = sum(len(x) > train.max_length for x in encoded["input_ids"])
            features = {k: [x[: train.max_length] for x in v] for k, v in encoded.items()}
            features["labels"] = target_ids
        features["target"] = targets
        info = {"rows": len(sources), "truncated": cut_sources, "targets_truncated": cut_targets}
        return datasets.Dataset.from_dict(features), info

    @property
    def decoder_only(self) -> bool:
        if self._decoder_only is None:
            raise RuntimeError("seq2seq task type: call bind(model) before preprocessing")
        return self._decoder_only

    def bind(self, model) -> None:
        """Learn whether the backbone is decoder-only: it decides how rows are laid out."""
        self._decoder_only = not is_encoder_decoder(model)

    def longest_batch(self, rows: int, train: TrainConfig) -> dict[str, Any]:
        if self.decoder_only:  # prompt, target and end of sequence in one row, the target labelled
            width = train.max_length + train.max_target_length + 1
            return {name: ((rows, width), "long") for name in ("input_ids", "attention_mask", "labels")}
        return super().longest_batch(rows, train) | {"labels": ((rows, train.max_target_length), "long")}

    def positions(self, train: TrainConfig, config) -> int:
        if getattr(config, "is_encoder_decoder", False):  # source and target in tables of their own
            return max(train.max_length, train.max_target_length + 1, train.generation.max_new_tokens + 1)
        # a decoder holds the prompt and then the target and its end (training) or what it generates
        return train.max_length + max(train.max_target_length + 1, train.generation.max_new_tokens)

    def collator(self, tokenizer):
        return transformers.DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)

    @torch.no_grad()
    def generate(self, model, tokenizer, features: datasets.Dataset, train: TrainConfig) -> list:
        settings = train.generation
        prompts = list(features["prompt_ids" if self.decoder_only else "input_ids"])
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        device = next(model.parameters()).device
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        out: dict[int, str] = {}
        was_training = model.training
        model.eval()
        for start in range(0, len(order), train.eval_batch_size):
            batch = order[start:start + train.eval_batch_size]
            width = max(len(prompts[i]) for i in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                # decoder-only: left padding, so generation continues right after each prompt;
                # encoder-decoder: right padding, as learned absolute positions (BART) expect
                at = width - len(prompts[i]) if self.decoder_only else 0
                ids[row, at:at + len(prompts[i])] = torch.tensor(prompts[i])
                mask[row, at:at + len(prompts[i])] = 1
            generated = model.generate(
                input_ids=ids.to(device), attention_mask=mask.to(device), num_beams=settings.num_beams,
                max_new_tokens=settings.max_new_tokens, length_penalty=settings.length_penalty,
                no_repeat_ngram_size=settings.no_repeat_ngram_size, do_sample=False, pad_token_id=pad,
                eos_token_id=tokenizer.eos_token_id,
            )
            if self.decoder_only:
                generated = generated[:, width:]
            for row, i in enumerate(batch):
                out[i] = tokenizer.decode(generated[row], skip_special_tokens=True).strip()
        model.train(was_training)
        return [out[i] for i in range(len(prompts))]

    def references(self, features: datasets.Dataset) -> list:
        return list(features["target"])

    def row_texts(self, split: datasets.Dataset) -> list[str]:
        return list(self.pairs(split, "overlap")[0])  # the sources

    def right(self, prediction, reference) -> bool:
        """A generated text is right when its own score on the card's primary metric reaches 50."""
        return METRICS.get(self.card.primary)([prediction], [reference]) >= 50

    def references_of(self, rows: datasets.Dataset, name: str) -> list:
        return self.pairs(rows, name)[1]
