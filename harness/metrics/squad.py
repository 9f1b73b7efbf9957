"""Exact match and F1 for extractive QA, with SQuAD's official answer normalisation.

Two variants, each equal to its official script on the same predictions (tests compare them on
the metric cases): `squad_exact` / `squad_f1` follow evaluate-v1.1.py, `squad_v2_exact` /
`squad_v2_f1` follow evaluate-v2.0.py, where a question with no answer is right only when the
prediction is empty. A prediction is a string ("" for no answer); a reference is the list of gold
answer texts (empty for an unanswerable question). Both are means over questions of the best
score against any gold answer.
"""

from __future__ import annotations

import collections
import re
import string

import numpy as np

from harness.metrics import Metric

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation, then the articles a/an/the, then collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _overlap_f1(prediction_tokens: list[str], gold_tokens: list[str]) -> float:
    same = sum((collections.Counter(prediction_tokens) & collections.Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(prediction_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


# --- v1.1: every question has answers; max over them.

def exact_v1(prediction: str, golds: list[str]) -> float:
    return float(max((normalize_answer(prediction) == normalize_answer(g) for g in golds), default=False))


def f1_v1(prediction: str, golds: list[str]) -> float:
    tokens = normalize_answer(prediction).split()
    return max((_overlap_f1(tokens, normalize_answer(g).split()) for g in golds), default=0.0)


# --- v2.0: gold answers that normalise to nothing are dropped; none left means "no answer".

def _golds_v2(golds: list[str]) -> list[str]:
    return [g for g in golds if normalize_answer(g)] or [""]


def exact_v2(prediction: str, golds: list[str]) -> float:
    return float(max(normalize_answer(g) == normalize_answer(prediction) for g in _golds_v2(golds)))


def _f1_v2_one(gold: str, prediction: str) -> float:
    gold_tokens = normalize_answer(gold).split() if gold else []
    prediction_tokens = normalize_answer(prediction).split() if prediction else []
    if not gold_tokens or not prediction_tokens:
        return float(gold_tokens == prediction_tokens)
    return _overlap_f1(prediction_tokens, gold_tokens)


def f1_v2(prediction: str, golds: list[str]) -> float:
    return max(_f1_v2_one(g, prediction) for g in _golds_v2(golds))


def _mean(per_example):
    return lambda predictions, references: float(np.mean([per_example(p, r) for p, r in zip(predictions, references)]))


def has_answer_breakdown(predictions, references) -> dict[str, float]:
    """evaluate-v2.0.py's HasAns_* and NoAns_* figures (points, and counts)."""
    out: dict[str, float] = {}
    for name, keep in (("HasAns", lambda r: bool(r)), ("NoAns", lambda r: not r)):
        chosen = [(p, r) for p, r in zip(predictions, references) if keep(r)]  # as the script: any gold answer
        if chosen:
            out[f"{name}_exact"] = round(100 * float(np.mean([exact_v2(p, r) for p, r in chosen])), 4)
            out[f"{name}_f1"] = round(100 * float(np.mean([f1_v2(p, r) for p, r in chosen])), 4)
            out[f"{name}_total"] = len(chosen)
    return out


V1 = "official SQuAD evaluate-v1.1 (normalised answers, max over gold answers)"
V2 = "official SQuAD evaluate-v2.0 (normalised answers, max over gold answers, empty = no answer)"

SQUAD_EXACT = Metric("squad_exact", _mean(exact_v1), "harness", V1, per_example=exact_v1)
SQUAD_F1 = Metric("squad_f1", _mean(f1_v1), "harness", V1, per_example=f1_v1)
SQUAD_V2_EXACT = Metric("squad_v2_exact", _mean(exact_v2), "harness", V2, per_example=exact_v2)
SQUAD_V2_F1 = Metric("squad_v2_f1", _mean(f1_v2), "harness", V2, per_example=f1_v2)
