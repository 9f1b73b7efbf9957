"""Opening a store file: what it holds, found without writing anything, and a connection that
cannot write. Every look at the file goes through SQLite: POSIX locks belong to the process, so
closing any other handle on the file (an open() to read its header) would drop the locks this
process's connections hold on it, and another process could then checkpoint and delete the WAL
under them, hiding every later write (measured: a second Store opened in the running process, then
`harness leaderboard` from another terminal, and the run's next records were invisible to it)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from harness.base.errors import HarnessError


class StoreError(HarnessError):
    """A store that cannot be opened or written: one line, and the store as it was."""


def existing_parent(path: Path) -> Path:
    for parent in path.absolute().parents:
        if parent.exists():
            return parent
    return Path("/")


def check_file(path: Path, readonly: bool, newest: int) -> int:
    """The schema version of the store at `path` (0 if there is none yet), read without writing
    anything; a path that is not a harness store, or one newer than `newest`, is a one-line StoreError."""
    if not path.exists():
        if readonly:
            raise StoreError(f"{path}: no such store")
        return 0
    if not path.is_file():
        raise StoreError(f"{path}: is {'a folder' if path.is_dir() else 'not a regular file'}, "
                         f"not a store; give a .sqlite file with --store")
    if not os.access(path, os.R_OK):
        raise StoreError(f"{path}: cannot be read (permission denied)")
    if not path.stat().st_size:
        return 0  # an empty file: SQLite makes it a database
    if not is_database(path):
        raise StoreError(f"{path}: is not a harness store (not an SQLite database); give another --store")
    found = peek_version(path)
    if found > newest:
        raise StoreError(f"{path}: this store was written by a newer harness (store schema {found}; this "
                         f"harness reads up to {newest}); upgrade harness, or use another --store")
    return found


def is_database(path: Path) -> bool:
    """Whether SQLite reads the file as a database."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
        try:
            db.execute("PRAGMA schema_version").fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        return "not a database" not in str(exc)
    return True


def peek_version(path: Path) -> int:
    try:
        db = connect_readonly(path, None)
    except StoreError:
        return 0  # unreadable without writing (a hot journal): opening it for writing will say
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


def connect_readonly(path: Path, found: int | None, newest: int = 0) -> sqlite3.Connection:
    """A connection that cannot write: `mode=ro`, or, where SQLite cannot even make its shared
    memory file (a read-only folder), `immutable=1`; a store older than `newest` is refused (it
    cannot be migrated without writing)."""
    uri = path.resolve().as_uri()
    for flags in ("mode=ro", "immutable=1"):
        try:
            db = sqlite3.connect(f"{uri}?{flags}", uri=True, isolation_level=None)
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError:
            continue
        if found is not None and found < newest and "runs" in tables:
            db.close()
            raise StoreError(f"{path}: store schema {found} is older than this harness's ({newest}) "
                             f"and cannot be upgraded where it cannot be written; open it once with write access")
        if found is not None and "runs" not in tables:
            db.close()
            raise StoreError(f"{path}: holds no harness runs")
        return db
    raise StoreError(f"{path}: cannot be opened for reading")
