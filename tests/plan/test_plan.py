"""Expansion into run specs, id stability, and preflight refusals."""

from __future__ import annotations

from pathlib import Path

from harness.cli.commands import main
from harness.config.suite import expand, load_suite
from harness.plan.plan import preflight
from harness.testing import SENTIMENT_CARD, write_yaml


def ids(path) -> list[str]:
    return [s.id for s in expand(load_suite(path))]


def test_grid_size_and_order(small_suite):
    path = small_suite(models={"a": "tiny:bert", "b": {"source": "tiny:bert", "size": {"hidden_size": 32}}},
                       strategies={"full": {}, "bitfit": {}, "lora": {}}, seeds=[0, 1, 2])
    specs = expand(load_suite(path))
    assert len(specs) == 2 * 1 * 3 * 3
    assert len({s.id for s in specs}) == len(specs)
    assert [(s.model, s.strategy, s.seed) for s in specs[:4]] == [("a", "full", 0), ("a", "full", 1), ("a", "full", 2), ("a", "bitfit", 0)]


def test_same_content_same_id(small_suite):
    first = ids(small_suite())
    assert ids(small_suite()) == first
    # display names are not content: renaming the alias or the suite reruns nothing
    assert ids(small_suite(models={"renamed": "tiny:bert"}, name="other")) == first


def test_anything_that_changes_results_changes_the_id(small_suite, tmp_path):
    base = ids(small_suite())[0]
    assert ids(small_suite(seeds=[1]))[0] != base
    assert ids(small_suite(train={"learning_rate": 1e-3}))[0] != base
    assert ids(small_suite(models={"tiny": {"source": "tiny:bert", "size": {"hidden_size": 32}}}))[0] != base
    assert ids(small_suite(strategies={"full": {}, "lora": {"r": 4}}))[1] != ids(small_suite(strategies={"full": {}, "lora": {"r": 8}}))[1]
    card = dict(SENTIMENT_CARD, source={"generate": "sentiment", "seed": 1, "options": {"n_train": 600, "n_eval": 200}})
    write_yaml(tmp_path / "tasks" / "small_sentiment.yaml", card)
    assert ids(small_suite())[0] != base


def test_local_data_content_is_in_the_id(small_suite, tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("text,label\ngood,1\nbad,0\n")
    card = write_yaml(tmp_path / "tasks" / "local.yaml", {
        "name": "local", "type": "classification", "source": {"files": {"train": str(data)}},
        "inputs": ["text"], "labels": ["neg", "pos"], "metrics": ["accuracy"], "primary": "accuracy",
        "splits": {"eval": None},
    })
    before = ids(small_suite(tasks=[str(card)]))
    data.write_text("text,label\ngood,1\nbad,1\n")
    assert ids(small_suite(tasks=[str(card)])) != before


def test_preflight_refuses_missing_lora_targets(small_suite):
    loaded = load_suite(small_suite(strategies={"full": {}, "lora": {"target_modules": ["q_proj"]}}))
    specs = expand(loaded)
    refused = preflight(loaded, specs)
    assert set(refused) == {s.id for s in specs if s.strategy == "lora"}
    reason = next(iter(refused.values()))
    assert "target modules ['q_proj'] not found in BertForSequenceClassification" in reason
    assert "query" in reason  # and it says what the model does have


def test_preflight_refuses_a_missing_package_backbone(small_suite):
    loaded = load_suite(small_suite(models={"tiny": "tiny:bert", "gone": "package:no_such_pkg_xyz/model"}))
    refused = preflight(loaded, expand(loaded))
    assert len(refused) == 1
    assert "Python package 'no_such_pkg_xyz' is not installed" in next(iter(refused.values()))


def test_plan_command_shows_todo_and_refusals(small_suite, capsys):
    path = small_suite(strategies={"full": {}, "lora": {"target_modules": ["q_proj"]}})
    assert main(["plan", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1 to do" in out and "1 cannot run" in out and "q_proj" in out


def test_report_only_card_fields_do_not_change_the_id(small_suite, tmp_path):
    base = ids(small_suite())
    card = dict(SENTIMENT_CARD, description="edited", average=["accuracy", "f1_macro"])
    write_yaml(tmp_path / "tasks" / "small_sentiment.yaml", card)
    assert ids(small_suite()) == base


def test_run_ids_of_the_offline_suites_are_the_stored_ones():
    """A run id names a result: a change that alters the id of an unchanged cell reruns every
    user's stored grid. tests/golden/run_ids.json holds each cell's id (label -> id) as harness
    computed it; regenerate it only for a change that is meant to alter results (last: the carving
    rules of #24, which hold out each label's fraction without forcing a row per label and name their
    version in the data fingerprint of every card that carves, which changed every id; the ids before
    are in run_ids_v3.json; before that: a model folder
    identified by its files' content, #16, which changed the 16 MiniLM cells of quickstart; then a card's metrics
    left the ids, #16, which changed every id: stores written before are re-keyed when opened, see
    test_store.py, which reads the ids from before in run_ids_v1.json)."""
    import json

    golden = json.loads((Path(__file__).resolve().parents[1] / "golden" / "run_ids.json").read_text(encoding="utf-8"))
    suites = Path(__file__).resolve().parents[2] / "suites"
    # the quickstart as it was when these ids were taken (#29 shrank the shipped one's training since)
    frozen = {"quickstart": Path(__file__).resolve().parents[1] / "golden" / "quickstart.yaml"}
    for name, ids in golden.items():
        assert {s.label: s.id for s in expand(load_suite(frozen.get(name, suites / f"{name}.yaml")))} == ids, name


def test_the_plan_decides_each_cell_once(small_suite):
    """Done, failed (to retry), to do and cannot run come from the store and preflight, in the plan
    value; memory is estimated for the cells still to run only; the executor's jobs leave out the
    cells that cannot run and keep those done (the executor counts them as already done)."""
    from harness.base.device import training_device
    from harness.executors.local import failure
    from harness.plan.plan import make_plan
    from harness.store.database import Store

    assert main(["run", str(small_suite(train={"epochs": 1}))]) == 0
    path = small_suite(train={"epochs": 1},
                       strategies={"full": {}, "bitfit": {}, "lora": {"target_modules": ["q_proj"]}, "head_only": {}})
    loaded = load_suite(path)
    specs = expand(loaded)
    full, bitfit, lora, head = specs
    with Store(loaded.store_path) as store:
        store.write(failure(bitfit, ValueError("boom\nsecond line")))
        plan = make_plan(loaded, specs, store, None, training_device())
    assert [(c.spec.strategy, c.status) for c in plan.cells] == [
        ("full", "done"), ("bitfit", "failed"), ("lora", "cannot run"), ("head_only", "to do")]
    assert plan.cells[1].reason == "ValueError: boom" and "q_proj" in plan.cells[2].reason
    assert plan.counts() == {"done": 1, "to do": 1, "failed": 1, "cannot run": 1}
    assert [c.memory is not None for c in plan.cells] == [False, True, False, True]
    assert plan.refused == {lora.id: plan.cells[2].reason}
    assert plan.runnable() == [[full], [bitfit], [head]]
    assert [plan.jobs[c.job] for c in plan.cells] == [(s,) for s in specs]
    tight = make_plan(loaded, specs, Store(loaded.store_path), 1024, training_device())
    assert [c.status for c in tight.cells] == ["done", "cannot run", "cannot run", "cannot run"]
    assert "more than the" in tight.cells[3].reason
