"""Predictions come back in dataset order whatever the training sampler, for every task type.

transformers 5 gives evaluation the training's length-grouped sampler when `group_by_length` is
on; harness must still pair each prediction with its own reference. Each cell below trains one
step at a negligible learning rate, so the model is the same with and without the option and
the two runs must predict the same thing for every row, in the same order.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.config.suite import expand, load_suite
from harness.run.cell import run_cell
from harness.testing import write_yaml

CASES = [("tiny:bert", "gen_similarity"), ("tiny:bert", "gen_entities"), ("tiny:bert", "gen_facts"),
         ("tiny:llama", "gen_headline")]


def _records(tmp_path, model: str, task: str) -> list:
    train = {"max_steps": 1, "learning_rate": 1.0e-12, "batch_size": 16, "eval_batch_size": 16,
             "max_length": 64, "max_target_length": 24, "max_train_samples": 64, "max_eval_samples": 96,
             "generation": {"max_new_tokens": 8}}
    records = []
    for grouped in (False, True):
        suite = write_yaml(tmp_path / f"{grouped}.yaml", {
            "name": "order", "models": {"m": model}, "tasks": [task], "strategies": {"full": {}}, "seeds": [0],
            "train": {**train, "group_by_length": grouped}, "store": str(tmp_path / "s.sqlite")})
        records.append(run_cell(expand(load_suite(suite))[0]))
    return records


@pytest.mark.parametrize("model,task", CASES, ids=[t for _, t in CASES])
def test_predictions_are_in_dataset_order_with_group_by_length(tmp_path, model, task):
    plain, grouped = _records(tmp_path, model, task)
    assert grouped.references == plain.references
    if task == "gen_similarity":  # regression: the float scores of the same model, row by row
        a, b = np.asarray(plain.predictions, float), np.asarray(grouped.predictions, float)
        assert np.std(a) > 0  # rows get different scores, so a shuffled order would show
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    else:
        assert len({str(p) for p in plain.predictions}) > 1  # a shuffled order would show
        assert grouped.predictions == plain.predictions
    assert grouped.metrics == pytest.approx(plain.metrics, abs=1e-3)
