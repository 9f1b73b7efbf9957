"""Suite lock files, like a package lock: `harness lock SUITE` resolves each hub model and hub
dataset the suite names without a commit (no revision, or a branch such as main or
refs/convert/parquet) to the commit it points at now, and writes them to <suite>.lock.yaml beside
the suite. Loading the suite applies the lock: later runs read the same commits, and their run
ids (which hash a source's revision) say which. Delete the file, or lock again, to move on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from harness.base.errors import ConfigError
from harness.base.files import write_output
from harness.config.card import TaskCard
from harness.config.schemas import ModelSpec, Suite
from harness.config.yamlfile import read_yaml
from harness.hub.reach import is_commit

HEADER = ("Written by `harness lock`: the commit each hub model and dataset of the suite resolved to.\n"
          "The suite reads these commits while this file exists; run `harness lock` again to move them.")


def lock_path(suite_path: Path) -> Path:
    return Path(suite_path).with_name(Path(suite_path).stem + ".lock.yaml")


def unpinned(models: dict[str, tuple[str, ModelSpec]], cards: dict[str, TaskCard]) -> list[tuple[str, str, str]]:
    """(kind, repository, revision asked for) of every hub model (alias -> (backbone kind, spec))
    and hub dataset not pinned to a commit."""
    wanted = [("model", spec.source, spec.revision or "main") for kind, spec in models.values()
              if kind == "hub" and not is_commit(spec.revision)]
    wanted += [("dataset", c.source.hub, c.source.revision or "main") for c in cards.values()
               if c.source.hub and not is_commit(c.source.revision)]
    return sorted(set(wanted))


def resolve_commit(kind: str, repo: str, revision: str) -> str:
    """The commit `revision` of hub repository `repo` points at now (one hub API call)."""
    from huggingface_hub import HfApi

    api = HfApi()
    info = api.model_info(repo, revision=revision) if kind == "model" else api.dataset_info(repo, revision=revision)
    return info.sha


def write_lock(path: Path, wanted: list[tuple[str, str, str]],
               resolve: Callable[[str, str, str], str] | None = None) -> dict[tuple[str, str, str], str]:
    """Resolve `wanted` (with resolve_commit unless told otherwise) and write the lock file; returns
    what it holds."""
    commits = {entry: (resolve or resolve_commit)(*entry) for entry in wanted}
    rows = {"models": [], "datasets": []}
    for (kind, repo, revision), commit in commits.items():
        rows[f"{kind}s"].append({"repo": repo, "revision": revision, "commit": commit})
    comment = "".join(f"# {line}\n" for line in HEADER.splitlines())
    write_output(path, comment + yaml.safe_dump(rows, sort_keys=False, width=120))
    return commits


def read_lock(path: Path) -> dict[tuple[str, str, str], str]:
    """(kind, repository, revision) -> commit; empty when there is no lock file."""
    if not path.exists():
        return {}
    data = read_yaml(path) or {}
    found = {}
    for kind in ("model", "dataset"):
        for i, row in enumerate(data.get(f"{kind}s") or []):
            if not isinstance(row, dict) or not is_commit(str(row.get("commit", ""))) or not row.get("repo"):
                raise ConfigError(f"{path}: {kind}s.{i}: needs repo, revision and a 40-hex commit; "
                                  "run `harness lock` again")
            found[(kind, row["repo"], row.get("revision") or "main")] = row["commit"]
    return found


def apply_lock(suite: Suite, kinds: dict[str, str], cards: dict[str, TaskCard],
               locked: dict[tuple[str, str, str], str]) -> tuple[Suite, dict[str, TaskCard]]:
    """The suite's hub models (alias -> backbone kind in `kinds`) and cards with the lock's commits."""
    if not locked:
        return suite, cards
    models = dict(suite.models)
    for alias, spec in suite.models.items():
        commit = locked.get(("model", spec.source, spec.revision or "main"))
        if kinds.get(alias) == "hub" and commit and not is_commit(spec.revision):
            models[alias] = spec.model_copy(update={"revision": commit})
    out = {}
    for name, card in cards.items():
        source = card.source
        commit = locked.get(("dataset", source.hub, source.revision or "main")) if source.hub else None
        if commit and not is_commit(source.revision):
            card = card.model_copy(update={"source": source.model_copy(update={"revision": commit})})
        out[name] = card
    return suite.model_copy(update={"models": models}), out
