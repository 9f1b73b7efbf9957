"""Preflight's estimates: peak memory from fake tensors (checked against the allocator's true peak),
refusal of cells that cannot fit, and the time probe."""

from __future__ import annotations

import pytest

from harness.cli.commands import main
from harness.config.suite import expand, load_suite
from harness.plan import estimate as estimate_module
from harness.plan.estimate import EstimateOf, cell_memory
from harness.store.database import Store
from harness.testing import measured_peak, write_yaml


def _parts(suite_path, strategy="full"):
    loaded = load_suite(suite_path)
    spec = next(s for s in expand(loaded) if s.strategy == strategy)
    from harness.config.registry import task_type_of

    card = loaded.cards[spec.task]
    return loaded.backbones[spec.model], task_type_of(card), loaded.strategies[spec.strategy_key][2], spec.train


@pytest.mark.parametrize("strategy, args", [("full", {}), ("lora", {"r": 4}), ("head_only", {})])
def test_memory_estimate_matches_the_allocators_true_peak(small_suite, strategy, args):
    suite = small_suite(strategies={strategy: args}, train={"batch_size": 16, "eval_batch_size": 32, "max_length": 48})
    backbone, task_type, built, train = _parts(suite, strategy)
    estimate = cell_memory(EstimateOf(backbone, task_type, built, train, "cpu"))
    assert not estimate.note and not estimate.error
    real = measured_peak(backbone, task_type, built, train)
    assert 0.95 < estimate.peak / real < 1.10, (estimate.describe(), real)
    # parameters by count: fp32 weights, a gradient and two AdamW moments per trained parameter
    model_class, head = built.architecture(task_type)
    model = built.apply(model_class.from_config(backbone.config(**head)), task_type)
    trained = sum(p.numel() for n, p in model.named_parameters() if n in built.trained(model))
    assert estimate.gradients == 4 * trained and estimate.optimizer == 8 * trained


def test_activations_grow_with_batch_and_estimates_are_kept_on_disk(small_suite, tmp_path, monkeypatch):
    backbone, task_type, built, train = _parts(small_suite())
    cache = tmp_path / "estimates"
    small = cell_memory(EstimateOf(backbone, task_type, built, train, "cpu", batch=8), cache)
    large = cell_memory(EstimateOf(backbone, task_type, built, train, "cpu", batch=32), cache)
    assert small.weights == large.weights and large.activations > 3 * small.activations
    assert len(list(cache.glob("*.json"))) == 2
    monkeypatch.setattr(estimate_module, "_estimate", lambda *a, **k: pytest.fail("not read from the cache"))
    assert cell_memory(EstimateOf(backbone, task_type, built, train, "cpu", batch=32), cache) == large


def test_cells_that_cannot_fit_are_refused_with_the_figures_and_nothing_runs(small_suite, capsys):
    suite = small_suite(strategies={"full": {}, "lora": {"r": 4}})
    assert main(["run", str(suite), "--memory", "0.001"]) == 2  # no cell can run
    out = " ".join(capsys.readouterr().out.split())
    assert "no cell can run (2 refused" in out
    assert "needs about" in out and "more than the 1 MiB available on cpu" in out and "auto_batch_size" in out
    assert Store(load_suite(suite).store_path).statuses() == {}


def test_auto_batch_size_cells_run_when_a_smaller_batch_fits(small_suite, capsys):
    suite = small_suite(train={"batch_size": 32, "epochs": 1, "max_length": 48, "auto_batch_size": True})
    backbone, task_type, built, train = _parts(suite)
    full = cell_memory(EstimateOf(backbone, task_type, built, train, "cpu"))
    one = cell_memory(EstimateOf(backbone, task_type, built, train, "cpu", batch=1))
    budget = (full.peak + one.peak) / 2 / 2**30
    assert main(["plan", str(suite), "--memory", str(budget)]) == 0
    assert "cannot run" not in capsys.readouterr().out
    assert main(["plan", str(suite), "--memory", str(one.peak * 0.9 / 2**30)]) == 0
    assert "needs about" in capsys.readouterr().out


def test_a_step_the_model_rejects_is_refused_before_anything_runs(tmp_path, capsys, monkeypatch):
    suite = write_yaml(tmp_path / "suite.yaml", {
        "name": "prefix_t5", "models": {"t5": "tiny:t5"}, "tasks": ["gen_entities"],
        "strategies": {"prefix_tuning": {}}, "seeds": [0], "store": str(tmp_path / "s.sqlite")})
    assert main(["run", str(suite)]) == 2  # no cell of the suite can run: preflight knows why
    out = " ".join(capsys.readouterr().out.split())
    assert "T5ForTokenClassification takes no past key values, which prefix tuning feeds its prefixes through" in out
    # where a method's own check misses it, the estimate's training step still refuses the cell
    from harness.strategies.peft_methods import PeftStrategy, PrefixTuning

    monkeypatch.setattr(PrefixTuning, "check", PeftStrategy.check)
    assert main(["run", str(suite)]) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert "no cell can run (1 refused" in out and "a training step fails: Model does not support past key values" in out


def test_plan_shows_memory_and_the_time_probe_predicts_the_steps_a_run_takes(small_suite, capsys):
    suite = small_suite(train={"epochs": 2, "batch_size": 32, "max_length": 48, "gradient_accumulation_steps": 2})
    assert main(["plan", str(suite), "--time"]) == 0
    out = capsys.readouterr().out
    assert "MiB" in out and "time: about" in out and "for the 1 cells to do" in out
    store = Store(load_suite(suite).store_path)
    assert store.statuses() == {}  # probing stores nothing

    from harness.plan.probe import probe

    spec = expand(load_suite(suite))[0]
    guess = probe(spec, store.path.parent / "runs", steps=3)
    assert main(["run", str(suite)]) == 0
    assert guess.steps == store.frame().iloc[0]["info"]["steps"]
    assert guess.seconds > 0 and guess.step_seconds > 0


def test_generation_counts_the_key_value_cache_of_every_beam(small_suite):
    """A generating cell's evaluation holds a key/value cache per beam over prompt and new tokens:
    four beams need exactly the cache's difference more than one (training is kept small so that
    evaluation is the peak)."""
    from harness.config.schemas import TrainConfig
    from harness.plan.estimate import generation_cache

    def estimate(beams):
        train = {"batch_size": 1, "eval_batch_size": 64, "max_length": 48, "max_target_length": 16,
                 "generation": {"num_beams": beams, "max_new_tokens": 32}}
        suite = small_suite(models={"llama": "tiny:llama"}, tasks=["gen_headline"], train=train)
        backbone, task_type, built, settings = _parts(suite)
        return cell_memory(EstimateOf(backbone, task_type, built, settings, "cpu")), backbone.config(**built.architecture(task_type)[1]), settings

    one, config, train_one = estimate(1)
    four, _, train_four = estimate(4)
    cache_one, cache_four = generation_cache(config, train_one), generation_cache(config, train_four)
    text = config
    per_token = 2 * text.num_hidden_layers * (text.num_key_value_heads or text.num_attention_heads) \
        * (text.hidden_size // text.num_attention_heads) * 4
    assert cache_four - cache_one == 64 * 3 * ((48 + 32) * per_token + text.vocab_size * 4)
    assert four.peak - one.peak == cache_four - cache_one
    assert generation_cache(config, TrainConfig(**{**train_four.model_dump(), "precision": "fp32"}), "bf16") < cache_four
