"""The GPU paths' decisions, checked on a CPU (the CUDA queries and moves are monkeypatched or
spied on): prompted cells go to the accelerator, QA batches are padded on the right whatever the
tokenizer's side, backbones load as fp32 master weights, and a finished cell's memory is freed
before the next one's peak is measured."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from harness import executors
from harness.base import device
from harness.config.registry import TaskCatalogue
from harness.config.schemas import ModelSpec, TrainConfig
from harness.config.suite import expand, load_suite
from harness.run import cell as runner
from harness.run import cost
from harness.run.backbones import build_tokenizer, resolve
from harness.tasks.data import load_splits
from harness.tasks.types.qa import QuestionAnsweringType


def test_prompted_cells_predict_on_the_training_device(small_suite, monkeypatch):
    """zero_shot and in_context never reach Trainer, which is what moved models to the GPU."""
    moved = []
    real_to = torch.nn.Module.to

    def spy(self, *args, **kwargs):
        moved.append(args[0] if args else kwargs.get("device"))
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(runner, "training_device", lambda: "cpu")  # what cuda would be on a GPU machine
    monkeypatch.setattr(torch.nn.Module, "to", spy)
    spec = expand(load_suite(small_suite(models={"llama": "tiny:llama"}, strategies={"zero_shot": {}},
                                         train={"max_eval_samples": 10, "max_train_samples": 50})))[0]
    record = runner.run_cell(spec)
    assert "cpu" in moved and record.status == "done"
    assert record.info["weights_dtype"] == "float32"


def test_qa_batches_are_padded_on_the_right_so_spans_stay_aligned():
    """A left-padding tokenizer (decoder-only backbones have one): each window's tokens start at
    position 0 of its row, where its offsets and its training start/end positions count from, and
    logits peaking at the gold tokens decode to the gold answers."""
    card = TaskCatalogue().get("gen_facts")
    data = load_splits(card)
    rows = data.eval.select(range(8))
    tokenizer = build_tokenizer(list(rows["context"]) + list(rows["question"]), 800, ["input_ids", "attention_mask"])
    tokenizer.padding_side = "left"
    task_type = QuestionAnsweringType(card)
    train = TrainConfig(max_length=64)
    features, _ = task_type.preprocess(rows, "eval", tokenizer, train)
    columns = [c for c in ("input_ids", "attention_mask", "start_positions", "end_positions") if c in features.column_names]
    batch = task_type.collator(tokenizer)([{c: features[i][c] for c in columns} for i in range(len(features))])
    width = batch["input_ids"].shape[1]
    assert len({len(ids) for ids in features["input_ids"]}) > 1  # rows of different lengths: padding happens
    for i, ids in enumerate(features["input_ids"]):
        assert batch["input_ids"][i, : len(ids)].tolist() == ids  # the window first, padding after it
        assert batch["attention_mask"][i, len(ids):].sum() == 0
    start = np.full((len(features), width), -10.0)
    end = np.full((len(features), width), -10.0)
    for i in range(len(features)):
        start[i, features[i]["start_positions"]] = end[i, features[i]["end_positions"]] = 10.0
    decoded = task_type.decode((start, end), features)
    assert decoded == [gold[0] for gold in task_type.references(features)]


def test_backbones_load_as_fp32_master_weights_whatever_the_checkpoint(tmp_path, monkeypatch):
    folder = tmp_path / "bf16-bert"
    config = transformers.BertConfig(vocab_size=200, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=64)
    transformers.BertModel(config).to(torch.bfloat16).save_pretrained(folder)
    build_tokenizer(["good film", "bad film"] * 20, 200).save_pretrained(folder)
    asked = []
    real = transformers.AutoModelForSequenceClassification.from_pretrained

    def spy(*args, **kwargs):
        asked.append(kwargs.get("dtype"))
        return real(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained", spy)
    model, _ = resolve("b", ModelSpec(source=str(folder))).load(
        transformers.AutoModelForSequenceClassification, {"num_labels": 2}, [], 0)
    assert asked == [torch.float32]  # asked for, not left to the library's default (which has moved before)
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_a_finished_cell_is_freed_before_the_next_peak_is_measured(monkeypatch):
    released = []
    monkeypatch.setattr(executors, "release", lambda: released.append(True))
    monkeypatch.setattr(runner, "run_cells", lambda *a: (_ for _ in ()).throw(RuntimeError("out of memory")))
    spec = type("Spec", (), {"partners": {}, "train": TrainConfig(), "compute": device.Target.here().compute("auto")})()
    with pytest.raises(RuntimeError, match="out of memory"):
        executors.run_job([spec])
    assert released == [True]  # freed even when the cell failed

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda *a: calls.append("reset"))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: 123 * 2**20)
    monkeypatch.setattr(device.gc, "collect", lambda: calls.append("gc") or 0)
    with cost.PeakMemory() as memory:
        pass
    assert calls == ["gc", "empty_cache", "reset"] and memory.megabytes == 123.0
