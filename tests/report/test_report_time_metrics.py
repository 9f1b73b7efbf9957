"""A metric added to a card after its cells ran reruns nothing: it is computed from each run's stored
predictions when a report reads the run, written back once, and the record and the board say so."""

from __future__ import annotations

from sklearn.metrics import matthews_corrcoef

from harness.cli.commands import main
from harness.config.suite import expand, load_suite
from harness.report.leaderboard import boards
from harness.report.results import Results
from harness.store import database as store_module
from harness.store.database import Store
from harness.sweep.grid import grid
from harness.testing import FAST_TRAIN, SENTIMENT_CARD, write_yaml


def test_a_metric_added_later_is_scored_from_the_stored_predictions(small_suite, tmp_path, capsys, monkeypatch):
    path = small_suite(train={**FAST_TRAIN, "epochs": 1})
    assert main(["run", str(path)]) == 0
    before = expand(load_suite(path))[0].id

    write_yaml(tmp_path / "tasks" / "small_sentiment.yaml", {**SENTIMENT_CARD,
                                                             "metrics": [*SENTIMENT_CARD["metrics"], "mcc"]})
    loaded = load_suite(path)
    assert expand(loaded)[0].id == before  # the same cell: nothing to rerun
    capsys.readouterr()
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "0 ran, 1 already done" in out
    assert "computed from the stored predictions after the runs: mcc (1 runs)" in out

    with Store(loaded.store_path) as store:
        record = store.frame([before]).iloc[0]
        predictions, references = store.predictions(before)
        assert record["metrics"]["mcc"] == 100 * matthews_corrcoef(references, predictions)
        assert record["info"]["report_time_metrics"] == ["mcc"] and "mcc" in record["signatures"]
        calls = []
        monkeypatch.setattr(store_module.Store, "add_metrics", lambda self, *a: calls.append(a))
        found = grid(loaded, store)
        results = Results.from_suite(loaded, found.reported, store)
        assert calls == []  # written back once: the next report reads it from the record
        assert results.runs.metrics[0]["mcc"] == record["metrics"]["mcc"]
        assert any("mcc (1 runs)" in note for note in boards(results, "overall")[0].notes)
