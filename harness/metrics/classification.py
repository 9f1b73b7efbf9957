"""Classification and regression metrics from scikit-learn and scipy.

Each also has a vectorised form over many resamples (for paired bootstraps), written with numpy
and tested equal to the library's value on every row.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn import metrics as sk

from harness.metrics import Metric


def _counts(p, r, label):
    tp = np.sum((p == label) & (r == label), axis=1)
    fp = np.sum((p == label) & (r != label), axis=1)
    fn = np.sum((p != label) & (r == label), axis=1)
    return tp, fp, fn


def _f1(tp, fp, fn):
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def _f1_binary(p, r):
    return _f1(*_counts(np.asarray(p), np.asarray(r), 1))


def _f1_macro(p, r):
    p, r = np.asarray(p), np.asarray(r)
    labels = np.unique(np.concatenate([p.ravel(), r.ravel()]))
    # sklearn averages over the labels present in either predictions or references of each call
    present = [((p == label) | (r == label)).any(axis=1) for label in labels]
    scores = [_f1(*_counts(p, r, label)) for label in labels]
    return np.sum([s * m for s, m in zip(scores, present)], axis=0) / np.sum(present, axis=0)


def _mcc(p, r):
    p, r = np.asarray(p), np.asarray(r)
    labels = np.unique(np.concatenate([p.ravel(), r.ravel()]))
    n = p.shape[1]
    correct = np.sum(p == r, axis=1)
    t = np.stack([np.sum(r == k, axis=1) for k in labels], axis=1).astype(float)
    q = np.stack([np.sum(p == k, axis=1) for k in labels], axis=1).astype(float)
    cov_ytyp = correct * n - np.sum(t * q, axis=1)
    cov_ypyp = n * n - np.sum(q * q, axis=1)
    cov_ytyt = n * n - np.sum(t * t, axis=1)
    denominator = np.sqrt(cov_ytyt * cov_ypyp)
    return np.where(denominator > 0, cov_ytyp / np.where(denominator > 0, denominator, 1), 0.0)


def _pearson(p, r):
    p, r = np.asarray(p, dtype=float), np.asarray(r, dtype=float)
    pc, rc = p - p.mean(axis=1, keepdims=True), r - r.mean(axis=1, keepdims=True)
    denominator = np.sqrt(np.sum(pc * pc, axis=1) * np.sum(rc * rc, axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, np.sum(pc * rc, axis=1) / denominator, np.nan)


def _spearman(p, r):
    return _pearson(stats.rankdata(p, axis=1), stats.rankdata(r, axis=1))


ACCURACY = Metric("accuracy", sk.accuracy_score, "scikit-learn", "sklearn.metrics.accuracy_score",
                  per_example=lambda p, r: float(p == r),
                  batch=lambda p, r: np.mean(np.asarray(p) == np.asarray(r), axis=1))
F1 = Metric("f1", lambda p, r: sk.f1_score(r, p, average="binary", pos_label=1), "scikit-learn",
            "sklearn.metrics.f1_score(average='binary', pos_label=1)", batch=_f1_binary)
F1_MACRO = Metric("f1_macro", lambda p, r: sk.f1_score(r, p, average="macro"), "scikit-learn",
                  "sklearn.metrics.f1_score(average='macro')", batch=_f1_macro)
MCC = Metric("mcc", lambda p, r: sk.matthews_corrcoef(r, p), "scikit-learn", "sklearn.metrics.matthews_corrcoef",
             batch=_mcc)
PEARSON = Metric("pearson", lambda p, r: stats.pearsonr(p, r).statistic, "scipy", "scipy.stats.pearsonr",
                 batch=_pearson)
SPEARMAN = Metric("spearman", lambda p, r: stats.spearmanr(p, r).statistic, "scipy", "scipy.stats.spearmanr",
                  batch=_spearman)
