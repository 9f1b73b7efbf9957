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
