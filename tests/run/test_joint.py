"""Multi-task joint training: one shared backbone, a head per task, mixed batches, scored per task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rich.console import Console
from torch.utils.data import DataLoader

from harness.base.errors import ConfigError
from harness.config.registry import STRATEGIES, task_type_of
from harness.config.suite import expand, load_suite
from harness.executors.local import run_local
from harness.plan.plan import jobs, preflight
from harness.run.finetuned import load_finetuned
from harness.run.joint import TaskMixture
from harness.store.database import Store
from harness.testing import FAST_TRAIN, write_yaml

ENTITIES_CARD = {
    "name": "small_entities",
    "type": "token_classification",
    "source": {"generate": "entities", "seed": 0, "options": {"n_train": 400, "n_eval": 100}},
    "inputs": ["tokens"],
    "label": "ner_tags",
    "labels": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"],
    "metrics": ["seqeval_f1"],
    "primary": "seqeval_f1",
}


@pytest.fixture
def joint_suite(tmp_path, small_suite):
    """A suite of the small sentiment task, a small NER task and the generated headline task."""
    entities = write_yaml(tmp_path / "tasks" / "small_entities.yaml", ENTITIES_CARD)

    def make(strategies=None, tasks=None, **changes):
        path = small_suite(strategies=strategies or {"multitask": {}}, **changes)
        sentiment = str(tmp_path / "tasks" / "small_sentiment.yaml")
        import yaml

        suite = yaml.safe_load(path.read_text())
        suite["tasks"] = tasks or [sentiment, str(entities)]
        return write_yaml(path, suite)

    return make


def test_one_joint_model_scores_every_task_with_a_shared_backbone(joint_suite):
    loaded = load_suite(joint_suite(strategies={"multitask": {}, "full": {}}, seeds=[0]))
    specs = expand(loaded)
    assert preflight(loaded, specs) == {}
    groups = jobs(specs)
    joint = [g for g in groups if g[0].strategy == "multitask"]
    assert len(joint) == 1 and {s.task for s in joint[0]} == {"small_sentiment", "small_entities"}
    with Store(loaded.store_path) as store:
        summary = run_local(jobs(specs), store, Console(quiet=True))
        assert not summary.failed and len(summary.done) == 4
        runs = store.frame().set_index(["task", "strategy"])
    sentiment, entities = runs.loc[("small_sentiment", "multitask")], runs.loc[("small_entities", "multitask")]
    assert sentiment.metrics["accuracy"] > 80 and entities.metrics["seqeval_f1"] > 80  # both heads learned (chance: 50, 0)
    # one training: the same cost and mixture in both records
    assert sentiment.cost == entities.cost and sentiment["info"]["joint"] == entities["info"]["joint"]
    mixture = sentiment["info"]["joint"]
    assert sum(mixture["batches_drawn"].values()) == 3 * sum(mixture["batches_per_epoch"].values())
    # the backbone is counted once: the joint model is one body and two heads, smaller than two models
    single = runs.loc[("small_sentiment", "full")].cost["total_params"] + runs.loc[("small_entities", "full")].cost["total_params"]
    assert sentiment.cost["total_params"] < single
    assert sentiment.cost["trainable_params"] == sentiment.cost["total_params"]


def test_mixture_draws_follow_the_sampling_rule():
    loaders = {"big": DataLoader([{"x": i} for i in range(900)], batch_size=10),
               "small": DataLoader([{"x": i} for i in range(100)], batch_size=10)}
    strategy = STRATEGIES.get("multitask")
    def probabilities(**args):
        return strategy.from_suite(args, "suite", "strategies.mt").mixing({n: len(d) for n, d in loaders.items()})

    assert probabilities() == pytest.approx({"big": 0.9, "small": 0.1})
    assert probabilities(sampling="uniform") == pytest.approx({"big": 0.5, "small": 0.5})
    assert probabilities(sampling="temperature", temperature=2.0) == pytest.approx({"big": 0.75, "small": 0.25})
    mixture = TaskMixture(loaders, probabilities(sampling="temperature", temperature=2.0), seed=0)
    assert len(mixture) == 100
    tasks = []
    for epoch in range(20):
        mixture.set_epoch(epoch)
        tasks += [b["task"] for b in mixture]
    assert len(tasks) == 2000 and abs(tasks.count("small") / 2000 - 0.25) < 0.03
    mixture.set_epoch(3)
    first = [b["task"] for b in mixture]
    mixture.set_epoch(3)
    assert first == [b["task"] for b in mixture]  # the same epoch draws the same tasks again
    mixture.set_epoch(4)
    assert first != [b["task"] for b in mixture]


def test_the_small_task_restarts_its_loader_when_drawn_more_than_it_holds():
    loaders = {"a": DataLoader([{"x": torch.tensor(i)} for i in range(10)], batch_size=5),
               "b": DataLoader([{"x": torch.tensor(i)} for i in range(100)], batch_size=5)}
    mixture = TaskMixture(loaders, {"a": 0.5, "b": 0.5}, seed=1)
    batches = list(mixture)
    assert len(batches) == 22 and sum(b["task"] == "a" for b in batches) > 2  # more than a's 2 batches


def test_bad_joint_settings_are_refused_before_training(joint_suite, tmp_path):
    with pytest.raises(ConfigError, match=r"strategies\.mt\.tasks\.1: unknown suite task 'small_entitie'"):
        load_suite(joint_suite(strategies={"mt": {"use": "multitask", "tasks": ["small_sentiment", "small_entitie"]}}))
    with pytest.raises(ConfigError, match="temperature applies only to sampling 'temperature'"):
        load_suite(joint_suite(strategies={"multitask": {"temperature": 2.0}}))
    with pytest.raises(ConfigError, match="needs a temperature"):
        load_suite(joint_suite(strategies={"multitask": {"sampling": "temperature"}}))

    # different training settings per task cannot make one model
    loaded = load_suite(joint_suite(overrides=[{"when": {"task": "small_entities"}, "train": {"learning_rate": 1e-4}}]))
    refused = preflight(loaded, expand(loaded))
    assert len(refused) == 2 and all("different settings (learning_rate)" in r for r in refused.values())
    # one task left is not joint training
    loaded = load_suite(joint_suite(exclude=[{"task": "small_entities"}]))
    assert list(preflight(loaded, expand(loaded)).values()) == [
        "strategy 'multitask' on 'tiny': joint training needs two tasks or more, has ['small_sentiment']"]
    # a seq2seq task in the suite is refused for the strategy, and the others still train together
    loaded = load_suite(joint_suite(tasks=[str(tmp_path / "tasks" / "small_sentiment.yaml"),
                                           str(tmp_path / "tasks" / "small_entities.yaml"), "gen_headline"]))
    specs = expand(loaded)
    refused = preflight(loaded, specs)
    assert [s.task for s in specs if s.id in refused] == ["gen_headline"]
    assert "applies to classification, token_classification tasks, not seq2seq" in next(iter(refused.values()))
    assert {tuple(s.partners) for s in specs if s.id not in refused} == {("small_sentiment", "small_entities")}


def test_joint_ids_depend_on_every_partner(joint_suite, tmp_path):
    base = {s.task: s.id for s in expand(load_suite(joint_suite()))}
    card = tmp_path / "tasks" / "small_entities.yaml"
    card.write_text(card.read_text().replace("n_train: 400", "n_train: 300"))
    changed = {s.task: s.id for s in expand(load_suite(joint_suite()))}
    assert base["small_sentiment"] != changed["small_sentiment"]  # its partner's data changed


def test_a_joint_task_model_saves_and_reloads_with_identical_predictions(joint_suite):
    train = {**FAST_TRAIN, "epochs": 1, "save_model": True}
    loaded = load_suite(joint_suite(train=train))
    specs = expand(loaded)
    with Store(loaded.store_path) as store:
        run_local(jobs(specs), store, Console(quiet=True))
        record = store.frame().set_index("task").loc["small_sentiment"]
        predictions, _ = store.predictions(record.id)
    spec = next(s for s in specs if s.task == "small_sentiment")
    model, tokenizer = load_finetuned(None, loaded.store_path.parent / "runs" / spec.id / "model")
    from harness.tasks.data import load_splits

    card = spec.task_card()
    task_type = task_type_of(card)
    rows = load_splits(card).eval
    features, _ = task_type.preprocess(rows, "validation", tokenizer, spec.train)
    model.eval()
    with torch.no_grad():
        batch = tokenizer.pad({"input_ids": features["input_ids"], "attention_mask": features["attention_mask"]},
                              return_tensors="pt")
        logits = model(**batch).logits.numpy()
    assert list(np.argmax(logits, axis=-1)) == predictions
