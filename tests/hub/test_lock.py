"""`harness lock`: the commits a suite's unpinned hub models and datasets resolve to, written beside
the suite and read back when it loads, so that a later run reads the same commits and its run ids
say which. The hub call itself is replaced here (no hub in the tests); everything around it is real."""

from __future__ import annotations

import pytest

from harness.base.errors import ConfigError
from harness.cli.commands import main
from harness.config.suite import expand, load_suite
from harness.hub import lock
from harness.hub import reach as hub
from harness.testing import write_yaml

MODEL_COMMIT, DATA_COMMIT = "a" * 40, "b" * 40


@pytest.fixture
def hub_suite(small_suite, tmp_path):
    card = write_yaml(tmp_path / "tasks" / "hub_task.yaml", {
        "name": "hub_task", "type": "classification", "inputs": ["sentence"], "labels": ["negative", "positive"],
        "source": {"hub": "org/data", "revision": "refs/convert/parquet",
                   "data_files": {"train": "default/train/*.parquet", "validation": "default/validation/*.parquet"}},
        "metrics": ["accuracy"], "primary": "accuracy"})
    return small_suite(models={"bert": "org/bert", "pinned": {"source": "org/pinned", "revision": "c" * 40},
                               "tiny": "tiny:bert"},
                       tasks=[str(tmp_path / "tasks" / "small_sentiment.yaml"), str(card)])


def fake_hub(monkeypatch, commits):
    asked = []

    def resolve(kind, repo, revision):
        asked.append((kind, repo, revision))
        return commits[kind]

    monkeypatch.setattr(lock, "resolve_commit", resolve)
    monkeypatch.setattr(hub, "unreachable", lambda: None)
    return asked


def test_lock_pins_what_is_unpinned_and_the_suite_then_reads_the_commits(hub_suite, monkeypatch, capsys):
    before = {s.label: s.id for s in expand(load_suite(hub_suite))}
    asked = fake_hub(monkeypatch, {"model": MODEL_COMMIT, "dataset": DATA_COMMIT})
    assert main(["lock", str(hub_suite)]) == 0
    # only the unpinned hub sources: not the pinned model, not the tiny one, not the local card
    assert asked == [("dataset", "org/data", "refs/convert/parquet"), ("model", "org/bert", "main")]
    assert "wrote " in capsys.readouterr().out and lock.lock_path(hub_suite).exists()

    loaded = load_suite(hub_suite)
    assert loaded.backbones["bert"].spec.revision == MODEL_COMMIT
    assert loaded.backbones["pinned"].spec.revision == "c" * 40
    assert loaded.cards["hub_task"].source.revision == DATA_COMMIT
    after = {s.label: s.id for s in expand(loaded)}
    changed = {label for label in before if before[label] != after[label]}
    assert changed == {label for label in before if label.startswith("bert") or "hub_task" in label}
    assert after == {s.label: s.id for s in expand(load_suite(hub_suite))}  # stable while the lock stays

    asked.clear()  # locking again asks the hub for the suite's own revisions, not the locked commits
    fake_hub(monkeypatch, {"model": "d" * 40, "dataset": DATA_COMMIT})
    assert main(["lock", str(hub_suite)]) == 0
    assert load_suite(hub_suite).backbones["bert"].spec.revision == "d" * 40


def test_lock_without_the_hub_says_so_with_its_own_exit_code(hub_suite, capsys):
    assert main(["lock", str(hub_suite)]) == 3  # HF_HUB_OFFLINE=1 in the tests
    assert capsys.readouterr().out.strip() == (
        "cannot lock 2 hub sources: the Hugging Face Hub cannot be reached (HF_HUB_OFFLINE is set)")
    assert not lock.lock_path(hub_suite).exists()


def test_a_damaged_lock_is_one_line(hub_suite):
    lock.lock_path(hub_suite).write_text("models:\n- {repo: org/bert, revision: main, commit: abc}\n")
    with pytest.raises(ConfigError, match=r"suite.lock.yaml: models.0: needs repo, revision and a 40-hex commit"):
        load_suite(hub_suite)
