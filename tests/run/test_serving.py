"""What a result costs beyond training: serving latency (merged and unmerged), shipped bytes, FLOPs."""

from __future__ import annotations

import json
import struct

import datasets
import pytest
import torch
from rich.console import Console
from transformers import AutoModelForSequenceClassification, BertConfig, DataCollatorWithPadding

from harness.config.suite import expand, load_suite
from harness.executors.local import run_local
from harness.plan.plan import jobs
from harness.run.serving import forward_cost, served_both_ways, step_flops
from harness.store.database import Store
from harness.testing import FAST_TRAIN


def _bert(hidden=64, layers=2, heads=4, intermediate=128, labels=2):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=intermediate, num_labels=labels, attn_implementation="sdpa")
    return AutoModelForSequenceClassification.from_config(config)


def test_counted_training_flops_of_a_tiny_bert_equal_a_hand_count():
    b, n, h, i, layers, c = 4, 16, 64, 128, 2, 2
    model = _bert(h, layers, 4, i, c)
    batch = {"input_ids": torch.randint(5, 100, (b, n)), "attention_mask": torch.ones(b, n, dtype=torch.long),
             "labels": torch.tensor([0, 1, 0, 1])}
    tokens = b * n
    # forward matmuls: per layer Q, K, V and the output projection (4 h x h), the feed-forward (h x i
    # and i x h), and attention's scores and weighted values (2 x n x n x h per sequence); then the
    # pooler (h x h) and the classifier (h x c) on each sequence's first token. 2 FLOPs a multiply-add.
    forward = layers * (2 * tokens * (4 * h * h + 2 * h * i) + 2 * 2 * b * n * n * h) + 2 * b * (h * h + h * c)
    # backward: each matmul twice more (the gradient of its input and of its weight)
    assert step_flops(model, batch) == pytest.approx(3 * forward, rel=0.05)
    assert step_flops(model, batch, train=False) == pytest.approx(forward, rel=0.05)
    assert all(p.grad is None for p in model.parameters())  # counting leaves no gradient behind


def test_an_unmerged_lora_is_at_least_as_slow_as_its_merged_twin_on_the_same_rows():
    import peft

    model = peft.get_peft_model(_bert(256, 2, 4, 1024), peft.LoraConfig(r=64, target_modules=["query", "key", "value",
                                                                                              "dense"],
                                                                          task_type="SEQ_CLS"))
    rows = datasets.Dataset.from_dict({"input_ids": [[2, *range(5, 5 + 60), 3]] * 40,
                                       "attention_mask": [[1] * 62] * 40})
    collator = DataCollatorWithPadding(_Pad())
    medians = {"unmerged": [], "merged": []}
    for _ in range(3):  # timing on a shared machine: the best of three measurements each way
        measured = served_both_ways(model, lambda served: forward_cost(served, rows, collator, 8, seed=0))
        for way in medians:
            medians[way].append(measured[way]["latency_ms"]["median"])
        assert measured["unmerged"]["rows"] == measured["merged"]["rows"] == 32  # the same seeded rows
    assert min(medians["unmerged"]) >= min(medians["merged"])
    assert not any(getattr(m, "merged", False) for m in model.modules())  # left unmerged, as it was trained


class _Pad:
    """The least a padding collator needs of a tokenizer."""

    pad_token_id, padding_side, model_input_names = 0, "right", ["input_ids", "attention_mask"]

    def pad(self, features, **kwargs):
        width = max(len(f["input_ids"]) for f in features)
        return {k: torch.tensor([list(f[k]) + [0] * (width - len(f[k])) for f in features])
                for k in ("input_ids", "attention_mask")}


def _data_bytes(path) -> int:
    """The tensor bytes of a safetensors file: its size less the 8-byte length and the JSON header."""
    raw = path.read_bytes()
    header = struct.unpack("<Q", raw[:8])[0]
    json.loads(raw[8:8 + header])
    return len(raw) - 8 - header


def test_shipped_bytes_are_the_saved_files_and_every_cell_records_its_serving_and_flops(small_suite, tmp_path):
    train = {**FAST_TRAIN, "epochs": 1, "max_train_samples": 96, "max_eval_samples": 48, "save_model": True}
    loaded = load_suite(small_suite(strategies={"full": {}, "lora": {"r": 8}}, train=train))
    specs = expand(loaded)
    with Store(loaded.store_path) as store:
        assert not run_local(jobs(specs), store, Console(quiet=True)).failed
        runs = store.frame().set_index("strategy")
    folder = {s.strategy: loaded.store_path.parent / "runs" / s.id / "model" for s in specs}
    lora, full = runs.loc["lora"].cost, runs.loc["full"].cost
    assert lora["shipped_bytes"]["files"] == _data_bytes(folder["lora"] / "adapter_model.safetensors")
    assert full["shipped_bytes"]["files"] == _data_bytes(folder["full"] / "trained.safetensors")
    assert lora["shipped_bytes"]["merged"] == full["shipped_bytes"]["files"]  # merged: a whole model again
    assert set(lora["serving"]) == {"device", "unmerged", "merged"} and set(full["serving"]) == {"device", "as_trained"}
    assert lora["serving"]["device"].startswith("cpu")
    for cost in (lora, full):
        assert cost["flops"]["train"] > cost["flops"]["evaluate"] > 0 and cost["seconds"]["measure"] > 0
    assert lora["flops"]["train"] < full["flops"]["train"]  # LoRA computes no gradient of the frozen weights


def test_a_measurement_that_fails_is_recorded_and_the_result_kept(small_suite, monkeypatch):
    import harness.run.serving as serving

    monkeypatch.setattr(serving, "forward_cost", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no clock")))
    loaded = load_suite(small_suite(train={**FAST_TRAIN, "epochs": 1, "max_train_samples": 64, "max_eval_samples": 32}))
    with Store(loaded.store_path) as store:
        assert not run_local(jobs(expand(loaded)), store, Console(quiet=True)).failed
        record = store.frame().iloc[0]
    assert record.status == "done" and record.metrics["accuracy"] >= 0
    assert record.cost["measure_error"] == "RuntimeError: no clock" and record.cost["flops"]["train"] > 0


def test_a_forward_pass_of_deberta_counts_and_leaves_every_parameter_as_it_was():
    """DeBERTa-v2 passes its relative position embeddings (a parameter) as a module's input, which
    torch's counter could not hook under no_grad ("Expected gradient function to be set")."""
    from transformers import DebertaV2Config

    torch.manual_seed(0)
    config = DebertaV2Config(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=64, num_labels=2, relative_attention=True, pos_att_type=["p2c", "c2p"],
                             max_relative_positions=16, position_buckets=8)
    model = AutoModelForSequenceClassification.from_config(config)
    model.classifier.weight.requires_grad_(False)  # a frozen parameter stays frozen, a trained one trainable
    wanted = {n: p.requires_grad for n, p in model.named_parameters()}
    batch = {"input_ids": torch.randint(5, 100, (2, 8)), "attention_mask": torch.ones(2, 8, dtype=torch.long),
             "labels": torch.tensor([0, 1])}
    forward = step_flops(model, batch, train=False)
    assert 0 < forward < step_flops(model, batch)
    assert {n: p.requires_grad for n, p in model.named_parameters()} == wanted
