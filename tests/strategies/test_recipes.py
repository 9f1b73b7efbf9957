"""Recipes: a method with data and objective parts, a base, teacher cells of the suite, and crossing."""

from __future__ import annotations

import json
import math
import tempfile

import pytest
import torch

from harness.base.errors import ConfigError
from harness.cli.commands import main
from harness.config.registry import task_type_of
from harness.config.suite import expand, load_suite
from harness.run.backbones import resolve
from harness.run.training import HarnessTrainer, TrainerInputs, build_trainer
from harness.store.database import Store
from harness.strategies.recipe import Recipe, build
from harness.tasks.data import load_splits

LORA = {"r": 4, "lora_alpha": 8}
RUN = "run:00000000000000ab"  # a run reference: 'run:' and a run id's 16 hex digits
EDA = {"fraction": 0.5, "operations": {"swap": 0.1, "delete": 0.1, "insert": 0, "synonym": 0}}
FAST = {"epochs": 2, "learning_rate": 2.0e-3, "batch_size": 32, "max_length": 32, "max_train_samples": 256,
        "max_eval_samples": 64}


# --------------------------------------------------------------------------- parsing and ids


def test_a_part_alone_hashes_as_its_own_strategy_and_a_composition_names_every_part():
    alone = build("augment", EDA, "s.yaml", "strategies.eda")
    assert isinstance(alone, Recipe) and alone.name == "augment" and alone.method.name == "full"
    assert alone.resolved() == build("augment", EDA, "s", "k").parts["augment"].resolved()  # the id as before
    composed = build("lora", LORA | {"augment": EDA, "distill": {"teacher": RUN}, "base": "bf16"}, "s", "k")
    resolved = composed.resolved()
    assert resolved["r"] == 4 and resolved["augment"]["fraction"] == 0.5
    assert resolved["distill"]["teacher"] == RUN and resolved["distill"]["alpha"] == 0.5
    assert resolved["base"] == "bf16" and composed.own_loss and list(composed.data.values()) == [composed.parts["augment"]]
    assert composed.describe() == "lora + augment + distill on a bf16 base"
    assert build("lora", LORA, "s", "k").resolved() == build("lora", LORA, "s", "k").method.resolved()


@pytest.mark.parametrize("raw,message", [
    ({"base": "nf3"}, r"s.yaml: strategies.x.base: unknown base 'nf3'"),
    ({"distill": {"teacher": RUN, "alpha": 2}}, r"strategies.x.distill.alpha"),
    ({"augment": {"fraction": 2}}, r"strategies.x.augment.fraction"),
])
def test_a_recipe_that_cannot_parse_is_one_line_naming_its_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        build("lora", LORA | raw, "s.yaml", "strategies.x")


def test_combinations_that_cannot_work_are_refused_in_preflight_with_the_reason(small_suite):
    from harness.plan.plan import preflight

    loaded = load_suite(small_suite(strategies={
        "full_nf4": {"use": "full", "base": "nf4"},
        "zs_eda": {"use": "zero_shot", "augment": EDA},
        "lora_nf4": {"use": "lora", **LORA, "base": "nf4"},
    }))
    refused = preflight(loaded, expand(loaded))
    reasons = {spec.strategy: refused.get(spec.id) for spec in expand(loaded)}
    assert "only a peft method (lora, ia3, ...) trains around them, not full" in reasons["full_nf4"]
    assert "augment need a method that trains; zero_shot predicts without training" in reasons["zs_eda"]
    assert reasons["lora_nf4"] is None


def test_without_bitsandbytes_a_quantized_base_is_refused_by_name(small_suite, monkeypatch):
    import importlib.util

    from harness.plan.plan import preflight

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    loaded = load_suite(small_suite(strategies={"qlora": {"use": "lora", **LORA, "base": "nf4"}}))
    (reason,) = preflight(loaded, expand(loaded)).values()
    assert "a quantized base needs bitsandbytes" in reason


def test_a_bitsandbytes_without_its_cpu_backend_is_refused_on_a_cpu_by_version(small_suite, monkeypatch):
    import harness.strategies.recipe as recipe_module
    from harness.plan.plan import preflight

    monkeypatch.setattr(recipe_module, "version", lambda name: "0.45.5")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = load_suite(small_suite(strategies={"qlora": {"use": "lora", **LORA, "base": "nf4"}}))
    (reason,) = preflight(loaded, expand(loaded)).values()
    assert "bitsandbytes 0.45.5 cannot train through quantized layers on a CPU (its CPU backend came in 0.48.0)" in reason


