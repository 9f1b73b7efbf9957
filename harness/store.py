"""The results store: one SQLite database (WAL), one row per run, written in one transaction.

A run is either complete in the store or absent: the record and its per-example predictions go
in together, at the end of the run, so an interrupted grid (Ctrl-C, kill -9) leaves only whole
records. A completed run is never replaced; a failed one is replaced when the cell is retried.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    suite TEXT NOT NULL,
    model TEXT NOT NULL,
    task TEXT NOT NULL,
    strategy TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    spec TEXT NOT NULL,
    metrics TEXT,
    signatures TEXT,
    cost TEXT,
    info TEXT,
    environment TEXT,
    error TEXT,
    finished_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS predictions (
    run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    predictions TEXT NOT NULL,
    refs TEXT NOT NULL
);
"""

JSON_COLUMNS = ("spec", "metrics", "signatures", "cost", "info", "environment")


@dataclass
class RunRecord:
    id: str
    spec: dict[str, Any]
    status: str  # done | failed
    metrics: dict[str, float] = field(default_factory=dict)
    signatures: dict[str, str] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # preprocessing counts, selection split, steps ...
    environment: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    predictions: list | None = None
    references: list | None = None
    finished_at: float = field(default_factory=time.time)


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, record: RunRecord) -> None:
        """Insert a record and its predictions atomically; a completed record is never overwritten."""
        row = asdict(record)
        spec = record.spec
        values = {k: json.dumps(row[k], sort_keys=True) for k in JSON_COLUMNS}
        self.db.execute("BEGIN IMMEDIATE")
        try:
            cur = self.db.execute(
                """INSERT INTO runs (id, suite, model, task, strategy, seed, status, spec, metrics, signatures,
                                     cost, info, environment, error, finished_at)
                   VALUES (:id, :suite, :model, :task, :strategy, :seed, :status, :spec, :metrics, :signatures,
                           :cost, :info, :environment, :error, :finished_at)
                   ON CONFLICT(id) DO UPDATE SET
                     suite=excluded.suite, model=excluded.model, task=excluded.task, strategy=excluded.strategy,
                     seed=excluded.seed, status=excluded.status, spec=excluded.spec, metrics=excluded.metrics,
                     signatures=excluded.signatures, cost=excluded.cost, info=excluded.info,
                     environment=excluded.environment, error=excluded.error, finished_at=excluded.finished_at
                   WHERE runs.status != 'done'""",
                {**values, "id": record.id, "suite": spec["suite"], "model": spec["model"], "task": spec["task"],
                 "strategy": spec["strategy"], "seed": spec["seed"], "status": record.status,
                 "error": record.error, "finished_at": record.finished_at},
            )
            if cur.rowcount and record.predictions is not None:
                self.db.execute(
                    "INSERT OR REPLACE INTO predictions (run_id, predictions, refs) VALUES (?, ?, ?)",
                    (record.id, json.dumps(record.predictions), json.dumps(record.references)),
                )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def statuses(self, ids: list[str] | None = None) -> dict[str, tuple[str, str | None]]:
        """{run id: (status, error)} for the given ids (all runs if None)."""
        rows = self._select("id, status, error", ids)
        return {r[0]: (r[1], r[2]) for r in rows}

    def done(self, ids: list[str] | None = None) -> set[str]:
        return {i for i, (status, _) in self.statuses(ids).items() if status == "done"}

    def frame(self, ids: list[str] | None = None) -> pd.DataFrame:
        """Runs as a DataFrame, JSON columns decoded into dicts."""
        columns = ["id", "suite", "model", "task", "strategy", "seed", "status", *JSON_COLUMNS, "error", "finished_at"]
        rows = self._select(", ".join(columns), ids)
        frame = pd.DataFrame(rows, columns=columns)
        for column in JSON_COLUMNS:
            frame[column] = frame[column].map(lambda v: json.loads(v) if v else {})
        return frame

    def predictions(self, run_id: str) -> tuple[list, list] | None:
        row = self.db.execute("SELECT predictions, refs FROM predictions WHERE run_id = ?", (run_id,)).fetchone()
        return (json.loads(row[0]), json.loads(row[1])) if row else None

    def _select(self, columns: str, ids: list[str] | None) -> list[tuple]:
        if ids is None:
            return self.db.execute(f"SELECT {columns} FROM runs").fetchall()
        rows: list[tuple] = []
        for start in range(0, len(ids), 500):  # SQLite limits the number of bound parameters
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            rows += self.db.execute(f"SELECT {columns} FROM runs WHERE id IN ({marks})", chunk).fetchall()
        return rows
