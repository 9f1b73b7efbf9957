"""Content digests: the short sha256 hex strings that name run ids, fingerprints and cache entries."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from harness.base.files import private_folder, write_text

# Digests of files already read, by resolved path, size and modification time, so that a large
# checkpoint is hashed once and not at every run; HARNESS_CACHE moves it (default ~/.cache/harness).
FILE_DIGESTS = "file-digests.json"


def text_digest(text: str | bytes | memoryview, length: int = 16) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()[:length]


RUN_REFERENCE = re.compile(r"run:[0-9a-f]{16}")  # a run id as a suite names it: 'run:' and 16 hex digits


def bad_run_reference(value: object) -> str | None:
    """Why `value`, a string starting 'run:', is not a run reference (it names a folder under the
    store's runs: nothing else may reach the file system through it), or None."""
    if isinstance(value, str) and value.startswith("run:") and not RUN_REFERENCE.fullmatch(value):
        return f"{value!r} is not a run reference: 'run:' and the 16 hex digits of a run id"
    return None


def json_digest(value: Any, length: int = 16, compact: bool = False) -> str:
    """The digest of `value` as JSON with sorted keys (values JSON lacks as their str);
    `compact`: without spaces after separators (run ids are hashed so)."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":") if compact else None)
    return text_digest(text, length)


def cache_folder() -> Path:
    """harness's own cache (HARNESS_CACHE): file digests, generated and downloaded datasets."""
    return Path(os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "harness")


def file_digest(path: Path) -> str:
    """The full sha256 of a file's content, from the cache when its path, size and mtime are unchanged."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    cache = cache_folder() / FILE_DIGESTS
    try:
        known = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if key in known:
        return known[key]
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    known[key] = digest.hexdigest()
    try:  # written whole (rename), so a reader in another process never sees half a file
        write_text(private_folder(cache.parent) / cache.name, json.dumps(known))
    except OSError:
        pass  # a read-only home: the digest is still right, only not kept
    return known[key]