# --------------------------------------------------------------------------- crossing


def test_a_crossed_suite_expands_to_the_product_minus_exclude_and_overrides_reach_a_recipe(small_suite):
    loaded = load_suite(small_suite(
        strategies={"full": {}, "lora": LORA},
        recipes={"plain": {}, "ls": {"augment": EDA | {"fraction": 1.0}}, "eda": {"augment": EDA}},
        exclude=[{"strategy": "lora", "recipe": "ls"}],
        overrides=[{"when": {"recipe": "eda"}, "train": {"learning_rate": 0.01}}],
        seeds=[0, 1]))
    specs = expand(loaded)
    rows = {s.strategy for s in specs}
    assert rows == {"full", "full+ls", "full+eda", "lora", "lora+eda"}
    assert len(specs) == 5 * 2
    assert {s.strategy: s.strategy_name for s in specs} == {"full": "full", "full+ls": "full", "full+eda": "full",
                                                             "lora": "lora", "lora+eda": "lora"}
    assert {s.strategy for s in specs if s.train.learning_rate == 0.01} == {"full+eda", "lora+eda"}
    plain = expand(load_suite(small_suite(strategies={"full": {}, "lora": LORA}, seeds=[0, 1])))
    assert {s.id for s in plain} <= {s.id for s in specs}  # the plain rows are the same cells


@pytest.mark.parametrize("changes,message", [
    ({"exclude": [{"recipe": "eda2"}]}, r"exclude.0.recipe: unknown recipe 'eda2' \(did you mean 'eda'\?\)"),
    ({"strategies": {"full": {"augment": EDA}}}, "strategies.full and recipes.eda both set augment"),
    ({"recipes": {"eda": [1, 2]}}, r"recipes.eda: Input should be a valid dictionary"),
    ({"recipes": {"eda": {"augment": 7}}}, r"strategies.full \+ recipes.eda.augment: Input should be a valid dictionary"),
])
def test_a_bad_crossing_is_one_line(small_suite, changes, message):
    suite = small_suite(**{"strategies": {"full": {}}, "recipes": {"plain": {}, "eda": {"augment": EDA}}} | changes)
    with pytest.raises(ConfigError, match=message):
        load_suite(suite)


# --------------------------------------------------------------------------- what trains, on what, with which loss


def _prepared(spec, rows: int = 64):
    """(model with the recipe applied, tokenizer, task type, features, recipe) of `spec`."""
    from harness.run.cell import load_task

    recipe = spec.build_strategy()
    task = load_task(spec.task_card(), recipe, spec.train, spec.seed)  # the rows the cell's tokenizer is built on
    task_type = task.task_type
    model, tokenizer = resolve(spec.model, spec.model_spec).load(*recipe.architecture(task_type),
                                                                  task_type.texts(task.train_rows), spec.seed,
                                                                  base=recipe.base)
    features, _ = task_type.preprocess(task.train_rows.select(range(rows)), "train", tokenizer, spec.train)
    return model, tokenizer, task_type, features, recipe


