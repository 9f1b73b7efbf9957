"""The store's schema version: older stores are migrated in place with every record intact, a
newer one is refused in one line."""

from __future__ import annotations

import sqlite3

import pytest

from harness.base.errors import HarnessError
from harness.store import database as store_module
from harness.store.database import SCHEMA, SCHEMA_VERSION, RunRecord, Store


def record(i: int) -> RunRecord:
    spec = {"suite": "s", "model": "m", "task": "t", "strategy": "full", "seed": i}
    return RunRecord(id=f"run{i}", spec=spec, status="done", metrics={"accuracy": 50.0 + i},
                     predictions=[i, 1], references=[1, 1])


def test_a_store_written_before_versions_opens_migrated_with_every_record(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)  # as stores were written before the schema had a version: user_version 0
    db.executescript(SCHEMA)
    db.close()
    with Store(path) as old:
        for i in range(3):
            old.write(record(i))
    sqlite3.connect(path).execute("PRAGMA user_version = 0").connection.commit()
    with Store(path) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert sorted(store.frame().id) == ["run0", "run1", "run2"]
        assert store.predictions("run2") == ([2, 1], [1, 1])


def test_a_migration_runs_once_in_place(tmp_path, monkeypatch):
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.write(record(0))
    # a later harness adds a column: version 2's migration
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setattr(store_module, "MIGRATIONS", {**store_module.MIGRATIONS,
                                                     SCHEMA_VERSION + 1: ["ALTER TABLE runs ADD COLUMN note TEXT"]})
    with Store(path) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert "note" in {row[1] for row in store.db.execute("PRAGMA table_info(runs)")}
        assert store.frame().metrics[0] == {"accuracy": 50.0}
    with Store(path) as store:  # opened again: nothing to migrate (the ALTER would fail if it ran twice)
        assert len(store.frame()) == 1


def test_a_store_from_a_newer_harness_is_refused_in_one_line(tmp_path):
    path = tmp_path / "new.sqlite"
    with Store(path) as store:
        store.write(record(0))
    sqlite3.connect(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}").connection.commit()
    with pytest.raises(HarnessError) as info:
        Store(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "written by a newer harness" in message
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1  # untouched


def test_a_version_1_store_moves_each_record_to_its_current_id(tmp_path):
    """Version 2 took a card's metrics out of run ids. A store the previous harness wrote (its ids
    are tests/golden/run_ids_v1.json's, as that harness computed them) opens with every record under
    the id this harness gives its cell, predictions and all; nothing is lost or rerun."""
    import json
    from pathlib import Path

    from harness.config.suite import expand, load_suite

    root = Path(__file__).resolve().parents[2]
    before = json.loads((root / "tests" / "golden" / "run_ids_v1.json").read_text(encoding="utf-8"))["quickstart"]
    specs = expand(load_suite(root / "tests" / "golden" / "quickstart.yaml"))  # as the goldens knew it
    path = tmp_path / "v1.sqlite"
    with Store(path) as store:
        for i, spec in enumerate(specs):
            written = {k: v for k, v in spec.model_dump(mode="json").items() if k != "compute"}  # as v1 wrote it
            store.write(RunRecord(id=before[spec.label], spec=written, status="done", metrics={"accuracy": float(i)},
                                  predictions=[i], references=[1], finished_at=1000.0 + i))
        # the same cell run twice by v1 (before and after a metric was added to its card): two ids then
        twice = specs[0]
        store.write(RunRecord(id="0123456789abcdef", spec=twice.model_dump(mode="json"), status="done",
                              metrics={"accuracy": -1.0}, predictions=[0], references=[1], finished_at=1.0))
    sqlite3.connect(path).execute("PRAGMA user_version = 1").connection.commit()
    with Store(path) as store:
        frame = store.frame()
        assert len(frame) == len(specs) + 1  # every record is still there
        assert store.done([s.id for s in specs]) == {s.id for s in specs}  # each found under its current id
        for i, spec in enumerate(specs):
            assert frame.set_index("id").metrics[spec.id] == {"accuracy": float(i)}
            assert store.predictions(spec.id) == ([i], [1])
        assert set(frame.id) - {s.id for s in specs} == {"0123456789abcdef"}  # the older of the two, unread
        assert sum(before[s.label] != s.id for s in specs) == len(specs)  # every id did move


def test_opening_the_store_again_in_a_running_process_keeps_its_writes_visible_to_others(tmp_path):
    """A run opens its store again as it re-plans. Reading the file any other way than through
    SQLite (an open() of its header) dropped the process's POSIX locks on it, so the next reader in
    another process (`harness leaderboard` in a second terminal) deleted the WAL under the run, and
    the run's later records were invisible to everyone else."""
    import subprocess
    import sys

    path = tmp_path / "s.sqlite"
    count = (f"import sqlite3; db = sqlite3.connect({str(path)!r}); "
             f"print(db.execute('SELECT COUNT(*) FROM runs').fetchone()[0]); db.close()")
    with Store(path) as running:
        running.write(record(0))
        Store(path).close()  # the re-plan's store, in the same process
        Store.for_reading(path).close()
        assert subprocess.run([sys.executable, "-c", count], capture_output=True, text=True).stdout.strip() == "1"
        running.write(record(1))
        assert (tmp_path / "s.sqlite-wal").exists()
        assert subprocess.run([sys.executable, "-c", count], capture_output=True, text=True).stdout.strip() == "2"
