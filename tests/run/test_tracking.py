"""`train.report_to` through Trainer's own integrations: a cell run with TensorBoard and MLflow (a local
`file:` tracking store) leaves one TensorBoard event file and one MLflow run, named after the cell's
label, tagged with what identifies it, holding the same scores as the record."""

from __future__ import annotations

import pytest

from harness.base.errors import ConfigError
from harness.cli.commands import main
from harness.config.schemas import TrainConfig
from harness.config.suite import expand, load_suite
from harness.store.database import Store
from harness.testing import FAST_TRAIN

pytest.importorskip("tensorboard")
mlflow = pytest.importorskip("mlflow")


def test_a_cell_is_one_tensorboard_run_and_one_mlflow_run_with_its_scores(small_suite, tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file:{tmp_path / 'mlruns'}")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store behind this switch
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    path = small_suite(train={**FAST_TRAIN, "report_to": ["tensorboard", "mlflow"]})
    assert main(["run", str(path)]) == 0
    spec = expand(load_suite(path))[0]
    row = Store(tmp_path / "results" / "store.sqlite").frame([spec.id]).iloc[0]
    assert row["status"] == "done"
    accuracy = row["metrics"]["accuracy"]

    events = list((tmp_path / "results" / "runs" / spec.id / "tensorboard").rglob("events.out.tfevents.*"))
    assert len(events) == 1
    board = EventAccumulator(str(events[0].parent))
    board.Reload()
    scalars = board.Tags()["scalars"]
    assert "train/loss" in scalars and "eval/accuracy" in scalars
    assert board.Scalars("eval/accuracy")[-1].value == pytest.approx(accuracy)

    client = mlflow.tracking.MlflowClient(tracking_uri=f"file:{tmp_path / 'mlruns'}")
    experiment = client.get_experiment_by_name("harness")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1  # the scores went into the cell's run, not a second one
    run = runs[0]
    assert run.info.run_name == spec.label and run.info.status == "FINISHED"
    assert {k: run.data.tags[k] for k in ("model", "task", "strategy", "seed", "run_id")} == {
        "model": "tiny", "task": "small_sentiment", "strategy": "full", "seed": "0", "run_id": spec.id}
    assert run.data.metrics["eval_accuracy"] == pytest.approx(accuracy)
    assert "loss" in run.data.metrics  # Trainer's own training logs


def test_trackers_are_not_part_of_the_run_id_and_unknown_ones_are_refused(small_suite):
    plain = expand(load_suite(small_suite()))[0].id
    tracked = expand(load_suite(small_suite(train={**FAST_TRAIN, "report_to": ["tensorboard"]})))[0].id
    assert plain == tracked
    with pytest.raises(ValueError, match="unknown tracker 'tensorbord' \\(did you mean 'tensorboard'"):
        TrainConfig(report_to=["tensorbord"])
    with pytest.raises(ConfigError, match="report_to"):
        load_suite(small_suite(train={**FAST_TRAIN, "report_to": ["mlfow"]}))
