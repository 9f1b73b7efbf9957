"""Data sources: generated tasks, local files in every format, carving, bad rows."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import pytest

from harness.base.errors import DataError
from harness.config.card import TaskCard
from harness.config.suite import expand, load_suite
from harness.run.cell import run_cell
from harness.tasks.data import fingerprint, load_splits
from harness.tasks.generated import same_subject, sentiment, similarity
from harness.testing import write_yaml


@pytest.mark.parametrize("generator", [sentiment, same_subject, similarity])
def test_generated_tasks_are_deterministic_per_seed(generator):
    assert generator(3, n_train=50, n_eval=10) == generator(3, n_train=50, n_eval=10)
    assert generator(3, n_train=50, n_eval=10) != generator(4, n_train=50, n_eval=10)


def test_generated_labels_are_balanced():
    labels = [r["label"] for r in sentiment(0)["train"]]
    assert 0.45 < sum(labels) / len(labels) < 0.55


ROWS = [{"text": f"row {i} {'good' if i % 2 else 'bad'}", "label": i % 2} for i in range(40)]


def write_rows(path, fmt):
    frame = pd.DataFrame(ROWS)
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif fmt == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    else:
        frame.to_parquet(path)


def card_for(tmp_path, files, **extra) -> TaskCard:
    data = {"name": "local", "type": "classification", "source": {"files": files}, "inputs": ["text"],
            "labels": ["neg", "pos"], "metrics": ["accuracy"], "primary": "accuracy", **extra}
    path = write_yaml(tmp_path / "local.yaml", data)
    from harness.config.registry import load_card

    return load_card(path)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_local_files_in_every_format(tmp_path, fmt):
    write_rows(tmp_path / f"train.{fmt}", fmt)
    write_rows(tmp_path / f"dev.{fmt}", fmt)
    card = card_for(tmp_path, {"train": f"train.{fmt}", "validation": f"dev.{fmt}"})  # relative to the card
    data = load_splits(card)
    texts = dict(zip([*data.train["__row__"], *data.dev["__row__"]], [*data.train["text"], *data.dev["text"]]))
    assert len(data.eval) == len(texts) == 40 and len(data.dev) == 4  # dev: a tenth of train, carved
    assert (texts[0], texts[1]) == ("row 0 bad", "row 1 good")
    assert data.eval_source == "validation"


def test_eval_is_carved_from_train_with_a_seed(tmp_path):
    write_rows(tmp_path / "train.csv", "csv")
    card = card_for(tmp_path, {"train": "train.csv"}, splits={"eval": None, "validation_fraction": 0.25})
    data = load_splits(card)
    assert (len(data.train), len(data.dev), len(data.eval)) == (26, 4, 10)  # dev: a tenth of the 30 left, stratified
    assert data.eval_source == "train (carved)"
    assert not set(data.train["__row__"]) & set(data.eval["__row__"])
    again = load_splits(card.model_copy(update={"description": "x"}))  # not the cached object
    assert list(again.eval["__row__"]) == list(data.eval["__row__"])


def labelled(tmp_path, counts: dict, **splits) -> TaskCard:
    """A card on a train file with counts[label] rows of each label (rows interleaved), eval carved."""
    rows = [{"text": f"{label} {i}", "label": label} for i in range(max(counts.values()))
            for label, n in counts.items() if i < n]
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    return card_for(tmp_path, {"train": "train.csv"}, labels=sorted(set(counts) | {"a", "b"}), splits={"eval": None, **splits})


def test_carving_refuses_a_split_under_the_minimum_naming_the_task_and_the_split(tmp_path):
    """The issue's case: a 1-row dataset gave train 0, dev 0, eval 1, silently."""
    with pytest.raises(DataError, match=r"task 'local' .*carving eval .* leaves eval with 0 row\(s\), under the "
                                        r"minimum of 2"):
        load_splits(labelled(tmp_path, {"a": 1}))
    with pytest.raises(DataError, match=r"carving dev .* leaves dev with 1 row\(s\)"):  # eval fine, dev too small
        load_splits(labelled(tmp_path, {"a": 6, "b": 6}, validation_fraction=0.2))
    with pytest.raises(DataError, match=r"leaves train \(after carving eval\) with 0 row"):
        load_splits(labelled(tmp_path, {"a": 2, "b": 2}, validation_fraction=0.9))
    data = load_splits(labelled(tmp_path, {"a": 12, "b": 12}, validation_fraction=0.2, dev_fraction=0.2))
    assert (len(data.train), len(data.dev), len(data.eval)) == (16, 4, 4)


def test_a_label_with_one_example_keeps_the_others_stratified(tmp_path):
    """A singleton label turned stratification off for every label. Now each other label's hold-out
    is its fraction exactly, and the singleton is not forced into eval."""
    data = load_splits(labelled(tmp_path, {"a": 500, "b": 300, "c": 1}))
    held = Counter(data.eval["label"])
    assert held == {"a": 50, "b": 30}
    assert Counter(data.dev["label"]) == {"a": 45, "b": 27}  # a tenth of what eval left, per label


