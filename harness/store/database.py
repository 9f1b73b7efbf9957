"""The results store: one SQLite database (WAL), one row per run, written in one transaction.

A run is either complete in the store or absent: the record and its per-example predictions go
in together, at the end of the run, so an interrupted grid (Ctrl-C, kill -9) leaves only whole
records. A completed run is never replaced; a failed one is replaced when the cell is retried.

The schema has a version (`PRAGMA user_version`, SCHEMA_VERSION): opening a store migrates an
older one in place (MIGRATIONS, in one transaction each) and refuses one written by a newer
harness, which this one could misread.

Several harness processes may share one store (two terminals, a rerun while a grid is going): a
process claims a cell before it runs it, and another process skips cells claimed by a live
owner. An owner is live while it keeps its claims' heartbeat fresh (`keep_alive`) and, on the
same host, while its process exists; a dead owner's claims are taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.base.errors import HarnessError
from harness.store.migrations import MIGRATIONS, SCHEMA, SCHEMA_VERSION
from harness.store.opening import StoreError, check_file, connect_readonly, existing_parent

JSON_COLUMNS = ("spec", "metrics", "signatures", "cost", "info", "environment")

HEARTBEAT_SECONDS = 20.0  # how often a running process refreshes its claims
STALE_SECONDS = 120.0  # a claim not refreshed for this long belongs to a dead process


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
    probabilities: list | None = None  # per-example class probabilities (classification), for calibration
    # more evaluation sets: {name: {predictions, references, probabilities, info}} (harness.run.eval_sets)
    eval_sets: dict[str, dict] | None = None
    finished_at: float = field(default_factory=time.time)



class Store:
    """`readonly`: read a store this process cannot (or must not) write; the reporting commands open
    a store they may not write so (Store.for_reading), and nothing in it changes."""

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self.unsaved_metrics = 0  # runs whose report-time metrics a read-only store could not keep
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        found = check_file(self.path, readonly, SCHEMA_VERSION)
        if readonly:
            self.db = connect_readonly(self.path, found, SCHEMA_VERSION)
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            if found <= SCHEMA_VERSION:  # a newer store is refused below without being touched
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the store ({exc}); nothing in it was changed") from None
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the store ({exc.strerror or exc})") from None

    @classmethod
    def for_reading(cls, path: str | Path) -> Store:
        """The store at `path`, read-only where this process cannot write it (or its folder, which
        SQLite needs for its journal), else as usual (report-time metrics are then kept in it)."""
        path = Path(path)
        folder = path.parent if path.exists() else existing_parent(path)
        writable = os.access(folder, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))
        return cls(path, readonly=not writable)

    def _migrate(self) -> None:
        """Create the tables, or bring an older store's schema up to SCHEMA_VERSION; refuse a newer one."""
        self.db.execute("BEGIN IMMEDIATE")  # one process migrates; another waits, then finds it done
        try:
            found = self.db.execute("PRAGMA user_version").fetchone()[0]
            if found > SCHEMA_VERSION:
                raise HarnessError(f"{self.path}: this store was written by a newer harness (store schema {found}; "
                                   f"this harness reads up to {SCHEMA_VERSION}); upgrade harness, or use another --store")
            fresh = not self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'runs'").fetchone()
            for version in range(found + 1, SCHEMA_VERSION + 1) if not fresh else ():
                for step in MIGRATIONS[version]:
                    step(self.db) if callable(step) else self.db.execute(step)
            for statement in filter(str.strip, SCHEMA.split(";")):  # every table, IF NOT EXISTS
                self.db.execute(statement)
            if found != SCHEMA_VERSION:
                self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self.db.in_transaction:  # SQLite rolls back by itself on some errors (a full disk)
            self.db.execute("ROLLBACK")

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
                    "INSERT OR REPLACE INTO predictions (run_id, predictions, refs, probabilities) VALUES (?, ?, ?, ?)",
                    (record.id, json.dumps(record.predictions), json.dumps(record.references),
                     None if record.probabilities is None else json.dumps(record.probabilities)),
                )
            self.db.executemany(  # its more evaluation sets (harness.run.eval_sets)
                "INSERT OR REPLACE INTO eval_sets (run_id, name, predictions, refs, probabilities, info) VALUES "
                "(?, ?, ?, ?, ?, ?)", [(record.id, name, *map(json.dumps, (f["predictions"], f["references"])),
                                        None if f.get("probabilities") is None else json.dumps(f["probabilities"]),
                                        json.dumps(f.get("info", {}), sort_keys=True))
                                       for name, f in (record.eval_sets or {}).items() if cur.rowcount])
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:  # a full disk, a store gone read-only: this record is not kept, the rest is
            self._rollback()
            raise StoreError(f"{self.path}: cannot write the record of run {record.id} ({exc}); every record "
                             f"written before is kept") from None
        except BaseException:
            self._rollback()
            raise

    def claim(self, ids: list[str]) -> set[str]:
        """Claim for this process the cells among `ids` that are neither done nor claimed by a live
        owner; returns those now claimed (in one transaction, so two processes never both get one)."""
        now = time.time()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            done = {r[0] for r in self._in("SELECT id FROM runs WHERE status = 'done' AND id IN ({})", ids)}
            held = {r[0]: (r[1], r[2]) for r in self._in("SELECT id, owner, heartbeat FROM claims WHERE id IN ({})", ids)}
            mine = {i for i in ids if i not in done and (i not in held or not self._alive(*held[i], now))}
            self.db.executemany("INSERT OR REPLACE INTO claims (id, owner, heartbeat) VALUES (?, ?, ?)",
                                [(i, self.owner, now) for i in mine])
            self.db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        return mine

    def release(self, ids: list[str]) -> None:
        self._in("DELETE FROM claims WHERE owner = ? AND id IN ({})", ids, self.owner)

    def claimed_elsewhere(self, ids: list[str]) -> dict[str, str]:
        """{run id: owner} of cells a live process other than this one is running."""
        now = time.time()
        rows = self._in("SELECT id, owner, heartbeat FROM claims WHERE id IN ({})", ids)
        return {i: owner for i, owner, beat in rows if owner != self.owner and self._alive(owner, beat, now)}

    @contextmanager
    def keep_alive(self):
        """Refresh this process's claims every HEARTBEAT_SECONDS while the block runs (from a thread
        with its own connection, so a long cell in the main thread keeps its claims); release them after."""
        stop = threading.Event()

        def beat() -> None:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            while not stop.wait(HEARTBEAT_SECONDS):
                with contextlib.suppress(sqlite3.Error):  # busy or full: the next beat tries again
                    db.execute("UPDATE claims SET heartbeat = ? WHERE owner = ?", (time.time(), self.owner))
            db.close()

        thread = threading.Thread(target=beat, name="harness-claims", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            with contextlib.suppress(sqlite3.Error):  # a full disk: stale claims expire (STALE_SECONDS)
                self.db.execute("DELETE FROM claims WHERE owner = ?", (self.owner,))

    @staticmethod
    def _alive(owner: str, heartbeat: float, now: float) -> bool:
        if now - heartbeat > STALE_SECONDS:
            return False
        host, _, pid = owner.rpartition(":")
        if host == socket.gethostname():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                return False
            except (PermissionError, ValueError):
                pass
        return True

    def _in(self, sql: str, ids: list[str], *first) -> list[tuple]:
        """Run `sql` with its `IN ({})` bound to `ids` (in chunks: SQLite limits bound parameters)."""
        rows: list[tuple] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows += self.db.execute(sql.format(",".join("?" * len(chunk))), [*first, *chunk]).fetchall()
        return rows

    def statuses(self, ids: list[str] | None = None) -> dict[str, tuple[str, str | None]]:
        """{run id: (status, error)} for the given ids (all runs if None)."""
        return {r[0]: (r[1], r[2]) for r in self._select("id, status, error", ids)}

    def done(self, ids: list[str] | None = None) -> set[str]:
        return {i for i, (status, _) in self.statuses(ids).items() if status == "done"}

    def frame(self, ids: list[str] | None = None) -> pd.DataFrame:
        """Runs as a DataFrame, JSON columns decoded into dicts."""
        columns = ["id", "suite", "model", "task", "strategy", "seed", "status", *JSON_COLUMNS, "error", "finished_at"]
        frame = pd.DataFrame(self._select(", ".join(columns), ids), columns=columns)
        for column in JSON_COLUMNS:
            frame[column] = frame[column].map(lambda v: json.loads(v) if v else {})
        return frame

    def add_metrics(self, run_id: str, metrics: dict[str, float], signatures: dict[str, str]) -> None:
        """Merge metrics computed after a run from its stored predictions (at report time) into its
        record; their names go into info.report_time_metrics, so the record says which they are."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            row = self.db.execute("SELECT metrics, signatures, info FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is not None:
                old, signed, info = (json.loads(v) if v else {} for v in row)
                info["report_time_metrics"] = sorted(set(info.get("report_time_metrics", [])) | set(metrics))
                self.db.execute("UPDATE runs SET metrics = ?, signatures = ?, info = ? WHERE id = ?",
                                (json.dumps(old | metrics, sort_keys=True), json.dumps(signed | signatures, sort_keys=True),
                                 json.dumps(info, sort_keys=True), run_id))
            self.db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def computes(self, suite: str) -> list[tuple[dict, str]]:
        """(compute, train.precision) of each done run of `suite`: where it trained (see RunSpec.compute)."""
        rows = self.db.execute("SELECT spec FROM runs WHERE suite = ? AND status = 'done'", (suite,)).fetchall()
        specs = [json.loads(spec) for (spec,) in rows if spec]
        return [(s.get("compute") or {}, s.get("train", {}).get("precision", "auto")) for s in specs]

    def predictions(self, run_id: str) -> tuple[list, list] | None:
        row = self.db.execute("SELECT predictions, refs FROM predictions WHERE run_id = ?", (run_id,)).fetchone()
        return (json.loads(row[0]), json.loads(row[1])) if row else None

    def add_measurement(self, run_id: str, device: str, serving: dict, environment: dict) -> None:
        """Keep a run's serving cost measured on `device` (harness measure): one per run and device,
        a new one replacing the last; the run's record is never touched."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("INSERT OR REPLACE INTO measurements (run_id, device, serving, environment, measured_at) "
                            "VALUES (?, ?, ?, ?, ?)", (run_id, device, json.dumps(serving, sort_keys=True),
                                                      json.dumps(environment, sort_keys=True), time.time()))
            self.db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def measurements(self, ids: list[str] | None = None) -> dict[str, dict[str, dict]]:
        """run id -> device -> the serving cost measured there by `harness measure` (with
        `measured_at`); empty for a store from before measurements were kept."""
        if not self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'measurements'").fetchone():
            return {}
        sql = "SELECT run_id, device, serving, measured_at FROM measurements"
        rows = self.db.execute(sql).fetchall() if ids is None else self._in(sql + " WHERE run_id IN ({})", ids)
        found: dict[str, dict[str, dict]] = {}
        for run_id, device, serving, when in rows:
            found.setdefault(run_id, {})[device] = json.loads(serving) | {"measured_at": when}
        return found

    def probabilities(self, run_id: str) -> list | None:
        """A run's per-example class probabilities; None where it kept none (not classification, or
        recorded before harness kept them)."""
        try:
            row = self.db.execute("SELECT probabilities FROM predictions WHERE run_id = ?", (run_id,)).fetchone()
        except sqlite3.OperationalError:  # an older store opened read-only: no such column
            return None
        return json.loads(row[0]) if row and row[0] else None

    def eval_sets(self, run_id: str) -> dict[str, dict]:
        """A run's more evaluation sets, {name: {predictions, references, probabilities, info}}; none
        where it had none (or the store is from before they were kept)."""
        exists = self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'eval_sets'").fetchone()
        rows = self.db.execute("SELECT name, predictions, refs, probabilities, info FROM eval_sets WHERE run_id = ? "
                               "ORDER BY rowid", (run_id,)).fetchall() if exists else []
        return {name: {"predictions": json.loads(p), "references": json.loads(r), "probabilities": json.loads(q)
                       if q else None, "info": json.loads(i)} for name, p, r, q, i in rows}

    def _select(self, columns: str, ids: list[str] | None) -> list[tuple]:
        if ids is None:
            return self.db.execute(f"SELECT {columns} FROM runs").fetchall()
        return self._in(f"SELECT {columns} FROM runs WHERE id IN ({{}})", ids)
