"""The store's schema: its tables, its version, and the migrations that bring an older store up to
it (harness.store.database applies them when it opens a store)."""

from __future__ import annotations

import json
import sqlite3

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
CREATE TABLE IF NOT EXISTS claims (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    heartbeat REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS predictions (
    run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    predictions TEXT NOT NULL,
    refs TEXT NOT NULL,
    probabilities TEXT
);
CREATE TABLE IF NOT EXISTS measurements (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    device TEXT NOT NULL,
    serving TEXT NOT NULL,
    environment TEXT NOT NULL,
    measured_at REAL NOT NULL,
    PRIMARY KEY (run_id, device)
);
CREATE TABLE IF NOT EXISTS eval_sets (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    predictions TEXT NOT NULL,
    refs TEXT NOT NULL,
    probabilities TEXT,
    info TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);
"""

# 4: measurements, a kept run's serving cost measured again on another machine (`harness measure`),
# one per (run, device), beside the record, which keeps what was measured where the run trained
# 5: predictions.probabilities, each example's class probabilities (calibration)
# 6: eval_sets, a run's predictions on its task's more evaluation sets (an extra split, a perturbed eval)
SCHEMA_VERSION = 6


def rekey(db: sqlite3.Connection) -> None:
    """Versions 2 and 3: a card's metrics left run ids (2: they are computed from the stored
    predictions at report time), and a local or packaged model folder's path left them (3: its
    content identifies it), so each record moves to the id the current code gives its spec, with its
    predictions and claims. Where two records now share an id (a cell run before and after a metric
    was added) the newer takes it and the older keeps its old one, unread; a record whose spec no
    longer parses keeps its id. Nothing is deleted."""
    from harness.config.spec import RunSpec  # above the store; imported only to migrate

    rows = db.execute("SELECT id, spec, finished_at FROM runs ORDER BY finished_at DESC").fetchall()
    taken = {old for old, _, _ in rows}
    moves, specs = {}, {}
    for old, spec, _ in rows:
        try:
            parsed = json.loads(spec)
            if "model_kind" not in parsed:  # written before version 3
                parsed["model_kind"] = model_kind(parsed)
                specs[old] = json.dumps(parsed, sort_keys=True)
            new = RunSpec.model_validate(parsed).id
        except Exception:  # written by a harness whose specs this one cannot read: left as it is
            continue
        if new != old and new not in taken:
            moves[old] = new
            taken.add(new)
    db.execute("PRAGMA defer_foreign_keys = ON")  # predictions follow their run inside the transaction
    for old, spec in specs.items():
        db.execute("UPDATE runs SET spec = ? WHERE id = ?", (spec, old))
    for old, new in moves.items():
        db.execute("UPDATE runs SET id = ? WHERE id = ?", (new, old))
        db.execute("UPDATE predictions SET run_id = ? WHERE run_id = ?", (new, old))
        db.execute("UPDATE claims SET id = ? WHERE id = ?", (new, old))


def model_kind(spec: dict) -> str:
    """What kind of backbone a spec written before version 3 named: its source says tiny and
    package; a hub model's fingerprint is the digest of its id and revision (backbones.resolve), so
    any other is a local folder's content."""
    from harness.run.backbones import hub_fingerprint

    model = spec.get("model_spec") or {}
    source = str(model.get("source", ""))
    if source.startswith(("tiny:", "package:")):
        return source.partition(":")[0]
    return "hub" if spec.get("model_fingerprint") == hub_fingerprint(source, model.get("revision")) else "local"


def probabilities_column(db: sqlite3.Connection) -> None:
    """Version 5: the predictions table keeps each example's class probabilities (absent before)."""
    if "probabilities" not in {row[1] for row in db.execute("PRAGMA table_info(predictions)")}:
        db.execute("ALTER TABLE predictions ADD COLUMN probabilities TEXT")


# The schema's version, and what brings a store from the version before each one up to it (SQL
# statements, or a function of the connection). Version 0 is a store written before versions were
# kept: its tables are version 1's.
MIGRATIONS: dict[int, list] = {1: [], 2: [rekey], 3: [rekey], 4: [],  # 4's table: SCHEMA, IF NOT EXISTS
                                5: [probabilities_column], 6: []}  # 6's table: SCHEMA, IF NOT EXISTS