def test_rare_labels_are_held_out_at_the_fraction_not_a_row_each(tmp_path):
    """20 labels of 2 rows beside two of 180: each rare label lost a row to eval (rare labels 33% of
    eval against 9% of the data, eval 13.6% of the data). Now the rare labels are pooled and a tenth
    of the pool is held out: eval is 10% of the data, rare labels 10% of eval as of the data."""
    counts = {"common1": 180, "common2": 180} | {f"rare{i:02d}": 2 for i in range(20)}
    data = load_splits(labelled(tmp_path, counts))
    held = Counter(data.eval["label"])
    rare = sum(n for label, n in held.items() if label.startswith("rare"))
    assert len(data.eval) == 40 and (held["common1"], held["common2"], rare) == (18, 18, 4)
    assert len(data.train) + len(data.dev) + len(data.eval) == 400
    assert not set(data.train["__row__"]) & set(data.eval["__row__"])


def test_carving_is_in_the_data_fingerprint(tmp_path):
    """A card that carves a split names the carving rules' version in its fingerprint: rows carved by
    other rules are another result."""
    import harness.tasks.data

    card = labelled(tmp_path, {"a": 10, "b": 10})
    before = fingerprint(card)
    harness.tasks.data.CARVE_VERSION += 1
    try:
        assert fingerprint(card) != before
    finally:
        harness.tasks.data.CARVE_VERSION -= 1
    named = card.model_copy(update={"splits": card.splits.model_copy(update={"eval": "validation", "dev": "dev"})})
    harness.tasks.data.CARVE_VERSION += 1
    try:
        assert fingerprint(named) == fingerprint(named.model_copy())  # nothing carved: the version is not read
    finally:
        harness.tasks.data.CARVE_VERSION -= 1


def test_glue_style_tsv_with_quotes_and_bom(tmp_path):
    (tmp_path / "train.tsv").write_text('\ufeffsentence\tlabel\nit \'s a "great" film \t1\nawful \t0\nfine\t1\nbad\t0\n',
                                        encoding="utf-8")
    card = card_for(tmp_path, {"train": "train.tsv"}, inputs=["sentence"], splits={"eval": "train", "dev_fraction": 0.5})
    data = load_splits(card)
    rows = sorted(zip([*data.train["__row__"], *data.dev["__row__"]], [*data.train["sentence"], *data.dev["sentence"]]))
    assert [text for _, text in rows] == ['it \'s a "great" film ', "awful ", "fine", "bad"]


def test_missing_file_and_missing_split(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_splits(card_for(tmp_path, {"train": "nope.csv"}))
    write_rows(tmp_path / "train.csv", "csv")
    with pytest.raises(DataError, match="no split 'dev' for eval"):
        load_splits(card_for(tmp_path, {"train": "train.csv"}, splits={"eval": "dev"}))


def test_fingerprint_follows_file_content(tmp_path):
    write_rows(tmp_path / "train.csv", "csv")
    card = card_for(tmp_path, {"train": "train.csv"})
    before = fingerprint(card)
    (tmp_path / "train.csv").write_text("text,label\nx,0\n")
    assert fingerprint(card) != before


def test_empty_text_is_an_error_naming_the_row(small_suite, tmp_path):
    (tmp_path / "train.csv").write_text("text,label\ngood,1\n,0\nbad,0\nnice,1\nworse,0\nfine,1\n")
    card = write_yaml(tmp_path / "tasks" / "holes.yaml", {
        "name": "holes", "type": "classification", "source": {"files": {"train": str(tmp_path / "train.csv")}},
        "inputs": ["text"], "labels": ["neg", "pos"], "metrics": ["accuracy"], "primary": "accuracy",
        "splits": {"eval": "train", "dev_fraction": 0.5},
    })
    spec = expand(load_suite(small_suite(tasks=[str(card)])))[0]
    with pytest.raises(DataError, match="task 'holes', split 'train', row 1: column 'text' is empty"):
        run_cell(spec)


def test_unknown_generator_option_is_named(small_suite, tmp_path):
    card = write_yaml(tmp_path / "tasks" / "gen.yaml", {
        "name": "gen", "type": "classification", "source": {"generate": "sentiment", "options": {"n_trian": 5}},
        "inputs": ["sentence"], "labels": ["neg", "pos"], "metrics": ["accuracy"], "primary": "accuracy",
    })
    from harness.base.errors import ConfigError

    with pytest.raises(ConfigError, match="gen.yaml: source.options: unknown key 'n_trian' \\(did you mean 'n_train'\\?\\)"):
        load_suite(small_suite(tasks=[str(card)]))


def test_truncation_is_applied_and_counted():
    import datasets

    from harness.config.schemas import TrainConfig
    from harness.run.backbones import build_tokenizer
    from harness.tasks.types.classification import ClassificationType

    card = TaskCard(name="t", type="classification", source={"generate": "sentiment"}, inputs=["a", "b"],
                    labels=["x", "y"], metrics=["accuracy"], primary="accuracy")
    rows = datasets.Dataset.from_dict({"a": ["short", "word " * 30, "tiny"], "b": ["one", "two " * 30, "x"], "label": [0, 1, 0]})
    tokenizer = build_tokenizer(["short word two one tiny x"], 100)
    task_type = ClassificationType(card)
    out, info = task_type.preprocess(rows, "train", tokenizer, TrainConfig(max_length=16))
    assert info == {"rows": 3, "truncated": 1}
    lengths = [len(ids) for ids in out["input_ids"]]
    assert lengths[1] == 16 and lengths[0] < 16
    assert out["input_ids"][1][-1] == tokenizer.sep_token_id  # truncated as a pair, separators kept
    assert out["token_type_ids"][1].count(1) > 0  # both sentences kept some tokens
    assert out["input_ids"][0] == tokenizer("short", "one")["input_ids"]
