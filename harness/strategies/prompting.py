"""Zero-shot and in-context prediction with a decoder-only backbone: no training.

Each evaluation example becomes a prompt from `template` (after `demonstrations` solved training
examples, drawn with the run's seed); each class is scored by the log-probability the model gives
its verbalizer (the label's name unless `verbalizers` maps it) as the continuation, and the most
probable class is the prediction.
"""

from __future__ import annotations

import copy
import os
import random

import torch
from pydantic import Field
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_MASKED_LM_MAPPING_NAMES,
)

from harness.config.parsing import Strict
from harness.run.backbones import GenerationModel
from harness.strategies import Strategy


class PromptArgs(Strict):
    template: str = Field("{input}\nAnswer:", description="the prompt; {input} is the example's text, "
                                                           "and any column can be named, e.g. {sentence1}")
    verbalizers: dict[str, str] | None = Field(None, description="label -> the word the model should say")
    instruction: str = Field("", description="text before everything else")
    batch_size: int = Field(16, ge=1)


class InContextArgs(PromptArgs):
    demonstrations: int = Field(4, ge=0, description="solved training examples before each query")


class ZeroShot(Strategy):
    """Zero-shot prompting of a decoder-only backbone: classes scored by their verbalizers, no training."""

    name = "zero_shot"
    Args = PromptArgs
    trains = False
    task_types = frozenset({"classification", "seq2seq"})

    @property
    def demonstrations(self) -> int:
        return getattr(self.args, "demonstrations", 0)

    def architecture(self, task_type) -> tuple[type, dict]:
        return GenerationModel, {}  # builds encoder-decoders too, so `check` can say why they cannot be prompted

    def check(self, model):
        model_type = model.config.model_type
        if getattr(model.config, "is_encoder_decoder", False) or model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES \
                or model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
            return f"needs a decoder-only backbone; {model_type!r} is not one"
        return None

    def predict(self, model, tokenizer, task_type, rows, train_rows, seed: int, train):
        """(per-row predictions, info); `self.probabilities` is then each row's class probabilities:
        the verbalizers' log-probabilities renormalised over the classes (None for generation)."""
        self.probabilities = None
        if task_type.generates:
            return self._generate(model, tokenizer, task_type, rows, train_rows, seed, train)
        labels = task_type.card.labels
        if labels is None:
            raise ValueError(f"{self.name}: scoring verbalizers needs a task with classes, not regression")
        words = [(self.args.verbalizers or {}).get(label, label) for label in labels]
        prefix = self.args.instruction + self._demonstrations(task_type, train_rows, words, seed)
        prompts = [prefix + self._query(task_type, row) for row in rows]
        scores = continuation_logprobs(model, tokenizer, prompts, [" " + w for w in words], self.args.batch_size)
        predictions = [int(torch.tensor(s).argmax()) for s in scores]
        self.probabilities = [[round(p, 6) for p in torch.tensor(s, dtype=torch.float64).softmax(-1).tolist()]
                              for s in scores]
        return predictions, {"prompt_example": prompts[0] if prompts else "", "verbalizers": dict(zip(labels, words)),
                             "demonstrations": self.demonstrations}

    def _generate(self, model, tokenizer, task_type, rows, train_rows, seed: int, train):
        """Generation tasks: the card's prompt after the instruction and solved examples; the model
        generates the rest with the suite's generation settings."""
        task_type.bind(model)
        preamble = self.args.instruction
        if self.demonstrations:
            picked = random.Random(seed).sample(range(len(train_rows)), min(self.demonstrations, len(train_rows)))
            sources, targets = task_type.pairs(train_rows.select(picked), "train")
            preamble += "".join(f"{task_type.prompt(s, train)} {t}\n\n" for s, t in zip(sources, targets))
        features, info = task_type.preprocess(rows, "eval", tokenizer, train, preamble=preamble)
        predictions = task_type.generate(model, tokenizer, features, train)
        prompt = tokenizer.decode(features[0]["prompt_ids"], skip_special_tokens=True) if len(features) else ""
        return predictions, {"prompt_example": prompt, "demonstrations": self.demonstrations, "eval": info}

    def _query(self, task_type, row) -> str:
        return self.args.template.format(input=task_type.prompt_input(row), **row)

    def _demonstrations(self, task_type, train_rows, words, seed: int) -> str:
        if not self.demonstrations:
            return ""
        picked = random.Random(seed).sample(range(len(train_rows)), min(self.demonstrations, len(train_rows)))
        references = task_type.references_of(train_rows.select(picked), "train")
        return "".join(f"{self._query(task_type, train_rows[i])} {words[label]}\n\n" for i, label in zip(picked, references))


class InContext(ZeroShot):
    """In-context learning: n solved training examples before each query, then verbalizer scoring."""

    name = "in_context"
    Args = InContextArgs


@torch.no_grad()
def continuation_logprobs(model, tokenizer, prompts: list[str], continuations: list[str], batch_size: int,
                          reuse: bool = True):
    """For each prompt, the summed log-probability of each continuation's tokens. With `reuse`, the
    tokens every pair begins with (an in-context prompt's instruction and demonstrations, as the
    tokenizer splits them in context) are run once and their key/value cache serves every pair."""
    model.eval()
    device = next(model.parameters()).device
    pairs = []  # (position in the output, full token ids, index of the continuation's first token)
    for n, (p, c) in enumerate((p, c) for p in prompts for c in continuations):
        prompt_ids, full_ids = tokenizer(p)["input_ids"], tokenizer(p + c)["input_ids"]
        pairs.append((n, full_ids, min(len(prompt_ids), len(full_ids) - 1)))  # tokens may merge at the seam
    start = _shared(pairs) if reuse and pairs else 0
    cache = model(input_ids=torch.tensor([pairs[0][1][:start]], device=device), use_cache=True).cache if start else None
    out = [0.0] * len(pairs)
    for b in range(0, len(pairs), batch_size):
        batch = pairs[b:b + batch_size]
        rest = [f[start:] for _, f, _ in batch]
        width = max(len(r) for r in rest)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros((len(batch), start + width), dtype=torch.long)
        mask[:, :start] = 1
        for i, r in enumerate(rest):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, start: start + len(r)] = 1
        past = None
        if cache is not None:  # one copy of the shared tokens' cache per row of the batch (a forward pass extends it)
            past = copy.deepcopy(cache)
            past.batch_repeat_interleave(len(batch))
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), cache=past,
                       use_cache=past is not None).logits
        logprobs = torch.log_softmax(logits.float(), -1)
        for i, (n, f, first) in enumerate(batch):
            targets = torch.tensor(f[first:], device=device)
            out[n] = float(logprobs[i, first - 1 - start: len(f) - 1 - start].gather(-1, targets[:, None]).sum())
    k = len(continuations)
    return [out[i:i + k] for i in range(0, len(out), k)]


MIN_SHARED = 8  # fewer shared tokens than this are not worth a cache


def _shared(pairs: list[tuple[int, list[int], int]]) -> int:
    """How many first tokens every pair shares, short of the token before any continuation (whose
    logits score it); 0 when fewer than MIN_SHARED."""
    common = len(os.path.commonprefix([ids for _, ids, _ in pairs]))  # of lists, element by element
    length = min(common, *(first - 1 for _, _, first in pairs))
    return length if length >= MIN_SHARED else 0
