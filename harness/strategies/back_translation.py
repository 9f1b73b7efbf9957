"""Back-translation (Sennrich et al. 2016; Edunov et al. 2018 for sampled copies): a `fraction` of
the training rows gets `copies` paraphrases made by translating each text column into a pivot
language with the `forward` model and back with the `backward` model; the model then trains on the
originals and the copies (a data part: with full fine-tuning alone, else with the recipe's
method). Evaluation data is never touched.

Each direction is any backbone harness loads (hub id, local folder, package, GGUF file): an
encoder-decoder translation model (Marian opus-mt, T5 with "translate English to German: {text}")
or a decoder-only model prompted by its `template`, whose first generated line is the translation.
What was done (rows, copies, how many came back unchanged or empty, examples) goes into the
run's info.
"""

from __future__ import annotations

import random
from typing import Any

import datasets
import torch
from pydantic import Field, model_validator

from harness.base.errors import HarnessError
from harness.config.parsing import Strict
from harness.config.schemas import ModelSpec
from harness.run.backbones import GenerationModel, resolve
from harness.strategies import Part


class Direction(Strict):
    model: str | ModelSpec = Field(description="the translation backbone: hub id, local folder, package, tiny:...")
    template: str = Field("{text}", description="the model's input; {text} is the text to translate")

    @model_validator(mode="after")
    def _template(self):
        if "{text}" not in self.template:
            raise ValueError("template: must contain {text}")
        return self

    @property
    def spec(self) -> ModelSpec:
        return self.model if isinstance(self.model, ModelSpec) else ModelSpec(source=self.model)


class BackTranslationArgs(Strict):
    forward: Direction
    backward: Direction
    fraction: float = Field(0.5, gt=0, le=1, description="share of training rows that get back-translated copies")
    copies: int = Field(1, ge=1, le=8, description="copies per chosen row (more than one needs sample: true)")
    sample: bool = Field(False, description="nucleus sampling instead of greedy/beam search (diverse copies)")
    top_p: float = Field(0.9, gt=0, le=1)
    num_beams: int = Field(1, ge=1)
    max_new_tokens: int = Field(96, ge=1)
    batch_size: int = Field(16, ge=1)

    @model_validator(mode="after")
    def _copies(self):
        if self.copies > 1 and not self.sample:
            raise ValueError("copies: more than one copy per row needs sample: true (greedy copies are identical)")
        return self


class BackTranslation(Part):
    """Back-translation data augmentation through a pair of translation backbones."""

    name = "back_translation"
    role = "data"
    Args = BackTranslationArgs
    task_types = frozenset({"classification"})

    def check(self, model):
        for key in ("forward", "backward"):
            try:
                resolve(key, getattr(self.args, key).spec)
            except HarnessError as exc:
                return f"{key}: {exc}"
        return None

    def augment(self, rows: datasets.Dataset, task_type, seed: int) -> tuple[datasets.Dataset, dict]:
        rng = random.Random(seed)
        chosen = sorted(rng.sample(range(len(rows)), round(self.args.fraction * len(rows))))
        columns = [c for c in task_type.card.inputs]
        originals = {c: [rows[i][c] for i in chosen] * self.args.copies for c in columns}
        texts = [t for c in columns for t in originals[c]]
        pivots = self._translate("forward", texts, seed)
        backs = self._translate("backward", pivots, seed)
        out = {c: backs[k * len(originals[c]):(k + 1) * len(originals[c])] for k, c in enumerate(columns)}
        extra, empty = [], 0
        for j, i in enumerate(chosen * self.args.copies):
            copy = dict(rows[i])
            made = {c: out[c][j] for c in columns}
            if not all(made.values()):
                empty += 1  # a translation came back empty: that copy is dropped
                continue
            extra.append(copy | made)
        augmented = datasets.concatenate_datasets([rows, datasets.Dataset.from_list(extra, features=rows.features)]) \
            if extra else rows
        unchanged = sum(a.strip() == b.strip() for a, b in zip(texts, backs))
        return augmented, {
            "rows": len(rows), "augmented_rows": len(chosen), "copies": len(extra), "dropped_empty": empty,
            "unchanged_texts": unchanged, "translated_texts": len(texts),
            "examples": [{"text": t, "pivot": p, "back": b} for t, p, b in zip(texts, pivots, backs) if b][:3],
        }

    def _translate(self, key: str, texts: list[str], seed: int) -> list[str]:
        direction: Direction = getattr(self.args, key)
        backbone = resolve(key, direction.spec)
        model, tokenizer = backbone.load(GenerationModel, {}, texts, seed)
        model.to("cuda" if torch.cuda.is_available() else "cpu")
        try:
            return translate(model, tokenizer, texts, direction.template, self.args, seed)
        finally:
            del model


@torch.no_grad()
def translate(model, tokenizer, texts: list[str], template: str, args: Any, seed: int) -> list[str]:
    """Each text translated by `model`, in length-sorted batches; a decoder's first generated line."""
    model.eval()
    decoder = not getattr(model.config, "is_encoder_decoder", False)
    tokenizer.padding_side = "left" if decoder else "right"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = next(model.parameters()).device
    torch.manual_seed(seed)
    out = [""] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), args.batch_size):
        batch = order[start:start + args.batch_size]
        inputs = tokenizer([template.format(text=texts[i]) for i in batch], return_tensors="pt", padding=True,
                           truncation=True, max_length=512).to(device)
        inputs.pop("token_type_ids", None)
        generated = model.generate(
            **inputs, max_new_tokens=args.max_new_tokens, num_beams=args.num_beams, do_sample=args.sample,
            top_p=args.top_p if args.sample else None, pad_token_id=tokenizer.pad_token_id,
        )
        if decoder:
            generated = generated[:, inputs["input_ids"].shape[1]:]
        for i, text in zip(batch, tokenizer.batch_decode(generated, skip_special_tokens=True)):
            out[i] = text.strip().split("\n", 1)[0].strip()
    return out
