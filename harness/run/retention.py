"""Forgetting: how much fine-tuning moved a backbone away from its own pretraining objective.

On the held-out text a suite's `retention` names, the backbone's pretraining loss is measured
before a cell trains and after, with the cell's body in place of the pretrained one:
- an encoder with a masked-LM head (BERT, RoBERTa ...): the masked-LM loss (nats per masked
  token), 15% of each text's non-special tokens replaced by the mask token, drawn with the
  setting's seed, so that before and after see the same masks;
- a decoder (GPT-2, Llama ...): the perplexity, exp of the mean next-token loss over the text's tokens;
- an encoder-decoder (T5, BART): not measured. Its pretraining objective is a denoising task of
  its own (T5's span corruption with sentinels, BART's text infilling) that no one loss spells for
  every family; a number that means something else on each would not be comparable.
A checkpoint without the pretraining head's weights (all-MiniLM-L6-v2 ships the encoder alone),
and a tiny backbone built from a config (never pretrained), are recorded as not measured, with
the reason: a head initialised at random is not the backbone's objective.

The head comes from the backbone's checkpoint loaded with its pretraining class; the body it reads
is the cell's own module (with an adapter's layers in it, unmerged), so nothing is copied. What a
prompting method adds outside the body (prompt tuning's virtual tokens) is not part of it.
"""

from __future__ import annotations

import math
from pathlib import Path

import datasets
import torch
import transformers
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_MASKED_LM_MAPPING_NAMES,
)

from harness.base.errors import DataError
from harness.config.registry import task_type_of
from harness.config.spec import HeldOut
from harness.tasks.data import load_splits

MASKED, PERPLEXITY = "masked-LM loss", "perplexity"
MASK_SHARE = 0.15  # BERT's share of masked tokens
BATCH = 16
_NO_HEAD: dict[str, str] = {}  # backbone fingerprint -> why it cannot be measured (the check loads weights)


def held_out_texts(held: HeldOut) -> list[str]:
    """The first `rows` non-empty texts of the file or task split the setting names."""
    settings = held.settings
    if held.path is not None:
        path = Path(held.path)
        if path.suffix in (".txt", ""):
            texts = path.read_text(encoding="utf-8").splitlines()
        else:
            builder = {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}.get(
                path.suffix)
            if builder is None:
                raise DataError(f"retention.file {path}: not a .txt, .jsonl, .json, .csv or .parquet file")
            rows = datasets.load_dataset(builder, data_files=str(path), split="train",
                                         **({"delimiter": "\t"} if path.suffix == ".tsv" else {}))
            if settings.column not in rows.column_names:
                raise DataError(f"retention.file {path}: no column {settings.column!r} "
                                f"(columns: {', '.join(rows.column_names)})")
            texts = [str(t) if t is not None else "" for t in rows[settings.column]]
    else:
        card = held.task_card()
        texts = task_type_of(card).row_texts(getattr(load_splits(card), settings.split))
    texts = [t.strip() for t in texts if t and t.strip()][: settings.rows]
    if not texts:
        raise DataError(f"retention: no text in {held.path or f'task {held.card.name!r}, split {settings.split!r}'}")
    return texts


def objective(config) -> str | None:
    """The pretraining objective measured for a backbone with `config`, or None (an encoder-decoder)."""
    if getattr(config, "is_encoder_decoder", False):
        return None
    if config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False):
        return MASKED
    return PERPLEXITY if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES else None


