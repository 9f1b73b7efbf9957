"""Checks task cards against their hub sources: the splits, columns and label names `datasets`
resolves for a card's source (`load_dataset_builder`, then the data files' parquet schema, read
from the file footers, not the rows) must be what the card declares, so that a run on the hub
reads what a run on a local copy of the original files reads.

`mirror` checks the same cards against local folders laid out as the hub lays out a dataset
repository (`<mirror>/<owner>/<name>/`, checked out at the card's revision): the offline tests use
it, and so can a cluster that keeps a copy of its datasets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.base.errors import first_line
from harness.config.card import TaskCard


@dataclass
class Check:
    """What was found for one card: its source as resolved, and each mismatch in one line."""

    card: TaskCard
    source: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def source_text(card: TaskCard) -> str:
    """'nyu-mll/glue @ <commit>', 'abisee/cnn_dailymail (3.0.0) @ unpinned main'."""
    source = card.source
    text = source.hub + (f" ({source.config})" if source.config else "")
    return text + (f" @ {source.revision}" if source.revision else " @ unpinned main")


def check_card(card: TaskCard, mirror: Path | None = None) -> Check:
    """Resolve `card`'s hub source and compare it with the card."""
    import datasets

    source = card.source
    check = Check(card, source_text(card))
    path = str(Path(mirror) / source.hub) if mirror else source.hub
    if source.data_files:
        try:
            unmatched = _unmatched(source, mirror)
        except Exception as exc:  # the repository or revision itself cannot be read
            check.problems.append(f"cannot resolve {check.source}: {first_line(exc)}")
            return check
        check.problems += [f"data_files.{split}: {pattern!r} matches no file in {check.source}"
                           for split, pattern in unmatched]
        if unmatched:
            return check
    try:
        builder = datasets.load_dataset_builder(path, source.config, revision=None if mirror else source.revision,
                                                data_files=source.data_files)
    except Exception as exc:  # the hub and datasets raise many types; the line says which and why
        check.problems.append(f"cannot resolve {check.source}: {first_line(exc)}")
        return check
    splits = _splits(builder)
    for role in ("train", "eval", "dev"):
        name = getattr(card.splits, role)
        if name is not None and splits and name not in splits:
            check.problems.append(f"splits.{role}: {name!r} is not a split of the source (it has {', '.join(splits)})")
    features = builder.info.features or _schema_features(builder)
    if features is None:
        check.notes.append("the source declares no features and its files are not parquet: columns not checked")
        return check
    wanted = [("inputs", c) for c in card.inputs] + [("label", card.label)]
    wanted += [("splits.group", card.splits.group)] if card.splits.group else []
    for key, column in wanted:
        if column not in features:
            check.problems.append(f"{key}: no column {column!r} in the source (it has {', '.join(features)})")
    if card.label in features:
        check.problems += _label_problems(card, features[card.label])
    return check


def _unmatched(source, mirror: Path | None) -> list[tuple[str, str]]:
    """(split, pattern) of each data_files pattern that matches no file of the repository at the
    revision (on the hub: HfFileSystem's glob, one listing call; in a mirror: the folder)."""
    from urllib.parse import quote

    out = []
    for split, patterns in source.data_files.items():
        for pattern in [patterns] if isinstance(patterns, str) else patterns:
            if mirror:
                if not (Path(mirror) / source.hub).is_dir():
                    raise FileNotFoundError(f"no folder {Path(mirror) / source.hub}")
                found = list((Path(mirror) / source.hub).glob(pattern))
            else:
                from huggingface_hub import HfFileSystem

                revision = f"@{quote(source.revision, safe='')}" if source.revision else ""
                found = HfFileSystem().glob(f"datasets/{source.hub}{revision}/{pattern}")
            if not found:
                out.append((split, pattern))
    return out


def _splits(builder) -> list[str]:
    if builder.info.splits:
        return list(builder.info.splits)
    return list(builder.config.data_files or {})


def _schema_features(builder):
    """The features written in the first data file's parquet schema (the hub's parquet files carry
    them, ClassLabel names included), or None when the files are not parquet."""
    import datasets
    import pyarrow.parquet as pq
    from datasets.utils.file_utils import xopen

    files = [f for split in (builder.config.data_files or {}).values() for f in split]
    if not files or not str(files[0]).endswith(".parquet"):
        return None
    with xopen(str(files[0]), "rb") as stream:
        return datasets.Features.from_arrow_schema(pq.read_schema(stream))


def _label_problems(card: TaskCard, feature) -> list[str]:
    import datasets

    inner = getattr(feature, "feature", None)
    if isinstance(feature, list) and feature:
        inner = feature[0]
    names = feature.names if isinstance(feature, datasets.ClassLabel) else (
        inner.names if isinstance(inner, datasets.ClassLabel) else None)
    problems = []
    if names is not None and card.labels is not None and list(card.labels) != list(names):
        problems.append(f"labels: the card has {card.labels}, the source {names} (order matters: ids are positions)")
    if isinstance(feature, datasets.Translation):
        for key in ("source_lang", "target_lang"):
            lang = card.options.get(key)
            if lang is not None and lang not in feature.languages:
                problems.append(f"options.{key}: {lang!r} is not a language of the source ({', '.join(feature.languages)})")
    return problems


def hub_cards(cards: list[TaskCard]) -> list[TaskCard]:
    return [c for c in cards if c.source.hub]
