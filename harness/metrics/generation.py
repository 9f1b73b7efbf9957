"""Scores of generated text: ROUGE from rouge-score, BLEU and chrF from sacrebleu.

ROUGE is the mean over examples of each example's F-measure (rouge-score's scorer, Porter
stemming on; `evaluate`'s default bootstrap-aggregated 'mid' is close to, but not exactly, this
mean). rougeLsum treats each sentence as a line: sentences are split at ., ! or ? followed by
whitespace (the summarization scripts use nltk's punkt, whose data needs a download).
BLEU and chrF are corpus-level: each example's n-gram statistics are summed, which is also how
paired bootstraps resample them. The sacrebleu signature goes with the score.
"""

from __future__ import annotations

import re
from functools import cache

import numpy as np

from harness.metrics import Metric

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> str:
    return "\n".join(s for s in _SENTENCE_END.split(text.strip()) if s)


@cache
def _scorer(kind: str):
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer([kind], use_stemmer=True)


def _rouge(kind: str):
    def one(prediction: str, reference: str) -> float:
        if kind == "rougeLsum":
            prediction, reference = split_sentences(prediction), split_sentences(reference)
        return _scorer(kind).score(reference, prediction)[kind].fmeasure

    def compute(predictions, references) -> float:
        return float(np.mean([one(p, r) for p, r in zip(predictions, references)]))

    return one, compute


def _rouge_metric(kind: str) -> Metric:
    one, compute = _rouge(kind)
    split = ", sentences split at [.!?] + space" if kind == "rougeLsum" else ""
    return Metric(kind, compute, "rouge-score", f"rouge_scorer.RougeScorer(['{kind}'], use_stemmer=True), "
                                                f"mean F-measure{split}", per_example=one)


ROUGE1, ROUGE2, ROUGEL, ROUGELSUM = (_rouge_metric(k) for k in ("rouge1", "rouge2", "rougeL", "rougeLsum"))


@cache
def _sacrebleu(kind: str):
    from sacrebleu.metrics import BLEU, CHRF

    return BLEU() if kind == "bleu" else CHRF()


def _sacre(kind: str) -> Metric:
    def compute(predictions, references) -> float:
        return _sacrebleu(kind).corpus_score(list(predictions), [list(references)]).score / 100

    def stats(predictions, references):
        return np.asarray(_sacrebleu(kind)._extract_corpus_statistics(list(predictions), [list(references)]), dtype=float)

    def from_stats(summed):
        summed = np.atleast_2d(summed)
        return np.array([_sacrebleu(kind)._compute_score_from_stats(list(row)).score / 100 for row in summed])

    _sacrebleu(kind).corpus_score(["a"], [["a"]])  # sacrebleu's signature names the reference count once scored
    signature = str(_sacrebleu(kind).get_signature())
    return Metric(kind, compute, "sacrebleu", f"sacrebleu {signature}", stats=stats, from_stats=from_stats)


BLEU = _sacre("bleu")
CHRF = _sacre("chrf")
