"""The train / dev / eval protocol: dev is carved from train (stratified, seeded, the same for every
cell), nothing selects on eval, early stopping monitors a real metric in the right direction, and
few-shot cells select on a few-shot dev set."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.base.errors import ConfigError
from harness.config.card import TaskCard
from harness.config.registry import load_card
from harness.config.schemas import TrainConfig
from harness.config.suite import expand, load_suite
from harness.run.cell import load_task, run_cell
from harness.strategies.recipe import build
from harness.tasks.data import ROW, load_splits
from harness.testing import write_yaml


def local_card(tmp_path, n=400, positive_share=0.25, **splits) -> TaskCard:
    rows = [{"text": f"row {i}", "label": int(i % int(1 / positive_share) == 0)} for i in range(n)]
    pd.DataFrame(rows).to_csv(tmp_path / "rows.csv", index=False)
    return load_card(write_yaml(tmp_path / "local.yaml", {
        "name": "local", "type": "classification", "source": {"files": {"train": "rows.csv"}}, "inputs": ["text"],
        "labels": ["neg", "pos"], "metrics": ["accuracy"], "primary": "accuracy",
        "splits": {"eval": None, "validation_fraction": 0.2, **splits}}))


def test_dev_is_carved_from_train_stratified_seeded_and_disjoint(tmp_path):
    data = load_splits(local_card(tmp_path))
    rows = {name: set(getattr(data, name)[ROW]) for name in ("train", "dev", "eval")}
    assert not (rows["train"] & rows["dev"]) and not (rows["train"] & rows["eval"]) and not (rows["dev"] & rows["eval"])
    assert len(rows["train"]) + len(rows["dev"]) + len(rows["eval"]) == 400
    assert (data.train_source, data.dev_source, data.eval_source) == ("train", "train (carved dev)", "train (carved)")
    for split in (data.dev, data.eval):  # a quarter positive, as in the source (stratified)
        assert sum(split["label"]) == round(0.25 * len(split))
    (tmp_path / "again").mkdir()
    again = load_splits(local_card(tmp_path / "again"))  # the same card elsewhere: loaded afresh, not cached
    assert list(again.dev[ROW]) == list(data.dev[ROW])  # seeded by the card: every cell of the task gets the same dev


def test_a_named_dev_split_is_used_and_dev_can_never_be_eval(tmp_path):
    pd.DataFrame([{"text": f"t{i}", "label": i % 2} for i in range(20)]).to_csv(tmp_path / "a.csv", index=False)
    base = {"name": "named", "type": "classification", "inputs": ["text"], "labels": ["neg", "pos"],
            "metrics": ["accuracy"], "primary": "accuracy",
            "source": {"files": {"train": "a.csv", "validation": "a.csv", "test": "a.csv"}}}
    card = load_card(write_yaml(tmp_path / "named.yaml", base | {"splits": {"eval": "test", "dev": "validation"}}))
    data = load_splits(card)
    assert (data.dev_source, data.eval_source, len(data.train)) == ("validation", "test", 20)
    with pytest.raises(ConfigError, match="dev is the eval .* split 'test': selection must look at a split of its own"):
        load_card(write_yaml(tmp_path / "bad.yaml", base | {"splits": {"eval": "test", "dev": "test"}}))


def test_few_shot_cells_select_on_a_few_shot_dev_set(tmp_path):
    task = load_task(local_card(tmp_path), build("full", {}, "t", "s"), TrainConfig(shots=4), 0)
    assert len(task.train_rows) == 8 and len(task.dev_rows) == 8 and sorted(task.dev_rows["label"]) == [0] * 4 + [1] * 4
    whole = load_task(local_card(tmp_path), build("full", {}, "t", "s"),
                      TrainConfig(shots=4, few_shot_dev=False), 0)  # the suite says otherwise: all of dev
    assert len(whole.train_rows) == 8 and len(whole.dev_rows) == len(task.data.dev) > 8


def test_early_stopping_selects_on_dev_and_the_record_says_so(small_suite):
    path = small_suite(train={"epochs": 3, "learning_rate": 2e-3, "batch_size": 32, "max_length": 48,
                              "early_stopping": {"patience": 3}})
    record = run_cell(expand(load_suite(path))[0])
    assert record.info["selected_on"] == "train (carved dev)" and record.info["reported_on"] == "validation"
    dev_rows = len(load_splits(expand(load_suite(path))[0].task_card()).dev)
    evaluations = [e for e in record.info["log_history"] if "eval_accuracy" in e]
    assert evaluations and all(e["eval_samples_per_second"] > 0 for e in evaluations)
    assert dev_rows == 60  # 10% of the 600 generated training rows


def test_early_stopping_on_the_loss_keeps_the_lowest_loss_checkpoint(small_suite):
    path = small_suite(train={"epochs": 4, "learning_rate": 2e-3, "batch_size": 32, "max_length": 48,
                              "eval_every_steps": 4, "early_stopping": {"metric": "loss", "patience": 10}})
    record = run_cell(expand(load_suite(path))[0])
    losses = {e["step"]: e["eval_loss"] for e in record.info["log_history"] if "eval_loss" in e}
    assert len(set(losses.values())) > 1
    assert record.info["best_step"] == min(losses, key=losses.get)


def test_early_stopping_metric_must_be_one_the_task_has(small_suite):
    with pytest.raises(ConfigError, match=r"train.early_stopping.metric .*unknown metric 'acuracy'.*did you mean 'accuracy'"):
        load_suite(small_suite(train={"early_stopping": {"metric": "acuracy"}}))
    load_suite(small_suite(train={"early_stopping": {"metric": "f1_macro"}}))
    load_suite(small_suite(train={"early_stopping": {"metric": "loss"}}))


def test_early_stopping_on_the_loss_is_refused_where_the_dev_score_is_generated(small_suite):
    with pytest.raises(ConfigError, match="task 'gen_reorder' is scored on generated text, which has no dev loss"):
        load_suite(small_suite(tasks=["gen_reorder"], train={"early_stopping": {"metric": "loss"}}))
