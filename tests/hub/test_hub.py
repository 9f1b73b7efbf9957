"""Without the hub, preflight says in one line what cannot be had, and what the local hub cache
holds still runs (through the real hub-loading code, on a cache laid out as huggingface_hub lays it out)."""

from __future__ import annotations

import datasets.config
import huggingface_hub.constants as constants
import pytest
import transformers

from harness.config.suite import expand, load_suite
from harness.hub import reach as hub
from harness.plan.plan import preflight
from harness.run.backbones import build_tokenizer
from harness.run.cell import run_cell
from harness.testing import write_yaml


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    folder = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(folder))
    return folder


def cache_model(cache, repo_id: str, revision: str = "0123456789abcdef0123456789abcdef01234567"):
    """A tiny BERT saved as the hub cache keeps a downloaded repository: refs/main names the
    snapshot folder that holds the files."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    snapshot = repo / "snapshots" / revision
    config = transformers.BertConfig(vocab_size=200, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=64)
    transformers.BertModel(config).save_pretrained(snapshot)
    build_tokenizer(["good film", "bad film"] * 20, 200).save_pretrained(snapshot)
    return snapshot


def test_without_the_hub_uncached_models_and_datasets_cannot_run_and_cached_ones_can(small_suite, tmp_path, hub_cache):
    cache_model(hub_cache, "org/cached-bert")
    card = write_yaml(tmp_path / "tasks" / "hub_task.yaml", {
        "name": "hub_task", "type": "classification", "source": {"hub": "org/absent-data"}, "inputs": ["sentence"],
        "labels": ["negative", "positive"], "metrics": ["accuracy"], "primary": "accuracy"})
    path = small_suite(models={"absent": "org/absent-bert", "cached": "org/cached-bert"},
                       tasks=[str(tmp_path / "tasks" / "small_sentiment.yaml"), str(card)])
    loaded = load_suite(path)
    specs = expand(loaded)
    refused = preflight(loaded, specs)
    by_cell = {(s.model, s.task): refused.get(s.id) for s in specs}
    assert by_cell["absent", "small_sentiment"] == (
        "model 'absent': the Hugging Face Hub cannot be reached (HF_HUB_OFFLINE is set) and model "
        f"'org/absent-bert' is not in the local cache ({hub_cache})")
    assert by_cell["cached", "hub_task"].startswith("task 'hub_task': the Hugging Face Hub cannot be reached "
                                                    "(HF_HUB_OFFLINE is set) and dataset 'org/absent-data'")
    assert by_cell["cached", "small_sentiment"] is None  # built from the cache: preflight passed it
    cell = next(s for s in specs if (s.model, s.task) == ("cached", "small_sentiment"))
    record = run_cell(cell)  # trained from the cached snapshot through from_pretrained("org/cached-bert")
    assert record.status == "done" and record.cost["total_params"] > 0
    # the commit the unpinned model resolved to (the cache's refs/main), kept with the run
    assert record.info["hub_commits"] == {"model": "0123456789abcdef0123456789abcdef01234567"}

    (hub_cache / "datasets--org--absent-data" / "snapshots" / "abc").mkdir(parents=True)
    assert hub.cached("org/absent-data", None, "dataset") and not hub.cached("org/absent-data", "def", "dataset")


def test_an_unanswering_hub_is_found_out_once_and_the_libraries_go_offline(monkeypatch):
    for name in hub.OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    hub.unreachable.cache_clear()
    try:
        reason = hub.unreachable()
        assert reason.startswith("127.0.0.1 does not answer")
        assert constants.HF_HUB_OFFLINE and datasets.config.HF_HUB_OFFLINE  # nothing retries after this
        assert hub.unreachable() is reason  # asked once per process
    finally:
        hub.unreachable.cache_clear()
        for name in hub.OFFLINE_VARIABLES:  # monkeypatch restores them; the conftest set them to 1
            monkeypatch.setenv(name, "1")