class Retention:
    """A backbone's pretraining head, and the held-out text encoded once; `measure(model)` gives the
    objective with `model`'s body. `reason` says why there is nothing to measure (then `head` is None)."""

    def __init__(self, held: HeldOut, backbone, tokenizer):
        self.held, self.head, self.reason, self.kind = held, None, None, None
        config = backbone.config()
        self.kind = objective(config)
        if backbone.kind == "tiny":
            self.reason = "built from a config, never pretrained: it has no pretraining objective to forget"
        elif self.kind is None:
            self.reason = (f"{config.model_type} is an encoder-decoder: its denoising objective is its own, "
                           "not measured" if config.is_encoder_decoder else f"{config.model_type} has no pretraining head")
        elif backbone.fingerprint in _NO_HEAD:
            self.reason = _NO_HEAD[backbone.fingerprint]
        if self.reason:
            return
        self.head = self._load(backbone)
        if self.head is None:
            return
        self.batches = self._encode(held_out_texts(held), tokenizer)

    def _load(self, backbone):
        model_class = (transformers.AutoModelForMaskedLM if self.kind == MASKED else transformers.AutoModelForCausalLM)
        with torch.random.fork_rng(devices=[]):  # a head initialised where missing draws nothing from the cell's seed
            head, loading = model_class.from_pretrained(backbone.location, output_loading_info=True,
                                                        **backbone.loading_args(), dtype=torch.float32)
        prefix = head.base_model_prefix + "."
        missing = sorted(k for k in loading["missing_keys"] if not k.startswith(prefix))
        if missing:
            self.reason = _NO_HEAD[backbone.fingerprint] = (
                f"its checkpoint has no {self.kind.split()[0]} head ({len(missing)} of the head's weights missing: "
                f"{', '.join(missing[:2])}{' ...' if len(missing) > 2 else ''})")
            return None
        setattr(head, head.base_model_prefix, None)  # the cell's body goes here when measuring
        return head.eval()

    def _encode(self, texts: list[str], tokenizer) -> list[dict]:
        settings = self.held.settings
        generator = torch.Generator().manual_seed(settings.seed)
        batches = []
        for start in range(0, len(texts), BATCH):
            batch = tokenizer(texts[start:start + BATCH], truncation=True, max_length=settings.max_length,
                              padding=True, padding_side="right", return_tensors="pt",
                              return_special_tokens_mask=self.kind == MASKED)
            ids, attention = batch["input_ids"], batch["attention_mask"]
            if self.kind == MASKED:
                special = batch.pop("special_tokens_mask").bool() | (attention == 0)
                chosen = (torch.rand(ids.shape, generator=generator) < MASK_SHARE) & ~special
                for row in range(len(ids)):  # every text has one masked token at least
                    if not chosen[row].any() and (~special[row]).any():
                        choices = (~special[row]).nonzero().flatten()
                        chosen[row, choices[torch.randint(len(choices), (1,), generator=generator)]] = True
                labels = torch.where(chosen, ids, -100)
                batch["input_ids"] = torch.where(chosen, tokenizer.mask_token_id, ids)
            else:
                labels = torch.where(attention.bool(), ids, -100)
            batch["labels"] = labels
            batches.append(dict(batch))
        return batches

    @torch.no_grad()
    def measure(self, model) -> dict:
        """The objective with `model`'s body in the head's model: {loss, perplexity, tokens}."""
        body = body_of(model)
        head = self.head
        setattr(head, head.base_model_prefix, body)
        if getattr(head.config, "tie_word_embeddings", False):
            head.tie_weights()  # the output embeddings are the body's own, as they were in pretraining
        device = next(body.parameters()).device
        head.to(device)
        training = body.training
        body.eval()
        total, count = 0.0, 0
        try:
            for batch in self.batches:
                inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
                labels = batch["labels"].to(device)
                logits = head(**inputs).logits.float()
                if self.kind == PERPLEXITY:
                    logits, labels = logits[:, :-1], labels[:, 1:]
                total += float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                                 labels.reshape(-1), ignore_index=-100, reduction="sum"))
                count += int((labels != -100).sum())
        finally:
            body.train(training)
            setattr(head, head.base_model_prefix, None)
        loss = total / count
        return {"loss": round(loss, 6), "perplexity": round(math.exp(min(loss, 700)), 4), "tokens": count}

    def record(self, before: dict | None, after: dict | None) -> dict:
        """What a cell's info keeps: the objective before and after, and the change (after − before)."""
        if self.reason:
            return {"not_measured": self.reason}
        key = "perplexity" if self.kind == PERPLEXITY else "loss"
        settings = self.held.settings
        source = self.held.path or f"task {self.held.card.name} ({settings.split})"
        return {"objective": self.kind, "before": before[key], "after": after[key],
                "change": round(after[key] - before[key], 6), "loss_before": before["loss"], "loss_after": after["loss"],
                "texts": sum(len(b["input_ids"]) for b in self.batches), "tokens": after["tokens"],
                "text": Path(source).name if self.held.path else source, "seed": settings.seed}


def body_of(model):
    """The backbone body inside a task model (inside a peft wrapper, with the adapter's layers)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(base, base.base_model_prefix)
