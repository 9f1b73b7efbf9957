"""Writing files: whole or not at all, and caches no more readable than what they copy.

Every file harness writes (caches, lock files, exports, reports) is written to a temporary file in
the same folder and renamed over its name, so a reader never sees half a file and a full disk or a
crash leaves the previous file (or none), never a truncated one. Harness's own cache folders are
private to the user (0700): a cache holds copies of data (a card's files, as Arrow tables) that may
have been readable only by that user.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from harness.base.errors import HarnessError


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (a temporary file beside it, flushed, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # what a plain open() would have given it
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_output(path: str | Path, content: str | bytes) -> Path:
    """write_text for what a command is asked to produce (a report, an export): a failure (a full
    disk, a read-only folder) is one line naming the file, and the previous file is left whole."""
    try:
        return write_bytes(path, content.encode("utf-8") if isinstance(content, str) else content)
    except OSError as exc:
        raise HarnessError(f"{path}: cannot write it ({exc.strerror or exc}); nothing there was changed") from None


def private_folder(path: str | Path) -> Path:
    """`path` as a folder only its owner can read (0700), made if absent."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):  # a folder of someone else's: left as it is
        if path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
            os.chmod(path, 0o700)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
