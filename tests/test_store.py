"""The store's schema version: older stores are migrated in place with every record intact, a
newer one is refused in one line."""

from __future__ import annotations

import sqlite3

import pytest

from harness import store as store_module
from harness.errors import HarnessError
from harness.store import SCHEMA, SCHEMA_VERSION, RunRecord, Store


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
