"""Whether the Hugging Face Hub can be reached, found out once per process, and what of it is in
the local cache: preflight refuses, in one line, the cells whose models or datasets cannot be had,
instead of letting each of them retry the network (huggingface_hub waits and retries for minutes
on a machine without access).
"""

from __future__ import annotations

import os
import re
import socket
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
UNREACHABLE_EXIT = 3  # exit code of the commands that need the hub (lock, check-catalogue) without it
TIMEOUT = 3.0  # seconds to wait for the hub's host before calling it unreachable
COMMIT = re.compile(r"[0-9a-f]{40}")


@lru_cache(maxsize=1)
def unreachable() -> str | None:
    """Why the hub cannot be reached (an offline variable is set, or its host does not answer
    within TIMEOUT), or None. When it cannot, the hub libraries are switched to offline mode for
    the rest of this process, so that nothing retries."""
    for name in OFFLINE_VARIABLES:
        if os.environ.get(name, "").upper() in ("1", "TRUE", "YES", "ON"):
            return f"{name} is set"
    import huggingface_hub.constants as constants

    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=TIMEOUT).close()
        return None
    except OSError as exc:
        reason = f"{host} does not answer ({exc.strerror or type(exc).__name__})"
    _go_offline()
    return reason


def _go_offline() -> None:
    os.environ.update({name: "1" for name in OFFLINE_VARIABLES})
    import huggingface_hub.constants as constants

    constants.HF_HUB_OFFLINE = True
    try:
        import datasets.config

        datasets.config.HF_HUB_OFFLINE = True
    except ImportError:  # pragma: no cover - datasets is a dependency
        pass


def hub_cache_folder() -> Path:
    """Hugging Face's own cache (HF_HUB_CACHE), which harness reads and never writes to itself."""
    import huggingface_hub.constants as constants

    return Path(constants.HF_HUB_CACHE)


def cached(repo_id: str, revision: str | None, kind: str, filename: str | None = None) -> bool:
    """Whether the local hub cache holds `repo_id` (at `revision`, else its cached main): a model's
    config.json (or `filename`), or any snapshot of a dataset repository."""
    from huggingface_hub import try_to_load_from_cache

    if kind == "model":
        found = try_to_load_from_cache(repo_id, filename or "config.json", cache_dir=hub_cache_folder(),
                                       revision=revision, repo_type="model")
        return isinstance(found, str)
    repo = hub_cache_folder() / f"datasets--{repo_id.replace('/', '--')}"
    folder = repo / "snapshots"
    if revision is not None:  # a commit, or a branch (refs/convert/parquet) whose ref file names one
        ref = repo / "refs" / revision
        return (folder / (ref.read_text().strip() if ref.is_file() else revision)).is_dir()
    return folder.is_dir() and any(folder.iterdir())


def refusal(what: str, repo_id: str, revision: str | None, kind: str, filename: str | None = None) -> str | None:
    """Why `what` (e.g. "model 'roberta'") cannot be had: the hub is unreachable and it is not
    cached; None when it can."""
    reason = unreachable()
    if reason is None or cached(repo_id, revision, kind, filename):
        return None
    at = f" at revision {revision}" if revision else ""
    return (f"{what}: the Hugging Face Hub cannot be reached ({reason}) and {kind} {repo_id!r}{at} is not in "
            f"the local cache ({hub_cache_folder()})")


def is_commit(revision: str | None) -> bool:
    """Whether a revision is a full commit hash (not a branch or tag)."""
    return bool(revision and COMMIT.fullmatch(revision))


def cached_commit(repo_id: str, revision: str | None, kind: str) -> str | None:
    """The commit the local hub cache holds for `revision` (a commit is itself; a branch is what its
    ref file in the cache names: what the last download resolved it to), or None."""
    if is_commit(revision):
        return revision
    ref = hub_cache_folder() / f"{kind}s--{repo_id.replace('/', '--')}" / "refs" / (revision or "main")
    return ref.read_text().strip() if ref.is_file() else None


def commits_used(backbone, card) -> dict[str, str]:
    """For a run's record: the commit of each hub source it read (its model, its dataset), as the
    cache resolved them when they were loaded; sources not from the hub are left out."""
    used = {}
    if backbone.kind == "hub" and (commit := cached_commit(backbone.location, backbone.spec.revision, "model")):
        used["model"] = commit
    if card.source.hub and (commit := cached_commit(card.source.hub, card.source.revision, "dataset")):
        used["dataset"] = commit
    return used
