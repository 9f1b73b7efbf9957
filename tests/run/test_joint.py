"""Multi-task joint training: one shared backbone, a head per task, mixed batches, scored per task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rich.console import Console
from torch.utils.data import DataLoader

from harness.base.errors import ConfigError
from harness.config.registry import PARTS, task_type_of
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
    # one training: the same cost and mixture in both records; serving and shipping are each task model's own
    own = ("serving", "shipped_bytes", "flops")
    shared = [{k: v for k, v in r.cost.items() if k not in own} for r in (sentiment, entities)]
    assert shared[0] == shared[1] and sentiment["info"]["joint"] == entities["info"]["joint"]
    assert sentiment.cost["flops"]["train"] == entities.cost["flops"]["train"] > 0
    assert sentiment.cost["shipped_bytes"] != entities.cost["shipped_bytes"]  # the same body, different heads
    mixture = sentiment["info"]["joint"]
    assert sum(mixture["batches_drawn"].values()) == 3 * sum(mixture["batches_per_epoch"].values())
    # the backbone is counted once: the joint model is one body and two heads, smaller than two models
    single = runs.loc[("small_sentiment", "full")].cost["total_params"] + runs.loc[("small_entities", "full")].cost["total_params"]
    assert sentiment.cost["total_params"] < single
    assert sentiment.cost["trainable_params"] == sentiment.cost["total_params"]


def test_mixture_draws_follow_the_sampling_rule():
    loaders = {"big": DataLoader([{"x": i} for i in range(900)], batch_size=10),
               "small": DataLoader([{"x": i} for i in range(100)], batch_size=10)}
    strategy = PARTS.get("multitask")
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


def _tiny_pair(method: str, args: dict):
    """A tiny BERT as a sentence and as a token classifier, `method` applied to each, bodies tied."""
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, BertConfig

    from harness.run.joint import tie_bodies
    from harness.strategies import head_names
    from harness.strategies.recipe import build

    recipe = build(method, {**args, "multitask": {}}, "suite", "strategies.mt")
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    torch.manual_seed(0)
    models = {"sentence": AutoModelForSequenceClassification.from_config(config),
              "tokens": AutoModelForTokenClassification.from_config(config)}
    heads = {n: {id(p) for k, p in m.named_parameters() if k in head_names(m)} for n, m in models.items()}
    for name, model in models.items():
        models[name] = recipe.apply(model, None)
    return recipe, models, tie_bodies(models, heads)


@pytest.mark.parametrize(("method", "args", "trained"), [
    ("lora", {"r": 4}, "lora_A"), ("bitfit", {}, "bias"), ("ia3", {}, "ia3_l")])
def test_a_method_applied_to_each_task_model_trains_one_set_of_body_parameters(method, args, trained):
    recipe, models, tied = _tiny_pair(method, args)
    sentence, tokens = (dict(m.named_parameters()) for m in models.values())
    shared = [n for n in tokens if n in sentence and tokens[n] is sentence[n]]
    assert tied == len(shared) > 0
    assert any(trained in n for n in shared if tokens[n].requires_grad)  # what the method trains is shared
    own = [n for n in tokens if not any(tokens[n] is p for p in sentence.values())]
    assert own and all("classifier" in n for n in own)  # only the head is the task's own
    # a step on one task moves the other task's output: they train one body
    batch = {"input_ids": torch.tensor([[2, 5, 6, 3]]), "attention_mask": torch.ones(1, 4, dtype=torch.long)}
    models["sentence"].eval(), models["tokens"].eval()
    before = models["sentence"](**batch).logits.detach().clone()
    loss = models["tokens"](**batch, labels=torch.tensor([[0, 1, 1, 0]])).loss
    loss.backward()
    with torch.no_grad():
        for p in models["tokens"].parameters():
            if p.grad is not None:
                p -= 1.0 * p.grad
    assert not torch.equal(models["sentence"](**batch).logits, before)


def test_multitask_lora_scores_each_task_with_its_own_head_on_one_adapter_and_reloads_each(joint_suite, tmp_path):
    # two token tasks: a frozen random tiny body gives a sentence head the same features for every
    # sentence (see the family matrix), while every token keeps its own embedding
    more = write_yaml(tmp_path / "tasks" / "more_entities.yaml",
                      {**ENTITIES_CARD, "name": "more_entities",
                       "source": {"generate": "entities", "seed": 1, "options": {"n_train": 300, "n_eval": 100}}})
    train = {**FAST_TRAIN, "learning_rate": 1e-2, "save_model": True}
    loaded = load_suite(joint_suite(strategies={"mt_lora": {"use": "lora", "r": 8, "multitask": {"sampling": "uniform"}}},
                                    seeds=[0], train=train,
                                    tasks=[str(tmp_path / "tasks" / "small_entities.yaml"), str(more)]))
    specs = expand(loaded)
    assert preflight(loaded, specs) == {} and len(jobs(specs)) == 1
    with Store(loaded.store_path) as store:
        summary = run_local(jobs(specs), store, Console(quiet=True))
        assert not summary.failed
        runs = store.frame().set_index("task")
        predictions = {t: store.predictions(runs.loc[t].id)[0] for t in runs.index}
    first, second = runs.loc["small_entities"], runs.loc["more_entities"]
    assert first.metrics["seqeval_f1"] > 80 and second.metrics["seqeval_f1"] > 80  # both heads learned (chance: 0)
    assert first["info"]["joint"]["tied_parameters"] > 0 and first["info"]["recipe"] == "lora + multitask"
    # trained: one adapter and two heads, a small share of the joint model
    assert 0 < first.cost["trainable_params"] < 0.2 * first.cost["total_params"]
    for spec in specs:  # each task model reloads alone, through the single-task path, with its predictions
        model, tokenizer = load_finetuned(None, loaded.store_path.parent / "runs" / spec.id / "model")
        card = spec.task_card()
        task_type = task_type_of(card)
        from harness.tasks.data import load_splits

        features, _ = task_type.preprocess(load_splits(card).eval, "validation", tokenizer, spec.train)
        task_type.bind(model)
        model.eval()
        with torch.no_grad():
            batch = task_type.collator(tokenizer)([{k: features[i][k] for k in ("input_ids", "attention_mask")}
                                                   for i in range(len(features))])
            logits = model(**batch).logits.numpy()
        assert task_type.decode(logits, features) == predictions[spec.task], spec.task


def test_multitask_refuses_a_teacher_and_merging_with_the_reason(joint_suite):
    loaded = load_suite(joint_suite(strategies={
        "mt_merge": {"use": "lora", "r": 4, "merge": True, "multitask": {}},
        "mt_kd": {"use": "lora", "r": 4, "multitask": {}, "distill": {"teacher": "run:0123456789abcdef"}}}))
    reasons = {(s.strategy, s.task): r for s in expand(loaded) if (r := preflight(loaded, expand(loaded)).get(s.id))}
    assert len(reasons) == 4
    assert all("merging would fold" in r for (label, _), r in reasons.items() if label == "mt_merge")
    assert all("a teacher scores one task" in r for (label, _), r in reasons.items() if label == "mt_kd")
    with pytest.raises(ConfigError, match=r"strategies\.mt\.multitask\.tasks\.0: unknown suite task 'nope'"):
        load_suite(joint_suite(strategies={"mt": {"use": "bitfit", "multitask": {"tasks": ["nope", "small_sentiment"]}}}))
