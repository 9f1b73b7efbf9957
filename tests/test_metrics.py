"""Metrics against hand-computed cases kept as data, and their signatures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.registry import METRICS

CASES = json.loads((Path(__file__).parent / "metric_cases" / "classification.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['metric']}:{c['why'][:30]}")
def test_metric_case(case):
    value = METRICS.get(case["metric"])(case["predictions"], case["references"])
    assert value == pytest.approx(case["expected"], abs=1e-9)


def test_every_metric_has_a_case():
    assert {c["metric"] for c in CASES} == set(METRICS.names())


def test_signature_names_library_version_and_variant():
    signature = METRICS.get("f1_macro").signature
    name, library, variant = signature.split("|")
    assert name == "f1_macro" and library.startswith("scikit-learn==") and "average='macro'" in variant


@pytest.mark.parametrize("name", ["accuracy", "f1", "f1_macro", "mcc", "pearson", "spearman"])
def test_vectorised_form_equals_the_library_on_every_row(name):
    import numpy as np

    metric = METRICS.get(name)
    rng = np.random.default_rng(0)
    regression = name in ("pearson", "spearman")
    refs = rng.normal(size=(40, 30)) if regression else rng.integers(0, 3 if name in ("f1_macro", "mcc") else 2, (40, 30))
    preds = refs + rng.normal(size=refs.shape) if regression else np.where(rng.random(refs.shape) < 0.7, refs, rng.integers(0, 2, refs.shape))
    preds[0] = preds[0, 0] if not regression else preds[0]  # a constant row for the classifiers
    got = metric.many(preds, refs)
    for i in range(len(refs)):
        assert got[i] == pytest.approx(metric(list(preds[i]), list(refs[i])), abs=1e-9), i
