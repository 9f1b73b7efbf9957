"""Content digests: the short sha256 hex strings that name run ids, fingerprints and cache entries."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def text_digest(text: str | bytes | memoryview, length: int = 16) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()[:length]


def json_digest(value: Any, length: int = 16, compact: bool = False) -> str:
    """The digest of `value` as JSON with sorted keys (values JSON lacks as their str);
    `compact`: without spaces after separators (run ids are hashed so)."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":") if compact else None)
    return text_digest(text, length)