def test_lora_distilled_trains_only_lora_and_its_loss_is_the_distillation_loss(small_suite, tmp_path):
    from harness.run.cell import run_cell

    teacher_spec = expand(load_suite(small_suite(train=FAST | {"save_model": True})))[0]
    run_cell(teacher_spec, artifacts=tmp_path / "runs")
    (spec,) = expand(load_suite(small_suite(strategies={"lora_kd": {
        "use": "lora", **LORA, "distill": {"teacher": f"run:{teacher_spec.id}", "alpha": 0.3, "temperature": 2.0}}},
        train=FAST)))
    model, tokenizer, task_type, features, recipe = _prepared(spec)
    model = recipe.apply(model, task_type)
    from harness.strategies import Context

    recipe.prepare(Context(spec, task_type, tokenizer, tmp_path / "runs"))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "classifier" in n for n in trainable)
    assert any("lora_" in n for n in trainable)
    with tempfile.TemporaryDirectory() as workdir:
        trainer = build_trainer(spec, recipe, TrainerInputs(model, tokenizer, task_type, features), workdir)
        assert isinstance(trainer, HarnessTrainer)
        batch = trainer.data_collator([{k: features[i][k] for k in ("input_ids", "attention_mask", "labels")}
                                       for i in range(8)])
        model.eval()  # no dropout: the same logits below
        loss = trainer.compute_loss(model, dict(batch))
    with torch.no_grad():
        student = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        teacher = recipe.parts["distill"].teacher(**{k: v for k, v in batch.items() if k != "labels"}).logits
    t, alpha = 2.0, 0.3  # by hand: alpha * CE + (1 - alpha) * T^2 * KL(teacher || student) at temperature T
    p_teacher, log_student = torch.softmax(teacher / t, -1), torch.log_softmax(student / t, -1)
    kl = (p_teacher * (torch.log(p_teacher) - log_student)).sum(-1).mean()
    ce = -torch.log_softmax(student, -1)[torch.arange(8), batch["labels"]].mean()
    assert math.isclose(loss.item(), (alpha * ce + (1 - alpha) * t * t * kl).item(), rel_tol=1e-4)


def test_label_smoothing_is_the_task_loss_setting_and_distillation_refuses_it(small_suite):
    smoothed = {"label_smoothing": 0.1}
    (spec,) = expand(load_suite(small_suite(strategies={"lora": LORA}, train=FAST | smoothed)))
    assert spec.train.label_smoothing == 0.1  # Trainer's own label smoother, hashed as a train setting
    with pytest.raises(ConfigError, match=r"train.label_smoothing \(model 'tiny', task 'small_sentiment', strategy "
                                          r"'kd'\): smooths the task's own loss, which distillation replaces"):
        load_suite(small_suite(strategies={"kd": {"use": "lora", **LORA, "distill": {"teacher": RUN}}},
                               train=FAST | smoothed))


def test_lora_with_augmentation_trains_on_the_augmented_rows(small_suite, tmp_path):
    from harness.run.cell import run_cell

    (spec,) = expand(load_suite(small_suite(strategies={"lora_eda": {"use": "lora", **LORA, "augment": EDA}},
                                            train=FAST | {"epochs": 1})))
    record = run_cell(spec, artifacts=tmp_path / "runs")
    augmented = record.info["augmentation"]
    assert augmented["rows"] == 256 and augmented["copies"] == round(0.5 * 256)
    assert record.info["steps"] == math.ceil((256 + 128) / 32)  # one epoch over originals and copies
    assert record.cost["trainable_params"] < record.cost["total_params"] / 10  # LoRA's share, not the whole model


# --------------------------------------------------------------------------- teacher cells of the suite


def test_a_teacher_cell_runs_first_keeps_its_model_and_the_student_names_its_run(small_suite, capsys):
    suite = small_suite(strategies={"full": {}, "lora_kd": {"use": "lora", **LORA, "distill": {"teacher": {"strategy": "full"}}}},
                        seeds=[0, 1], train=FAST)
    loaded = load_suite(suite)
    specs = expand(loaded)
    teachers = {s.seed: s for s in specs if s.strategy == "full"}
    students = [s for s in specs if s.strategy == "lora_kd"]
    assert all(t.train.save_model for t in teachers.values())
    for student in students:
        assert student.after == [teachers[student.seed].id]
        assert student.strategy_args["distill"]["teacher"] == f"run:{teachers[student.seed].id}"
    assert main(["plan", str(suite)]) == 0
    assert "2 cell(s) wait for the teacher or intermediate-task cells they learn from" in capsys.readouterr().out
    assert main(["run", str(suite)]) == 0
    out = capsys.readouterr().out
    assert "the cells they learn from are done; 2 more cells" in out and "4 ran" in out
    with Store(loaded.store_path) as store:
        assert store.done([s.id for s in specs]) == {s.id for s in specs}


def test_a_teacher_that_reads_other_token_ids_is_refused(small_suite):
    from harness.plan.plan import preflight

    loaded = load_suite(small_suite(
        models={"bert": "tiny:bert", "llama": "tiny:llama"},
        strategies={"full": {}, "kd": {"use": "lora", **LORA, "distill": {"teacher": {"strategy": "full", "model": "llama"}}}},
        exclude=[{"model": "llama", "strategy": "kd"}]))
    specs = expand(loaded)
    refused = preflight(loaded, specs)
    (student,) = [s for s in specs if s.strategy == "kd"]
    assert "teacher 'llama' and student 'bert' tokenize differently" in refused[student.id]


