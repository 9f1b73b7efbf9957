"""compare / check: exit codes for pass, regression and missing cells; targets; JUnit and Markdown."""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli.commands import main
from harness.config.suite import expand, load_suite
from harness.store.database import Store
from harness.testing import fake_record

ROOT = Path(__file__).resolve().parents[2]


def stored(path, correct_by_strategy, skip=()):
    loaded = load_suite(path)
    with Store(loaded.store_path) as store:
        for spec in expand(loaded):
            if spec.strategy in skip:
                continue
            store.write(fake_record(spec, correct_by_strategy[spec.strategy] + spec.seed))
    return loaded


def test_unchanged_passes_and_exports_round_trip(small_suite, tmp_path, capsys):
    path = small_suite(strategies={"full": {}, "lora": {}}, seeds=[0, 1, 2])
    stored(path, {"full": 180, "lora": 176})
    assert main(["export", str(path), "--out", str(tmp_path / "base.json")]) == 0
    assert main(["check", str(path), "--baseline", str(tmp_path / "base.json"), "--out", str(tmp_path / "c")]) == 0
    assert "0 failing cell(s)" in capsys.readouterr().out
    tree = ET.parse(tmp_path / "c" / "check.xml").getroot()
    assert tree.find("testsuite").get("tests") == "2" and tree.find("testsuite").get("failures") == "0"


def test_a_degraded_strategy_fails_and_the_unchanged_one_passes(small_suite, tmp_path, capsys):
    base = stored(small_suite(strategies={"full": {}, "lora": {}}, seeds=[0, 1, 2]), {"full": 180, "lora": 176})
    candidate = small_suite(strategies={"full": {}, "lora": {}}, seeds=[0, 1, 2], name="cand",
                            store=str(tmp_path / "cand.sqlite"))
    stored(candidate, {"full": 180, "lora": 160})  # lora lost 8 points
    assert main(["check", str(candidate), "--baseline", str(base.store_path), "--out", str(tmp_path / "c")]) == 1
    out = capsys.readouterr().out
    assert "✓ tiny · full · small_sentiment: pass" in out
    assert "✗ tiny · lora · small_sentiment: regression" in out
    xml = ET.parse(tmp_path / "c" / "check.xml").getroot()
    failures = [c.get("name") for c in xml.iter("testcase") if c.find("failure") is not None]
    assert failures == ["tiny · lora · small_sentiment"]
    assert "**regression**" in (tmp_path / "c" / "check.md").read_text()


def test_a_small_drop_within_seed_noise_passes_but_a_consistent_one_is_caught_by_the_paired_test(small_suite, tmp_path):
    base = stored(small_suite(seeds=[0, 1, 2]), {"full": 180})
    candidate = small_suite(seeds=[0, 1, 2], name="cand", store=str(tmp_path / "cand.sqlite"))
    # 0.4 points lower, under the 0.5 floor; but the same 1 example more wrong in every seed is not significant either
    stored(candidate, {"full": 179})
    assert main(["check", str(candidate), "--baseline", str(base.store_path), "--out", str(tmp_path / "c")]) == 0


def test_missing_cells_fail(small_suite, tmp_path, capsys):
    base = stored(small_suite(strategies={"full": {}, "lora": {}}), {"full": 180, "lora": 176})
    candidate = small_suite(strategies={"full": {}, "lora": {}}, name="cand", store=str(tmp_path / "cand.sqlite"))
    stored(candidate, {"full": 180, "lora": 176}, skip={"lora"})
    assert main(["check", str(candidate), "--baseline", str(base.store_path), "--out", str(tmp_path / "c")]) == 1
    assert "lora · small_sentiment: missing" in capsys.readouterr().out


def test_targets(small_suite, tmp_path, capsys):
    path = small_suite(strategies={"full": {}, "lora": {}})
    stored(path, {"full": 180, "lora": 170})  # 90.0 and 85.0
    targets = tmp_path / "targets.yaml"
    targets.write_text(
        "name: paper\ntolerance: 1.0\ntargets:\n"
        "  - {model: tiny, strategy: full, task: small_sentiment, value: 90.5}\n"
        "  - {model: tiny, strategy: lora, task: small_sentiment, value: 88.0}\n"
        "  - {model: tiny, strategy: bitfit, task: small_sentiment, value: 80.0}\n")
    assert main(["check", str(path), "--targets", str(targets), "--out", str(tmp_path / "c")]) == 1
    out = capsys.readouterr().out
    assert "full · small_sentiment: pass" in out
    assert "lora · small_sentiment: below" in out
    assert "bitfit · small_sentiment: missing" in out


def test_shipped_targets_parse():
    from harness.config.parsing import parse
    from harness.config.yamlfile import read_yaml
    from harness.report.compare import Targets

    paths = sorted((ROOT / "targets").rglob("*.yaml"))
    assert len(paths) >= 2, "targets/ should hold the shipped published numbers"
    for path in paths:
        targets = parse(Targets, read_yaml(path), str(path)).targets
        assert targets and all(0 <= t.value <= 100 for t in targets), path


def test_compare_prints_both_sides(small_suite, tmp_path, capsys):
    base = stored(small_suite(), {"full": 180})
    assert main(["export", str(small_suite()), "--out", str(tmp_path / "a.json")]) == 0
    assert main(["compare", str(tmp_path / "a.json"), str(base.store_path)]) == 0
    assert "+0.00" in capsys.readouterr().out


