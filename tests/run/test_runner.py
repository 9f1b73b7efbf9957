"""One cell end to end on a tiny built backbone: it learns, it costs, and strategies freeze what they say."""

from __future__ import annotations

import pytest
import torch

from harness.config.suite import expand, load_suite
from harness.run.cell import run_cell
from harness.testing import FAST_TRAIN, trained_pair


def test_full_fine_tuning_learns_far_above_chance(small_suite):
    spec = expand(load_suite(small_suite()))[0]
    record = run_cell(spec)
    assert record.status == "done"
    assert record.metrics["accuracy"] > 85.0  # chance is ~50 on this balanced task
    assert set(record.metrics) == {"accuracy", "f1_macro"}
    assert "scikit-learn==" in record.signatures["accuracy"]
    cost = record.cost
    assert cost["trainable_params"] == cost["total_params"] > 100_000
    assert set(cost["seconds"]) == {"load", "preprocess", "train", "evaluate", "measure"}
    assert cost["peak_memory_mb"] > 0 and cost["train_samples_per_second"] > 0
    assert len(record.predictions) == len(record.references) == 200
    assert record.environment["packages"]["transformers"]


def test_regression_task_scores_with_pearson(small_suite, tmp_path):
    from harness.testing import write_yaml

    card = write_yaml(tmp_path / "tasks" / "sim.yaml", {
        "name": "sim", "type": "classification",
        "source": {"generate": "similarity", "options": {"n_train": 400, "n_eval": 100}},
        "inputs": ["sentence1", "sentence2"], "label": "score", "metrics": ["pearson", "spearman"], "primary": "pearson",
    })
    spec = expand(load_suite(small_suite(tasks=[str(card)])))[0]
    record = run_cell(spec)
    assert set(record.metrics) == {"pearson", "spearman"}
    assert all(isinstance(p, float) for p in record.predictions)


@pytest.mark.parametrize("strategy", ["head_only", "bitfit", "lora", "full"])
def test_frozen_parameters_are_bit_identical_and_trainable_ones_move(small_suite, strategy):
    spec = next(s for s in expand(load_suite(small_suite(strategies={strategy: {}}, train={"epochs": 1, "learning_rate": 1e-2}))))
    before, after, trainable = trained_pair(spec)
    frozen = set(before) - trainable
    for name in frozen:
        assert torch.equal(before[name], after[name].detach()), f"{strategy} changed frozen {name}"
    moved = [n for n in trainable if not torch.equal(before[n], after[n].detach())]
    assert moved, f"{strategy}: nothing trained"
    if strategy == "head_only":
        assert trainable == {"classifier.weight", "classifier.bias"}
    if strategy == "bitfit":
        assert all(n.endswith(".bias") or n.startswith("classifier.") for n in trainable)
        assert "bert.encoder.layer.0.attention.self.query.bias" in trainable
    if strategy == "lora":
        assert all("lora_" in n or "classifier" in n for n in trainable)
        assert any("query.lora_A" in n for n in trainable) and any("value.lora_B" in n for n in trainable)
    if strategy == "full":
        assert not frozen


@pytest.mark.parametrize("strategy", ["full", "lora"])
def test_early_stopping_keeps_the_best_checkpoint_and_says_where_it_was_chosen(small_suite, strategy):
    path = small_suite(strategies={strategy: {}},
                       train={"epochs": 8, "learning_rate": 5e-3, "batch_size": 64, "max_length": 48,
                              "early_stopping": {"patience": 1}})
    record = run_cell(expand(load_suite(path))[0])
    evals = [e for e in record.info["log_history"] if "eval_accuracy" in e]
    assert evals, "no evaluation was logged"
    best = max(evals, key=lambda e: e["eval_accuracy"])
    # chosen on dev, carved from train; reported on the validation split, which nothing looked at
    assert (record.info["selected_on"], record.info["reported_on"]) == ("train (carved dev)", "validation")
    assert record.info["best_step"] == best["step"]
    assert len(record.predictions) == 200 and all(e["eval_samples_per_second"] > 0 for e in evals)
    if record.info["epochs"] < 8:
        assert len(evals) >= 2  # it stopped on a plateau


def test_max_steps_overrides_epochs(small_suite):
    record = run_cell(expand(load_suite(small_suite(train={"epochs": 5, "max_steps": 7})))[0])
    assert record.info["steps"] == 7


def test_preprocessing_is_done_once_and_reused_by_other_cells(small_suite, tmp_path):
    specs = expand(load_suite(small_suite(strategies={"full": {}, "head_only": {}}, train={**FAST_TRAIN, "epochs": 1})))
    artifacts = tmp_path / "results" / "runs"
    first = run_cell(specs[0], artifacts=artifacts)
    second = run_cell(specs[1], artifacts=artifacts)
    assert (first.info["train"]["cache"], first.info["eval"]["cache"]) == ("miss", "miss")
    assert (second.info["train"]["cache"], second.info["eval"]["cache"]) == ("hit", "hit")
    assert second.info["train"]["rows"] == first.info["train"]["rows"]
    uncached = run_cell(specs[1])  # no store folder: preprocessing done afresh
    assert "cache" not in uncached.info["train"] and uncached.predictions == second.predictions
    # a setting that preprocessing reads makes a new entry
    longer = expand(load_suite(small_suite(strategies={"head_only": {}}, train={**FAST_TRAIN, "epochs": 1, "max_length": 40})))
    assert run_cell(longer[0], artifacts=artifacts).info["train"]["cache"] == "miss"
    # train, dev (checked whether or not training reads it) and eval at two max_lengths
    assert len(list((tmp_path / "results" / "cache" / "preprocessed").iterdir())) == 6


def test_precision_needs_a_gpu_for_bf16_and_is_recorded(small_suite):
    from harness.base.device import precision

    record = run_cell(expand(load_suite(small_suite(train={**FAST_TRAIN, "epochs": 1})))[0])
    assert record.info["precision"] == ("bf16" if torch.cuda.is_available() else "fp32")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="train.precision 'bf16' needs a CUDA GPU"):
            precision("bf16")


def test_auto_batch_size_halves_the_batch_on_out_of_memory_and_keeps_the_effective_batch(small_suite, monkeypatch):
    from harness.run.training import HarnessTrainer

    real_step = HarnessTrainer.training_step

    def step(self, model, inputs, num_items_in_batch=None):
        # this "device" holds 8 examples at most, and the first attempt runs out after two steps
        if inputs["input_ids"].shape[0] > 8 and self.state.global_step >= 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(self, model, inputs, num_items_in_batch)

    monkeypatch.setattr(HarnessTrainer, "training_step", step)
    train = {**FAST_TRAIN, "epochs": 1, "batch_size": 32}
    auto = run_cell(expand(load_suite(small_suite(train={**train, "auto_batch_size": True})))[0])
    assert auto.info["batch"] == {"per_device": 8, "accumulation": 4}
    by_hand = run_cell(expand(load_suite(small_suite(train={**train, "batch_size": 8, "gradient_accumulation_steps": 4})))[0])
    assert auto.info["steps"] == by_hand.info["steps"] == 17  # 540 rows (600 less a tenth for dev) / 32 per step
    assert auto.predictions == by_hand.predictions  # trained afresh from the starting weights
