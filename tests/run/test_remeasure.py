"""A kept run's latency measured again on another machine: kept per (run, device), never in the record."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from harness.cli.commands import main
from harness.config.suite import load_suite
from harness.run.serving import device_name
from harness.store.database import Store
from harness.testing import FAST_TRAIN

TRAIN = {**FAST_TRAIN, "epochs": 1, "max_train_samples": 64, "max_eval_samples": 32}


def test_a_kept_run_is_measured_again_beside_its_record_and_reported_by_device(small_suite, tmp_path, capsys):
    import torch

    path = small_suite(strategies={"full": {}, "lora": {"r": 4}}, train={**TRAIN, "save_model": True})
    loaded = load_suite(path)
    assert main(["run", str(path)]) == 0
    with Store(loaded.store_path) as store:
        before = store.frame().set_index("id")
    here = device_name(torch.device("cpu"))
    for _ in range(2):  # measured twice on one device: the second replaces the first
        assert main(["measure", str(path)]) == 0
    assert "2 run(s) measured on this machine" in capsys.readouterr().out
    with Store(loaded.store_path) as store:
        after, kept = store.frame().set_index("id"), store.measurements()
        (lora,) = [i for i in after.index if after.loc[i, "strategy"] == "lora"]
        store.add_measurement(lora, "cuda (Fake GPU)", {"device": "cuda (Fake GPU)", "unmerged": {
            "latency_ms": {"median": 0.5}}, "merged": {"latency_ms": {"median": 0.25}}}, {})
    assert after.cost.to_dict() == before.cost.to_dict()  # the records are untouched
    assert set(kept) == set(after.index) and all(set(m) == {here} for m in kept.values())
    assert kept[lora][here]["unmerged"]["latency_ms"]["median"] > 0 and "merged" in kept[lora][here]
    assert sqlite3.connect(loaded.store_path).execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == 3

    out = tmp_path / "boards"
    assert main(["leaderboard", str(path), "--view", "cost", "--measured-on", "fake", "--out", str(out)]) == 0
    on_gpu = pd.read_csv(out / "leaderboard-cost.csv").set_index("strategy")
    assert on_gpu.loc["lora", "latency_ms"] == 0.5 and on_gpu.loc["lora", "merged_latency_ms"] == 0.25
    assert pd.isna(on_gpu.loc["full", "latency_ms"])  # never measured there: no figure, not the CPU's
    assert main(["leaderboard", str(path), "--view", "cost", "--out", str(out)]) == 0
    as_trained = pd.read_csv(out / "leaderboard-cost.csv").set_index("strategy")
    assert as_trained.loc["lora", "latency_ms"] == pytest.approx(
        after.loc[lora, "cost"]["serving"]["unmerged"]["latency_ms"]["median"])
    capsys.readouterr()
    assert main(["leaderboard", str(path), "--view", "cost", "--measured-on", "tpu"]) == 2
    assert "--measured-on 'tpu' is not a device these runs were measured on (cpu" in capsys.readouterr().out


def test_a_run_whose_model_was_not_kept_is_named_not_measured(small_suite, capsys):
    path = small_suite(train=TRAIN)
    assert main(["run", str(path)]) == 0
    capsys.readouterr()
    assert main(["measure", str(path)]) == 0
    said = capsys.readouterr().out
    assert "0 run(s) measured" in said and "1 run(s) not measured: their model was not kept" in said
