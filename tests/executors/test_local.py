"""The grid through the CLI: resume, failures recorded while the grid goes on, interruptions lose nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

from rich.console import Console

from harness.cli.commands import main
from harness.config.suite import expand, load_suite
from harness.executors.local import run_local
from harness.plan.plan import jobs
from harness.run.cell import run_cell
from harness.store.database import Store
from harness.testing import write_yaml


def bad_label_card(tmp_path):
    data = tmp_path / "bad.csv"
    rows = ["good film,positive", "bad film,negative"] * 20
    rows[13] = rows[31] = "ok film,neutral"
    data.write_text("text,label\n" + "\n".join(rows) + "\n")
    return write_yaml(tmp_path / "tasks" / "bad_labels.yaml", {
        "name": "bad_labels", "type": "classification", "source": {"files": {"train": str(data)}},
        "inputs": ["text"], "labels": ["negative", "positive"], "metrics": ["accuracy"], "primary": "accuracy",
        "splits": {"eval": None},
    })


def test_resume_skips_completed_cells(small_suite, capsys):
    path = small_suite(seeds=[0, 1], train={"epochs": 1, "learning_rate": 2e-3})
    assert main(["run", str(path)]) == 0
    first = capsys.readouterr().out
    assert "2 ran, 0 already done" in first
    assert main(["run", str(path)]) == 0
    second = capsys.readouterr().out
    assert "0 ran, 2 already done" in second
    assert "small_sentiment" in second  # the leaderboard is still printed


def test_a_crashing_cell_is_recorded_and_the_grid_goes_on(small_suite, tmp_path, capsys):
    card = tmp_path / "tasks" / "small_sentiment.yaml"
    path = small_suite(tasks=[str(bad_label_card(tmp_path)), str(card)], train={"epochs": 1})
    assert main(["run", str(path)]) == 1
    out = capsys.readouterr().out
    assert "1 ran, 0 already done, 1 failed" in out
    loaded = load_suite(path)
    with Store(loaded.store_path) as store:
        statuses = store.statuses()
    errors = [e for s, e in statuses.values() if s == "failed"]
    assert len(errors) == 1
    assert "row 13: label" in errors[0] or "row 31: label" in errors[0]
    assert "task 'bad_labels', split 'train" in errors[0] and ": label 'neutral' is not one of ['negative', 'positive']" in errors[0]
    assert sum(s == "done" for s, _ in statuses.values()) == 1
    # the failed cell is retried on the next run, the completed one is not
    assert main(["run", str(path)]) == 1
    assert "0 ran, 1 already done, 1 failed" in capsys.readouterr().out


def test_ctrl_c_keeps_completed_records_and_leaves_no_partial_one(small_suite):
    loaded = load_suite(small_suite(seeds=[0, 1, 2], train={"epochs": 1}))
    specs = expand(loaded)
    calls = []

    def run(job, progress, artifacts):
        calls.append(job[0].id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return [run_cell(job[0], progress, artifacts)]

    with Store(loaded.store_path) as store:
        try:
            run_local(jobs(specs), store, Console(quiet=True), run=run)
        except KeyboardInterrupt:
            pass
        assert store.done() == {specs[0].id}
        assert set(store.statuses()) == {specs[0].id}
        summary = run_local(jobs(specs), store, Console(quiet=True))
        assert summary.skipped == 1 and len(summary.done) == 2


def test_kill_9_leaves_only_complete_records(small_suite, capsys):
    path = small_suite(seeds=[0, 1, 2, 3], train={"epochs": 1, "max_train_samples": 128})
    store_path = load_suite(path).store_path
    process = subprocess.Popen([sys.executable, "-m", "harness", "run", str(path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    count = 0
    while time.time() < deadline and process.poll() is None:
        if store_path.exists():
            with sqlite3.connect(store_path) as db:
                try:
                    count = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
                except sqlite3.OperationalError:
                    count = 0
            if count >= 1:
                break
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert count >= 1
    with Store(store_path) as store:
        frame = store.frame()
        assert 1 <= len(frame) < 4
        assert (frame.status == "done").all()
        for record in frame.itertuples():
            assert record.metrics["accuracy"] > 0
            assert store.predictions(record.id) is not None
    # and a rerun (here, in this process) finishes the grid without redoing what was stored
    kept = len(frame)
    assert main(["run", str(path)]) == 0
    assert f"{4 - kept} ran, {kept} already done" in capsys.readouterr().out
