"""Classification and regression metrics from scikit-learn and scipy."""

from __future__ import annotations

from scipy import stats
from sklearn import metrics as sk

from harness.metrics import Metric

ACCURACY = Metric("accuracy", sk.accuracy_score, "scikit-learn", "sklearn.metrics.accuracy_score",
                  per_example=lambda p, r: float(p == r))
F1 = Metric("f1", lambda p, r: sk.f1_score(r, p, average="binary", pos_label=1), "scikit-learn",
            "sklearn.metrics.f1_score(average='binary', pos_label=1)")
F1_MACRO = Metric("f1_macro", lambda p, r: sk.f1_score(r, p, average="macro"), "scikit-learn",
                  "sklearn.metrics.f1_score(average='macro')")
MCC = Metric("mcc", lambda p, r: sk.matthews_corrcoef(r, p), "scikit-learn", "sklearn.metrics.matthews_corrcoef")
PEARSON = Metric("pearson", lambda p, r: stats.pearsonr(p, r).statistic, "scipy", "scipy.stats.pearsonr")
SPEARMAN = Metric("spearman", lambda p, r: stats.spearmanr(p, r).statistic, "scipy", "scipy.stats.spearmanr")