@pytest.mark.parametrize("teacher,message", [
    ({"strategy": "fulll"}, r"teacher.strategy: 'fulll' is not a strategy row"),
    ({"strategy": "full", "model": "big"}, r"teacher.model: 'big' is not a model of the suite"),
    ({"strategy": "kd"}, r"'kd' learns from a cell itself"),
])
def test_a_teacher_cell_the_suite_lacks_is_one_line(small_suite, teacher, message):
    with pytest.raises(ConfigError, match=message):
        load_suite(small_suite(strategies={"full": {}, "kd": {"use": "lora", **LORA, "distill": {"teacher": teacher}}}))


# --------------------------------------------------------------------------- an intermediate task first


def test_a_cell_that_starts_from_another_tasks_cell_trains_on_its_fine_tuned_body(small_suite, tmp_path):
    from harness.config.registry import load_card
    from harness.run.finetuned import load_finetuned
    from harness.strategies import backbone_of
    from harness.testing import SENTIMENT_CARD, write_yaml

    other = write_yaml(tmp_path / "tasks" / "other_sentiment.yaml", SENTIMENT_CARD | {
        "name": "other_sentiment", "source": {"generate": "sentiment", "seed": 1, "options": {"n_train": 400, "n_eval": 100}}})
    suite = small_suite(tasks=[str(tmp_path / "tasks" / "small_sentiment.yaml"), str(other)],
                        strategies={"full": {}, "transfer": {"use": "lora", **LORA,
                                                             "start": {"strategy": "full", "task": "other_sentiment"}}},
                        exclude=[{"strategy": "transfer", "task": "other_sentiment"}], train=FAST | {"save_model": True})
    assert load_card(other).name == "other_sentiment"
    specs = expand(load_suite(suite))
    (start,) = [s for s in specs if s.strategy == "full" and s.task == "other_sentiment"]
    (transfer,) = [s for s in specs if s.strategy == "transfer"]
    assert transfer.after == [start.id] and transfer.strategy_args["start"] == f"run:{start.id}"
    assert start.train.save_model
    assert main(["run", str(suite)]) == 0
    runs = tmp_path / "results" / "runs"
    started, _ = load_finetuned(None, runs / start.id / "model")
    tuned, _ = load_finetuned(None, runs / transfer.id / "model")
    body = {n: p for n, p in backbone_of(tuned.merge_and_unload()).state_dict().items()}
    theirs = backbone_of(started).state_dict()
    # LoRA froze the body it started from: the embeddings are the start cell's fine-tuned ones
    name = next(n for n in theirs if "word_embeddings" in n)
    assert torch.equal(body[name], theirs[name])
    pretrained, _ = resolve(transfer.model, transfer.model_spec).load(
        *build("full", {}, "s", "k").architecture(task_type_of(transfer.task_card())), [], transfer.seed,
        tokenizer=_)
    assert not torch.equal(backbone_of(pretrained).state_dict()[name], theirs[name])


def test_a_start_on_a_joint_method_and_an_upstream_row_the_sweep_tunes_are_refused(small_suite):
    from harness.plan.plan import preflight

    suite = small_suite(strategies={"mt": {"use": "multitask", "start": RUN}})
    loaded = load_suite(small_suite(tasks=[*load_suite(suite).suite.tasks, "gen_sentiment"],
                                    strategies={"mt": {"use": "multitask", "start": RUN}}))
    reasons = preflight(loaded, expand(loaded))
    assert len(reasons) == 2 and all("a start body is for one task's model" in r for r in reasons.values())
    sweep = {"budget": 2, "spaces": [{"when": {"strategy": "full"}, "space": {"learning_rate": [1.0e-3, 2.0e-3]}}]}
    with pytest.raises(ConfigError, match=r"strategies.kd.distill.teacher: the sweep tunes row 'full'"):
        load_suite(small_suite(strategies={"full": {}, "kd": {"use": "lora", **LORA, "distill": {"teacher": {"strategy": "full"}}}},
                               sweep=sweep))


