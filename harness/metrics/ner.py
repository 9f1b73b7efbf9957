"""Entity-level scores for token classification from seqeval, and token accuracy.

Entity precision, recall and F1 are micro averages over entities, which makes them sums over
sentences: each sentence's (true positives, predicted, gold) counts are its sufficient statistics,
and any set of sentences scores as the sum of theirs (seqeval joins sentences with an 'O' between
them, so no entity crosses a sentence boundary). Tests hold `from_stats(sum(stats))` equal to
seqeval on every metric case.

Modes: `default` follows conlleval (an I- tag after O starts an entity); `strict` counts only
entities that are well formed in the tag scheme (IOB2, or IOBES when the tags contain E- or S-).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from seqeval import metrics as sq
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.scheme import IOB2, IOBES, Entities

from harness.metrics import Metric


def scheme_of(*tag_lists: Sequence[Sequence[str]]):
    """IOBES if any tag is an E- or S- tag, else IOB2 (IOB1 data is converted to IOB2 on load)."""
    for tags in tag_lists:
        for sentence in tags:
            if any(t.startswith(("E-", "S-")) for t in sentence):
                return IOBES
    return IOB2


def entity_sets(tags: Sequence[Sequence[str]], strict: bool, scheme=None) -> list[set]:
    """Each sentence's entities as {(type, start, end)}."""
    if not strict:
        return [set(get_entities(list(sentence))) for sentence in tags]
    entities = Entities([list(s) for s in tags], scheme, suffix=False)
    return [{(e.tag, e.start, e.end) for e in sentence} for sentence in entities.entities]


def _entity_stats(strict: bool):
    def stats(predictions, references):
        scheme = scheme_of(references, predictions) if strict else None
        gold = entity_sets(references, strict, scheme)
        pred = entity_sets(predictions, strict, scheme)
        return np.array([[len(g & p), len(p), len(g)] for g, p in zip(gold, pred)], dtype=float).reshape(-1, 3)

    return stats


def _ratio(numerator, denominator):
    numerator, denominator = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), 0.0)


def _precision(s):
    return _ratio(s[..., 0], s[..., 1])


def _recall(s):
    return _ratio(s[..., 0], s[..., 2])


def _f1(s):
    return _ratio(2 * s[..., 0], s[..., 1] + s[..., 2])


def _token_stats(predictions, references):
    return np.array([[sum(p == r for p, r in zip(ps, rs)), len(rs)] for ps, rs in zip(predictions, references)],
                    dtype=float).reshape(-1, 2)


def _strict(function):
    def compute(predictions, references):
        scheme = scheme_of(references, predictions)
        return function(references, predictions, mode="strict", scheme=scheme)

    return compute


DEFAULT = "mode=default (conlleval)"
STRICT = "mode=strict, scheme=IOB2 or IOBES (IOBES if any E-/S- tag)"

SEQEVAL_F1 = Metric("seqeval_f1", lambda p, r: sq.f1_score(r, p), "seqeval", f"seqeval.metrics.f1_score({DEFAULT})",
                    stats=_entity_stats(False), from_stats=_f1)
SEQEVAL_PRECISION = Metric("seqeval_precision", lambda p, r: sq.precision_score(r, p), "seqeval",
                           f"seqeval.metrics.precision_score({DEFAULT})", stats=_entity_stats(False),
                           from_stats=_precision)
SEQEVAL_RECALL = Metric("seqeval_recall", lambda p, r: sq.recall_score(r, p), "seqeval",
                        f"seqeval.metrics.recall_score({DEFAULT})", stats=_entity_stats(False), from_stats=_recall)
SEQEVAL_F1_STRICT = Metric("seqeval_f1_strict", _strict(sq.f1_score), "seqeval", f"seqeval.metrics.f1_score({STRICT})",
                           stats=_entity_stats(True), from_stats=_f1)
TOKEN_ACCURACY = Metric("token_accuracy", lambda p, r: sq.accuracy_score(r, p), "seqeval",
                        "seqeval.metrics.accuracy_score (tokens)", stats=_token_stats,
                        from_stats=lambda s: _ratio(s[..., 0], s[..., 1]))


def per_type(predictions, references) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 (points) and support of each entity type, in both modes."""
    out: dict[str, dict[str, float]] = {}
    for mode, kwargs in (("default", {}), ("strict", {"mode": "strict", "scheme": scheme_of(references, predictions)})):
        report = sq.classification_report(references, predictions, output_dict=True, zero_division=0, **kwargs)
        for name, row in report.items():
            key = f"{name}" if mode == "default" else f"{name} (strict)"
            out[key] = {"precision": round(100 * float(row["precision"]), 2), "recall": round(100 * float(row["recall"]), 2),
                        "f1": round(100 * float(row["f1-score"]), 2), "support": int(row["support"])}
    return out
