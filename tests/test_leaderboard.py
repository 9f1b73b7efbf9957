"""Leaderboard figures equal a computation by hand from the store."""

from __future__ import annotations

import statistics

import pandas as pd
import pytest

from harness.cli import main
from harness.plan import expand, load_suite
from harness.report.leaderboard import leaderboard
from harness.store import RunRecord, Store
from tests.conftest import write_yaml


def fake_record(spec, score: float, trainable: int) -> RunRecord:
    primary = spec.card.primary
    return RunRecord(id=spec.id, spec=spec.model_dump(mode="json"), status="done",
                     metrics={primary: score, "f1_macro": 0.0},
                     cost={"trainable_params": trainable, "trainable_share": trainable / 1000})


def test_leaderboard_equals_hand_computation(small_suite, tmp_path):
    second = write_yaml(tmp_path / "tasks" / "other.yaml", {
        "name": "other", "type": "classification", "source": {"generate": "same_subject"},
        "inputs": ["sentence1", "sentence2"], "labels": ["different", "same"], "metrics": ["mcc"], "primary": "mcc",
    })
    path = small_suite(tasks=[str(tmp_path / "tasks" / "small_sentiment.yaml"), str(second)],
                       strategies={"full": {}, "bitfit": {}}, seeds=[0, 1, 2])
    loaded = load_suite(path)
    specs = expand(loaded)
    scores = {}
    with Store(loaded.store_path) as store:
        for i, spec in enumerate(specs):
            if spec.strategy == "bitfit" and spec.task == "other" and spec.seed == 2:
                continue  # one missing seed
            scores[spec.id] = 50 + 7.3 * ((i * 37) % 11)
            store.write(fake_record(spec, scores[spec.id], 1000 if spec.strategy == "full" else 10))
        board = leaderboard(specs, store).set_index(["model", "strategy"])
        # by hand, straight from the store rows
        rows = store.db.execute("SELECT strategy, task, json_extract(metrics, '$.accuracy'), "
                                "json_extract(metrics, '$.mcc') FROM runs").fetchall()
    by_cell: dict = {}
    for strategy, task, acc, mcc in rows:
        by_cell.setdefault((strategy, task), []).append(acc if task == "small_sentiment" else mcc)
    for (strategy, task), values in by_cell.items():
        row = board.loc[("tiny", strategy)]
        assert row[f"{task}_mean"] == pytest.approx(statistics.mean(values))
        assert row[f"{task}_std"] == pytest.approx(statistics.stdev(values))
        assert row[f"{task}_n"] == len(values)
    for strategy in ("full", "bitfit"):
        means = [statistics.mean(by_cell[(strategy, t)]) for t in ("small_sentiment", "other")]
        assert board.loc[("tiny", strategy), "average"] == pytest.approx(statistics.mean(means))
    assert board.loc[("tiny", "bitfit"), "other_n"] == 2
    assert board.loc[("tiny", "full"), "trainable_params"] == 1000


def test_leaderboard_command_writes_markdown_and_csv(small_suite, tmp_path, capsys):
    path = small_suite(seeds=[0, 1])
    loaded = load_suite(path)
    specs = expand(loaded)
    with Store(loaded.store_path) as store:
        store.write(fake_record(specs[0], 80.0, 500))
        store.write(fake_record(specs[1], 90.0, 500))
    out_dir = tmp_path / "board"
    assert main(["leaderboard", str(path), "--out", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    assert "85.0 ± 7.1" in printed
    markdown = (out_dir / "leaderboard.md").read_text()
    assert "| tiny | full | 85.0 ± 7.1 | 85.0 | 500 | 50% |" in markdown
    csv = pd.read_csv(out_dir / "leaderboard.csv")
    assert csv.loc[0, "small_sentiment_mean"] == 85.0
    assert abs(csv.loc[0, "small_sentiment_std"] - statistics.stdev([80.0, 90.0])) < 1e-9


def test_failed_runs_are_not_scored(small_suite):
    loaded = load_suite(small_suite(seeds=[0, 1]))
    specs = expand(loaded)
    with Store(loaded.store_path) as store:
        store.write(fake_record(specs[0], 70.0, 5))
        store.write(RunRecord(id=specs[1].id, spec=specs[1].model_dump(mode="json"), status="failed", error="boom"))
        board = leaderboard(specs, store)
    assert board.loc[0, "small_sentiment_mean"] == 70.0 and board.loc[0, "small_sentiment_n"] == 1