def test_check_catches_a_small_consistent_regression_among_100_cells(tmp_path, capsys):
    """100 cells x 2 seeds on 5,000 examples: one cell loses 25 examples in both seeds (0.5 points,
    inside the 0.5-point tolerance); only the paired test can see it, after Holm over 100 tests."""
    from harness.store.database import RunRecord
    from harness.testing import SENTIMENT_CARD, write_suite, write_yaml

    cards = [str(write_yaml(tmp_path / "tasks" / f"t{i}.yaml", dict(SENTIMENT_CARD, name=f"t{i}"))) for i in range(10)]
    path = write_suite(tmp_path, tasks=cards, seeds=[0, 1], strategies={f"r{r}": {"use": "lora", "r": r} for r in range(1, 11)})
    specs = expand(load_suite(path))
    refs = [i % 2 for i in range(5000)]
    regressed = next(s for s in specs if s.strategy == "r3" and s.task == "t7")

    def fill(store_path, worse: int):
        with Store(store_path) as store:
            for spec in specs:
                wrong = 500 + (worse if (spec.strategy, spec.task) == (regressed.strategy, regressed.task) else 0)
                preds = [1 - r if i < wrong else r for i, r in enumerate(refs)]
                store.write(RunRecord(id=spec.id, spec=spec.model_dump(mode="json"), status="done",
                                      metrics={"accuracy": 100 * (1 - wrong / 5000), "f1_macro": 0.0},
                                      predictions=preds, references=refs))

    fill(tmp_path / "base.sqlite", 0)
    fill(tmp_path / "cand.sqlite", 25)
    assert main(["check", "--candidate", str(tmp_path / "cand.sqlite"), "--baseline", str(tmp_path / "base.sqlite"),
                 "--out", str(tmp_path / "c")]) == 1
    out = capsys.readouterr().out
    assert "1 failing cell(s)" in out and "significantly worse on the same examples" in out
    assert "r3 · t7" in out


def test_compare_lists_the_cells_whose_environments_differ(small_suite, tmp_path, capsys):
    """A CPU run and a GPU run (or another torch) of the same cell are told apart, by the
    environment each record holds; runs made alike are not listed."""
    loaded = load_suite(small_suite(strategies={"full": {}, "lora": {}}))
    environments = {"a": {"device": "cpu (x86_64, 2 cores)", "python": "3.11.7",
                          "packages": {"torch": "2.13.0", "transformers": "5.24.0", "peft": "0.21.2"}}}
    environments["b"] = {**environments["a"], "device": "NVIDIA H200",
                         "packages": {**environments["a"]["packages"], "torch": "2.14.0"}}
    for side in ("a", "b"):
        with Store(tmp_path / f"{side}.sqlite") as store:
            for spec in expand(loaded):
                record = fake_record(spec, 180)
                record.environment = environments[side if spec.strategy == "full" else "a"]
                store.write(record)
    assert main(["compare", str(tmp_path / "a.sqlite"), str(tmp_path / "b.sqlite")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "environments differ (A / B) in 1 of 2 cells:" in out
    assert "tiny · full · small_sentiment: device cpu (x86_64, 2 cores) / NVIDIA H200; torch 2.13.0 / 2.14.0" in out
    assert "lora · small_sentiment:" not in out


def test_check_pools_the_seed_variance_over_the_tasks_cells(small_suite, tmp_path):
    """`harness check` uses the leaderboard's pooled seed variance: each paired test takes the seed
    variance pooled over the task's cells of baseline and candidate, and spends γ = α / 10m bounding
    it. Here the regressed cell's two seeds agree exactly (both 2 points down): Welch-Satterthwaite
    read that as a seed variance known to be 0 and gave p ≈ 1e-9; the task's other cells say seeds
    move by 3 points."""
    from harness.config.registry import METRICS
    from harness.report import stats
    from harness.report.compare import check
    from harness.report.results import Results
    from harness.testing import REFS, predictions

    strategies = {"full": {}, "lora": {}, "bitfit": {}}
    correct = {"full": 180, "lora": 170, "bitfit": 150}
    spread = {0: 0, 1: 6}  # 3 points between seeds on 200 examples

    def fill(path, worse, stores):
        loaded = load_suite(path)
        store = stores.enter_context(Store(loaded.store_path))  # open while check reads the predictions
        for spec in expand(loaded):
            store.write(fake_record(spec, correct[spec.strategy] + spread[spec.seed] - worse.get(spec.strategy, 0)))
        return Results.from_suite(loaded, expand(loaded), store)

    with contextlib.ExitStack() as stores:
        base = fill(small_suite(strategies=strategies, seeds=[0, 1]), {}, stores)
        cand = fill(small_suite(strategies=strategies, seeds=[0, 1], name="cand", store=str(tmp_path / "c.sqlite")),
                    {"lora": 4}, stores)
        report = check(base, cand)
    scores = [[100 * (correct[s] + spread[seed] - w) / 200 for seed in (0, 1)]
              for s in strategies for w in (0, 4 if s == "lora" else 0)]
    noise = stats.pooled_noise(scores)
    assert noise.dof == 6
    p = {}
    for s in strategies:
        runs = lambda w: [(seed, predictions(correct[s] + spread[seed] - w), REFS) for seed in (0, 1)]  # noqa: E731
        p[s] = stats.paired_test(runs(4 if s == "lora" else 0), runs(0), METRICS.get("accuracy"), noise,
                                 gamma=0.1 * 0.05 / 3).p_value
    by = {v.strategy: v for v in report.verdicts}
    assert {s: by[s].p_value for s in strategies} == pytest.approx(stats.holm(p))
    assert by["lora"].p_value > 0.05 and by["lora"].status != "regression"
