"""Suite files: strict schema, one-line errors naming the file, key path and closest names."""

from __future__ import annotations

import pytest

from harness.base.errors import ConfigError
from harness.cli.commands import main
from harness.config.suite import load_suite
from harness.testing import write_yaml


def error_of(path) -> str:
    with pytest.raises(ConfigError) as info:
        load_suite(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_unknown_key_suggests_the_close_one(small_suite):
    path = small_suite(train={"lr": 1e-3})
    assert ": train: unknown key 'lr' (did you mean 'learning_rate'" in error_of(path)


def test_unknown_top_level_key(small_suite):
    path = small_suite(sedes=[1])
    assert "unknown key 'sedes' (did you mean 'seeds' or 'sweep'?)" in error_of(path)


def test_wrong_type_names_the_key_and_value(small_suite):
    path = small_suite(train={"epochs": "three"})
    message = error_of(path)
    assert "train.epochs" in message and "'three'" in message


def test_nested_unknown_key_in_early_stopping(small_suite):
    path = small_suite(train={"early_stopping": {"patiense": 2}})
    assert "train.early_stopping: unknown key 'patiense' (did you mean 'patience'?)" in error_of(path)


def test_unknown_task_lists_close_names(small_suite):
    path = small_suite(tasks=["gen_sentimnt"])
    message = error_of(path)
    assert "tasks.0" in message and "unknown task 'gen_sentimnt'" in message and "gen_sentiment" in message


def test_unknown_strategy(small_suite):
    path = small_suite(strategies={"lorra": {}})
    assert "strategies.lorra: unknown strategy 'lorra' (did you mean 'lora'" in error_of(path)


def test_strategy_label_with_use(small_suite):
    loaded = load_suite(small_suite(strategies={"lora_r4": {"use": "lora", "r": 4}}))
    name, raw, strategy = loaded.strategies["lora_r4"]
    assert name == "lora" and raw == {"r": 4} and strategy.resolved()["r"] == 4


def test_lora_argument_passes_through_and_is_checked(small_suite):
    path = small_suite(strategies={"lora": {"r": 4, "alpha": 8}})
    assert "strategies.lora: unknown LoraConfig key 'alpha' (did you mean 'lora_alpha'" in error_of(path)


def test_override_naming_an_unknown_model(small_suite):
    path = small_suite(overrides=[{"when": {"model": "tiny2"}, "train": {"epochs": 1}}])
    assert "overrides.0.when.model: unknown model 'tiny2' (did you mean 'tiny'?)" in error_of(path)


def test_override_with_a_bad_training_key(small_suite):
    path = small_suite(overrides=[{"when": {"model": "tiny"}, "train": {"epoch": 1}}])
    assert "overrides.0.train: unknown key 'epoch' (did you mean 'epochs'?)" in error_of(path)


def test_overrides_apply_in_order(small_suite):
    loaded = load_suite(small_suite(
        strategies={"full": {}, "bitfit": {}},
        overrides=[{"when": {"strategy": ["bitfit"]}, "train": {"learning_rate": 0.01}},
                   {"when": {"strategy": "bitfit", "model": "tiny"}, "train": {"epochs": 1}}],
    ))
    suite = loaded.suite
    assert suite.train_for("tiny", "small_sentiment", "bitfit").learning_rate == 0.01
    assert suite.train_for("tiny", "small_sentiment", "bitfit").epochs == 1
    assert suite.train_for("tiny", "small_sentiment", "full").learning_rate == 2e-3


def test_duplicate_seeds(small_suite):
    assert "seeds: 0 listed more than once" in error_of(small_suite(seeds=[0, 0]))


def test_bad_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nmodels: [unclosed\n")
    assert "not valid YAML" in error_of(path)


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo hacked']\n")
    assert "not valid YAML" in error_of(path)


def test_unknown_tiny_family_is_refused_at_plan_time(small_suite):
    loaded = load_suite(small_suite(models={"t": "tiny:bret"}))
    assert "unknown tiny backbone family 'bret' (did you mean 'bert' or 'bart' or 'albert'?)" in loaded.backbones["t"]


def test_cli_prints_one_line_and_starts_nothing(small_suite, tmp_path, capsys):
    path = small_suite(train={"lr": 1e-3})
    assert main(["run", str(path)]) == 2
    out = capsys.readouterr().out.strip()
    assert out.startswith("error:") and "did you mean 'learning_rate'" in out
    assert not (tmp_path / "results").exists()


def test_card_errors_name_the_card_file(small_suite, tmp_path):
    card = write_yaml(tmp_path / "tasks" / "broken.yaml", {
        "name": "broken", "type": "classification", "source": {"generate": "sentiment"},
        "inputs": ["sentence"], "labels": ["a", "b"], "metrics": ["accuracy"], "primary": "acuracy",
    })
    message = error_of(small_suite(tasks=[str(card)]))
    assert "broken.yaml" in message and "primary metric 'acuracy' is not among metrics" in message


def test_every_train_setting_declares_what_reads_it():
    """TRAIN_ROLES is the one list the run id, the preprocessing cache, the estimate cache and
    joint training read: a new TrainConfig field missing from it would silently be left out."""
    from harness.config.schemas import ROLES, TRAIN_ROLES, TrainConfig, train_fields

    assert set(TRAIN_ROLES) == set(TrainConfig.model_fields)
    assert all(roles <= ROLES for roles in TRAIN_ROLES.values())
    assert train_fields("later") <= train_fields("result")  # later fields are hashed, when not at their default
    assert train_fields("targets") <= train_fields("result")
    assert train_fields("preprocess") == {"max_length", "max_target_length", "generation"}
    with pytest.raises(ValueError):
        train_fields("shpae")


def test_a_setting_marked_shape_changes_the_memory_estimate_key():
    """Every `shape` setting (bar the batch, passed apart) is in the estimate's cache key; a `result`
    setting that is not `shape` is not, so that editing it reuses the cached estimate."""
    from harness.config.card import TaskCard
    from harness.config.registry import STRATEGIES, TASK_TYPES
    from harness.config.schemas import Generation, ModelSpec, TrainConfig, train_fields
    from harness.plan.estimate import EstimateOf
    from harness.run.backbones import resolve
    from harness.testing import SENTIMENT_CARD

    task_type = TASK_TYPES.get("classification")(TaskCard.model_validate(SENTIMENT_CARD))
    backbone, strategy = resolve("tiny", ModelSpec(source="tiny:bert")), STRATEGIES.get("full").from_suite({}, "t", "s")
    base = TrainConfig()
    key = EstimateOf(backbone, task_type, strategy, base, "cpu", 8).key()
    changed = {"eval_batch_size": 7, "gradient_accumulation_steps": 2, "max_length": 64, "max_target_length": 16,
               "precision": "bf16", "generation": Generation(num_beams=4)}  # beams hold a key/value cache each
    assert set(changed) == train_fields("shape") - {"batch_size", "auto_batch_size"}
    for name, value in changed.items():
        assert EstimateOf(backbone, task_type, strategy, base.model_copy(update={name: value}), "cpu", 8).key() != key, name
    assert EstimateOf(backbone, task_type, strategy, base.model_copy(update={"learning_rate": 1.0}), "cpu", 8).key() == key
