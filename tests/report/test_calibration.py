"""Calibration from the class probabilities stored with each run: ECE (10 equal-width bins) and Brier."""

from __future__ import annotations

import numpy as np
import pytest

from harness.cli.commands import main
from harness.config.suite import load_suite
from harness.report.calibration import brier, ece
from harness.store.database import Store
from harness.testing import FAST_TRAIN


def test_ece_and_brier_of_a_small_set_equal_a_hand_computation():
    probabilities = [[0.92, 0.08], [0.85, 0.15], [0.25, 0.75], [0.45, 0.55], [0.58, 0.42]]
    references = [0, 1, 1, 0, 0]
    # bins of the top probability: 0.92 (right), 0.85 (wrong), 0.75 (right), and 0.55 (wrong) with
    # 0.58 (right) sharing (0.5, 0.6]: 1/5 |0.92 - 1| + 1/5 |0.85 - 0| + 1/5 |0.75 - 1| + 2/5 |0.565 - 0.5|
    assert ece(probabilities, references) == pytest.approx(0.016 + 0.17 + 0.05 + 0.026)
    # squared distances from the one-hot references: 0.0128, 1.445, 0.125, 0.605, 0.3528
    assert brier(probabilities, references) == pytest.approx(2.5406 / 5)
    assert ece([[0.7, 0.3]] * 10, [0] * 7 + [1] * 3) == pytest.approx(0.0)  # 70% sure, 70% right


def test_a_temperature_scaled_copy_changes_ece_and_not_accuracy():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, size=(4000, 3))

    def softmax(x):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    calibrated = softmax(logits)
    labels = np.array([rng.choice(3, p=p) for p in calibrated])  # drawn from the probabilities: calibrated
    for temperature in (0.3, 3.0):  # overconfident, underconfident
        scaled = softmax(logits / temperature)
        assert (scaled.argmax(1) == calibrated.argmax(1)).all()  # accuracy unchanged
        assert ece(scaled, labels) > ece(calibrated, labels) + 0.05
    assert ece(calibrated, labels) < 0.03


def test_a_cell_keeps_its_class_probabilities_and_the_calibration_view_reads_them(small_suite, tmp_path, capsys):
    path = small_suite(seeds=[0, 1], train={**FAST_TRAIN, "epochs": 1, "max_train_samples": 96, "max_eval_samples": 40})
    loaded = load_suite(path)
    assert main(["run", str(path)]) == 0
    with Store(loaded.store_path) as store:
        for run_id in store.frame().id:
            found, (predictions, _) = store.probabilities(run_id), store.predictions(run_id)
            assert len(found) == len(predictions) == 40
            assert np.allclose(np.sum(found, axis=1), 1, atol=1e-5)
            assert list(np.argmax(found, axis=1)) == predictions
    capsys.readouterr()
    out = tmp_path / "boards"
    assert main(["leaderboard", str(path), "--view", "calibration", "--out", str(out)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "small_sentiment ECE" in said and "small_sentiment Brier" in said and "equal-width bins" in said
    assert 0 <= float((out / "leaderboard-calibration.csv").read_text().splitlines()[1].split(",")[3]) <= 1
