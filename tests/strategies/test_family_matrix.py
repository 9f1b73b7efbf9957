"""The backbone families x methods matrix, in the spirit of PEFT's tests: every tiny family the seeds
name (built from a config by `tiny:`) with every method, on a generated sentiment task. Each pair
either trains or is refused in preflight with a reason that names the family; none fails at run
time. Every method that trains the body itself learns on every family (eval accuracy well above
chance). Methods that train around a frozen body are only asserted to run: a randomly initialised
encoder body (BERT, RoBERTa, ELECTRA) gives its head almost the same features for every input,
so they stay at chance there (measured: see the matrix this test writes). Slow: 231 cells, about
6 minutes on 2 CPU cores."""

from __future__ import annotations

import json

import pytest

from harness.cli.commands import main
from harness.config.suite import expand, load_suite
from harness.store.database import Store

FAMILIES = ["bert", "roberta", "albert", "distilbert", "deberta-v2", "electra", "xlnet", "gpt2", "llama", "t5", "bart"]
METHODS = {
    "full": {}, "head_only": {}, "freeze": {"layers": 1}, "top_k": {"k": 1}, "gradual_unfreezing": {"every": "epoch"},
    "llrd": {"decay": 0.8}, "bitfit": {}, "ln_tuning": {}, "lora": {"r": 8, "lora_alpha": 16},
    "adalora": {"init_r": 12, "target_r": 8, "tinit": 10, "tfinal": 10}, "ia3": {}, "loha": {},
    "lokr": {}, "vera": {}, "oft": {}, "boft": {}, "prefix_tuning": {"num_virtual_tokens": 10},
    "prompt_tuning": {"num_virtual_tokens": 10}, "p_tuning": {"num_virtual_tokens": 10},
    "houlsby": {"use": "adapters", "placement": "houlsby", "reduction": 8},
    "pfeiffer": {"use": "adapters", "placement": "pfeiffer", "reduction": 8},
}
# methods that train little on a randomly initialised body learn at a larger rate
GENTLE = ["head_only", "bitfit", "ln_tuning", "ia3", "vera", "prefix_tuning", "prompt_tuning", "p_tuning", "houlsby",
          "pfeiffer"]
LEARNS = 70.0  # eval accuracy (chance: 50) a pair must reach to count as learning
BODY = ["full", "freeze", "top_k", "gradual_unfreezing", "llrd"]  # methods that train the body


@pytest.mark.slow
def test_every_family_with_every_method_learns_or_is_refused_naming_the_family(small_suite, tmp_path):
    suite = small_suite(
        models={family: f"tiny:{family}" for family in FAMILIES}, strategies=METHODS,
        train={"epochs": 4, "learning_rate": 2.0e-3, "batch_size": 32, "max_length": 48, "warmup_ratio": 0.1},
        overrides=[{"when": {"strategy": GENTLE}, "train": {"learning_rate": 5.0e-3}}])
    assert main(["run", str(suite)]) in (0, 1)
    loaded = load_suite(suite)
    specs = expand(loaded)
    with Store(loaded.store_path) as store:
        frame = store.frame([s.id for s in specs]).set_index("id")
    from harness.plan.plan import make_plan

    with Store(loaded.store_path) as store:
        refused = make_plan(loaded, specs, store, None, "cpu").refused  # preflight and the estimate's step
    matrix, failures = {}, []
    for spec in specs:
        if spec.id in refused:
            matrix[spec.model, spec.strategy] = f"refused: {refused[spec.id]}"
            if spec.model not in refused[spec.id]:
                failures.append(f"{spec.model} x {spec.strategy}: the reason names no family: {refused[spec.id]}")
            continue
        row = frame.loc[spec.id] if spec.id in frame.index else None
        if row is None or row.status != "done":
            failures.append(f"{spec.model} x {spec.strategy}: {row.error if row is not None else 'not run'}")
            continue
        accuracy = row.metrics["accuracy"]
        matrix[spec.model, spec.strategy] = round(accuracy, 1)
        if spec.strategy in BODY and accuracy < LEARNS:
            failures.append(f"{spec.model} x {spec.strategy}: accuracy {accuracy:.1f} < {LEARNS}")
    (tmp_path / "family_matrix.json").write_text(json.dumps({f"{m} x {s}": v for (m, s), v in matrix.items()},
                                                                   indent=1))
    assert not failures, "\n".join(failures)
