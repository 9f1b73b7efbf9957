"""Metrics against hand-computed cases kept as data, and their signatures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.config.registry import METRICS

FOLDER = Path(__file__).parent / "cases"
# classification.json is hand-computed; the others were computed by the reference implementations
# (conlleval.pl, the official SQuAD scripts, rouge-score, sacrebleu): see make_cases.py.
CASES = [c for f in sorted(FOLDER.glob("*.json")) for c in json.loads(f.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['metric']}:{c['why'][:40]}")
def test_metric_case(case):
    metric = METRICS.get(case["metric"])
    value = metric(case["predictions"], case["references"])
    assert value == pytest.approx(case["expected"], abs=case.get("abs", 1e-9))
    if metric.stats is not None:  # the summed per-example statistics give the same score
        import numpy as np

        stats = np.asarray(metric.stats(case["predictions"], case["references"]))
        assert len(stats) == len(case["references"])
        summed = float(np.atleast_1d(metric.from_stats(stats.sum(axis=0)))[0]) * metric.scale
        assert summed == pytest.approx(case["expected"], abs=1e-9)
    if metric.per_example is not None:
        import numpy as np

        each = [metric.per_example(p, r) for p, r in zip(case["predictions"], case["references"])]
        assert 100 * float(np.mean(each)) == pytest.approx(case["expected"], abs=1e-9)


def test_every_metric_has_a_case():
    assert {c["metric"] for c in CASES} == set(METRICS.names())


@pytest.mark.parametrize("case", [c for c in CASES if "breakdown" in c], ids=lambda c: c["metric"])
def test_squad_v2_breakdown_equals_the_official_script(case):
    from harness.metrics.squad import has_answer_breakdown

    got = has_answer_breakdown(case["predictions"], case["references"])
    assert set(got) == set(case["breakdown"])
    for key, value in case["breakdown"].items():
        assert got[key] == pytest.approx(value, abs=1e-3), key


def test_evaluate_metric_from_a_local_module(tmp_path, monkeypatch):
    """`evaluate:<path>` loads a local metric script through evaluate.load, offline (with consent:
    harness.config.consent; test_hardening holds that nothing loads without it)."""
    pytest.importorskip("evaluate")
    monkeypatch.setenv("HARNESS_TRUST_CODE", "1")
    script = tmp_path / "share_equal" / "share_equal.py"
    script.parent.mkdir()
    script.write_text(EVALUATE_MODULE, encoding="utf-8")
    metric = METRICS.get(f"evaluate:{script.parent}#share")
    assert metric(["a", "b", "c", "d"], ["a", "b", "x", "y"]) == pytest.approx(0.5)
    assert "evaluate.load(" in metric.signature and metric.signature.split("|")[1].startswith("evaluate==")
    with pytest.raises(ValueError, match="no 'nope'"):
        METRICS.get(f"evaluate:{script.parent}#nope")(["a"], ["a"])


def test_unknown_evaluate_metric_is_one_line(tmp_path, monkeypatch):
    from harness.base.errors import ConfigError

    pytest.importorskip("evaluate")
    monkeypatch.setenv("HARNESS_TRUST_CODE", "1")
    with pytest.raises(ConfigError, match="evaluate:.*cannot load it"):
        METRICS.get(f"evaluate:{tmp_path / 'missing_metric'}")


EVALUATE_MODULE = '''
import datasets
import evaluate


class ShareEqual(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(description="share of equal strings", citation="", inputs_description="",
                                   features=datasets.Features({"predictions": datasets.Value("string"),
                                                               "references": datasets.Value("string")}))

    def _compute(self, predictions, references):
        return {"share": sum(p == r for p, r in zip(predictions, references)) / len(references), "count": len(references)}
'''


@pytest.mark.parametrize("name", ["seqeval_f1", "seqeval_f1_strict", "token_accuracy", "bleu", "chrf"])
def test_resampled_statistics_equal_the_library_on_subsets(name):
    """What paired bootstraps compute (summed per-example statistics of a resample) equals the
    library's score of that resample."""
    import numpy as np

    metric = METRICS.get(name)
    case = max((c for c in CASES if c["metric"] == name), key=lambda c: len(c["references"]))
    p, r = case["predictions"], case["references"]
    stats = np.asarray(metric.stats(p, r))
    rng = np.random.default_rng(0)
    for _ in range(5):
        idx = rng.integers(0, len(r), len(r))
        got = float(np.atleast_1d(metric.from_stats(stats[idx].sum(axis=0)))[0]) * metric.scale
        assert got == pytest.approx(metric([p[i] for i in idx], [r[i] for i in idx]), abs=1e-9)


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