def test_a_start_on_a_method_that_does_not_train_is_refused(small_suite):
    from harness.plan.plan import preflight

    loaded = load_suite(small_suite(strategies={"full": {}, "zs": {"use": "zero_shot", "start": RUN}}))
    (reason,) = [preflight(loaded, expand(loaded)).get(s.id) for s in expand(loaded) if s.strategy == "zs"]
    assert "start need a method that trains; zero_shot predicts without training" in reason
    with pytest.raises(ConfigError, match=r"strategies.t.start.task: 'mnli' is not a task of the suite"):
        load_suite(small_suite(strategies={"full": {}, "t": {"use": "lora", "start": {"strategy": "full", "task": "mnli"}}}))


# --------------------------------------------------------------------------- a quantized base (QLoRA)


def test_qlora_holds_the_body_in_4_bits_trains_lora_in_fp32_and_reloads_identically(small_suite, tmp_path):
    import bitsandbytes as bnb

    from harness.run.cell import run_cell
    from harness.run.finetuned import load_finetuned

    (spec,) = expand(load_suite(small_suite(strategies={"qlora": {"use": "lora", **LORA, "base": "nf4"}},
                                            train=FAST | {"save_model": True})))
    model, _, task_type, _, recipe = _prepared(spec)
    model = recipe.apply(model, task_type)
    quantized = [n for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert quantized and all(".base_layer" in n or "lora" not in n for n in quantized)
    assert all(m.weight.dtype == torch.uint8 and m.weight.quant_state.quant_type == "nf4"
               for m in model.modules() if isinstance(m, bnb.nn.Linear4bit))
    assert all(p.dtype == torch.float32 for n, p in model.named_parameters() if p.requires_grad)
    assert not any(isinstance(m, bnb.nn.Linear4bit) for n, m in model.named_modules() if n.endswith("classifier"))
    record = run_cell(spec, artifacts=tmp_path / "runs")
    assert record.info["base"] == {"held": "nf4", "quantized_layers": len(quantized)}
    assert record.info["recipe"] == "lora on a nf4 base"
    reloaded, tokenizer = load_finetuned(None, tmp_path / "runs" / spec.id / "model")
    from harness.run.cost import parameter_counts

    plain = build("lora", LORA, "s", "k")  # the same LoRA on an fp32 body: the same weights, counted unpacked
    fp32, _ = resolve(spec.model, spec.model_spec).load(*plain.architecture(task_type), [], 0, tokenizer=tokenizer)
    assert record.cost["total_params"] == parameter_counts(plain.apply(fp32, task_type))["total_params"]
    features, _ = task_type.preprocess(load_splits(spec.task_card()).eval.select(range(64)), "eval", tokenizer,
                                       spec.train)
    with tempfile.TemporaryDirectory() as workdir:
        trainer = build_trainer(spec, recipe, TrainerInputs(reloaded, tokenizer, task_type), workdir)
        assert trainer.predictions(features) == record.predictions


def test_the_memory_estimate_knows_a_quantized_base(small_suite):
    from harness.plan.estimate import EstimateOf, cell_memory

    bigger = {"source": "tiny:bert", "size": {"hidden_size": 128, "num_layers": 2, "intermediate_size": 512}}
    suite = small_suite(models={"bert": bigger}, strategies={"lora": LORA, "qlora": {"use": "lora", **LORA, "base": "nf4"},
                                                             "bf16": {"use": "lora", **LORA, "base": "bf16"}})
    loaded = load_suite(suite)
    spec = expand(loaded)[0]
    backbone, task_type = loaded.backbones["bert"], task_type_of(loaded.cards[spec.task])
    weights = {label: cell_memory(EstimateOf(backbone, task_type, loaded.strategies[label][2], spec.train, "cpu")).weights
               for label in ("lora", "qlora", "bf16")}
    linear = sum(m.weight.numel() for n, m in backbone.build(*loaded.strategies["lora"][2].architecture(task_type))
                 .named_modules() if isinstance(m, torch.nn.Linear) and n.startswith("bert."))
    assert weights["lora"] - weights["qlora"] == pytest.approx(linear * (4 - 0.5 - 1 / 64), rel=0.01)
    assert weights["bf16"] == pytest.approx(weights["lora"] / 2, rel=0.01)
    assert json.dumps(weights)  # plain numbers
