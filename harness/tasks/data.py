"""Data sources (hub, local files, generated tasks), splits, and the data fingerprint of a task.

Hub datasets and local files go through the same `datasets.load_dataset` call, so a card that
works on a local copy works on the hub by changing only its `source`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from harness.base.digest import cache_folder, file_digest, json_digest
from harness.base.errors import ConfigError, DataError, did_you_mean, first_line
from harness.base.files import private_folder
from harness.config.card import TaskCard
from harness.config.registry import GENERATORS

ROW = "__row__"  # column holding each row's index in its source split
GENERATOR_VERSION = 1  # bump when a generator's output changes, so run ids change with it

_BUILDERS = {"csv": "csv", "tsv": "csv", "json": "json", "jsonl": "json", "parquet": "parquet"}
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet",
               ".conll": "conll"}


@dataclass(frozen=True)
class TaskData:
    """The rows a cell trains on, selects on (dev) and is scored on (eval), with the source split each
    came from. The three never share a row."""

    train: datasets.Dataset
    dev: datasets.Dataset
    eval: datasets.Dataset
    train_source: str
    dev_source: str  # e.g. 'train (carved dev)'
    eval_source: str  # e.g. 'validation', or 'train (carved)'
    extra: dict[str, datasets.Dataset] = field(default_factory=dict)  # the card's more evaluation sets (splits.extra)


def load_splits(card: TaskCard) -> TaskData:
    """Train, dev and eval rows for a task: eval is carved from train when the card has none, then
    dev from what is left of train when the card names none (seeded by the card, stratified by
    label where labels are single values, whole groups with `splits.group`): the same for every
    cell of the task, so that comparisons stay paired."""
    key = card.model_dump_json() + str(card.path)
    if key not in _CACHE:
        if len(_CACHE) >= 16:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _load_splits(card)
    return _CACHE[key]


_CACHE: dict[str, TaskData] = {}  # cells of one process share their tasks' data


def _load_splits(card: TaskCard) -> TaskData:
    raw = _load_source(card)
    # Errors name a row by its position in the source split, which shuffling and carving would lose.
    raw = datasets.DatasetDict({name: split.add_column(ROW, list(range(len(split)))) for name, split in raw.items()})
    where = _where(card)
    splits = card.splits
    for role in ("train", "eval", "dev"):
        name = getattr(splits, role)
        if name is not None and name not in raw and not (role == "eval" and name == "validation" and len(raw) == 1):
            raise DataError(f"{where}: no split {name!r} for {role}{did_you_mean(name, raw)}")
    for name in splits.extra:
        if name not in raw:
            raise DataError(f"{where}: no split {name!r} for splits.extra{did_you_mean(name, raw)}")
    extra = {name: raw[name] for name in splits.extra}
    train, train_source = raw[splits.train], splits.train
    if splits.eval is None or splits.eval not in raw:
        train, evaluation = _carve(card, train, splits.validation_fraction, card.source.seed, where, "eval")
        eval_source = f"{splits.train} (carved{f' by {splits.group}' if splits.group else ''})"
    else:
        evaluation, eval_source = raw[splits.eval], splits.eval
    if splits.dev is not None:
        return TaskData(train, raw[splits.dev], evaluation, train_source, splits.dev, eval_source, extra)
    train, dev = _carve(card, train, splits.dev_fraction, card.source.seed + 1, where, "dev")
    return TaskData(train, dev, evaluation, train_source, f"{splits.train} (carved dev)", eval_source, extra)


CARVE_VERSION = 2  # bump when carving picks other rows; in the fingerprint of every card that carves
MIN_ROWS = 2  # a carved eval or dev, and the train left after carving, keep at least this many rows


def _carve(card: TaskCard, split: datasets.Dataset, fraction: float, seed: int, where: str, role: str):
    """(kept, held out): a seeded `fraction` of `split`, whole groups with `splits.group`, else
    stratified by the label column where it holds one value per row and the card lists labels.
    Both keep the source order (`max_train_samples` takes the first rows of the file). Either part
    under MIN_ROWS is a DataError naming the task and the split."""
    if card.splits.group:
        kept, held = _carve_groups(split, card.splits.group, fraction, seed, where)
    else:
        label = card.label
        single = card.labels and label in split.column_names and len(split) and not isinstance(split[0][label], list)
        values = [str(v) for v in split[label]] if single else [""] * len(split)
        kept, held = _stratified(split, values, fraction, seed)
    for part, rows in ((role, len(held)), (f"train (after carving {role})", len(kept))):
        if rows < MIN_ROWS:
            raise DataError(f"{where}: carving {role} ({fraction:g} of the {len(split)} rows of split "
                            f"{card.splits.train!r}) leaves {part} with {rows} row(s), under the minimum of {MIN_ROWS}: "
                            f"add rows, change splits.{'validation' if role == 'eval' else 'dev'}_fraction, or name "
                            f"a split for {role} (splits.{role})")
    return kept, held


def _stratified(split: datasets.Dataset, values: list[str], fraction: float, seed: int):
    """Hold out `fraction` of each value's rows (seeded, rounded), keeping the source order. Values
    too rare for that (no row held, or none kept) are pooled and `fraction` of the pool is held, so
    that rare labels are as common in the held-out part as in the data, and no row is forced out."""
    rng = random.Random(seed)
    by_value: dict[str, list[int]] = {}
    for i, v in enumerate(values):
        by_value.setdefault(v, []).append(i)
    held: list[int] = []
    rare: list[int] = []
    for value in sorted(by_value):
        rows = by_value[value]
        rng.shuffle(rows)
        take = round(fraction * len(rows))
        if 1 <= take < len(rows):
            held += rows[:take]
        else:
            rare += rows
    if rare:
        rare.sort()
        rng.shuffle(rare)
        held += rare[: round(fraction * len(rare))]
    out = set(held)
    return split.select([i for i in range(len(split)) if i not in out]), split.select(sorted(out))


def _carve_groups(split: datasets.Dataset, column: str, fraction: float, seed: int, where: str):
    """Hold out a seeded `fraction` of the groups (at least one), whole."""
    if column not in split.column_names:
        raise DataError(f"{where}: splits.group: no column {column!r}{did_you_mean(column, split.column_names)}")
    values = split[column]
    groups = sorted(set(values), key=str)
    if len(groups) < 2:
        raise DataError(f"{where}: splits.group: {column!r} has {len(groups)} group; two are needed to carve")
    random.Random(seed).shuffle(groups)
    held = set(groups[: max(1, round(fraction * len(groups)))])
    keep = [i for i, v in enumerate(values) if v not in held]
    out = [i for i, v in enumerate(values) if v in held]
    return split.select(keep), split.select(out)


def _load_source(card: TaskCard) -> datasets.DatasetDict:
    source = card.source
    if source.generate:
        rows = GENERATORS.get(source.generate)(source.seed, **source.options)
        return datasets.DatasetDict({split: datasets.Dataset.from_list(r) for split, r in rows.items()})
    if source.files:
        return _load_files(card)
    try:
        return datasets.load_dataset(source.hub, source.config, revision=source.revision, data_files=source.data_files)
    except Exception as exc:  # the hub raises many types; the user needs the dataset id and why
        raise DataError(f"{_where(card)}: cannot load hub dataset {source.hub!r}: {first_line(exc)}") from exc


def _load_files(card: TaskCard) -> datasets.DatasetDict:
    source = card.source
    paths = {split: data_file(card, split, card.resolve(p)) for split, p in source.files.items()}
    fmt = source.format or _format_of(card, next(iter(paths.values())))
    if fmt in _READERS:  # layouts no datasets builder reads: parsed here into the hub dataset's columns
        rows = {}
        for split, path in paths.items():
            try:
                rows[split] = datasets.Dataset.from_list(_READERS[fmt](path))
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(f"{_where(card)}: source.files.{split}: {path.name}: {first_line(exc)}") from None
        return datasets.DatasetDict(rows)
    kwargs: dict = {}
    if fmt in ("csv", "tsv"):
        kwargs = {"encoding": "utf-8-sig"}  # GLUE files start with a byte-order mark
        if fmt == "tsv":
            kwargs |= {"delimiter": "\t", "quoting": 3}  # GLUE tsv is unquoted: quotes are text
    try:
        # cached as Arrow in harness's own private folder: a copy no more readable than a private source
        return datasets.load_dataset(
            _BUILDERS[fmt], data_files={s: str(p) for s, p in paths.items()},
            cache_dir=str(private_folder(cache_folder() / "datasets")), **kwargs
        )
    except Exception as exc:
        raise DataError(f"{_where(card)}: cannot read {fmt} files: {first_line(exc)}") from exc


def read_conll(path: Path) -> list[dict]:
    """CoNLL columns, one token per line and a blank line after each sentence; -DOCSTART- lines
    are skipped. The first column is `tokens` and the last `ner_tags`; with four columns the middle
    ones are `pos_tags` and `chunk_tags` (CoNLL-2003, as the hub's conll2003 names them)."""
    rows: list[dict] = []
    sentence: list[list[str]] = []
    width = None

    def close() -> None:
        if sentence:
            names = ["tokens", "pos_tags", "chunk_tags", "ner_tags"] if width == 4 else \
                ["tokens", *[f"column_{i}" for i in range(1, width - 1)], "ner_tags"]
            rows.append({name: [fields[i] for fields in sentence] for i, name in enumerate(names)})
            sentence.clear()

    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields or fields[0] == "-DOCSTART-":
                close()
            else:
                if width is None:
                    width = len(fields)
                if len(fields) != width or width < 2:
                    raise ValueError(f"line {number}: expected {width} columns, got {len(fields)}: {line.strip()!r}")
                sentence.append(fields)
    close()
    return rows


def read_squad(path: Path) -> list[dict]:
    """The official SQuAD JSON layout ({"data": [articles]}) as the hub's squad columns: id, title,
    context, question, answers {text, answer_start}. SQuAD 2.0's unanswerable questions have no
    answers (their plausible answers are not answers)."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    rows = []
    for article in data:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = [] if qa.get("is_impossible") else qa["answers"]
                rows.append({"id": str(qa["id"]), "title": article.get("title", ""), "context": paragraph["context"],
                             "question": qa["question"],
                             "answers": {"text": [a["text"] for a in answers],
                                         "answer_start": [int(a["answer_start"]) for a in answers]}})
    return rows


_READERS = {"conll": read_conll, "squad": read_squad}


def _format_of(card: TaskCard, path: Path) -> str:
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"{_where(card)}: source.format: cannot tell the format of {path.name}; set it")
    return fmt


def fingerprint(card: TaskCard) -> str:
    """What identifies the data a task sees: changes whenever its rows can change."""
    source = card.source
    if source.generate:
        basis = {"generate": source.generate, "options": source.options, "seed": source.seed, "v": GENERATOR_VERSION}
    elif source.files:
        digests = {}
        for split, p in sorted(source.files.items()):
            path = card.resolve(p)
            # the content's sha256 (its first 16 hex digits), cached by path, size and mtime
            digests[split] = file_digest(data_file(card, split, path))[:16] if path.exists() else "missing"
        basis = {"files": digests}
    else:
        basis = {"hub": source.hub, "config": source.config, "revision": source.revision or "unpinned"}
        if source.data_files:
            basis["data_files"] = source.data_files
    basis["splits"] = card.splits.model_dump(exclude=set() if card.splits.extra else {"extra"})
    if card.splits.eval is None or card.splits.dev is None:  # a split is carved, or may be
        basis["carve"] = CARVE_VERSION
    return json_digest(basis)


def data_file(card: TaskCard, split: str, path: Path) -> Path:
    """`path` if it is a regular file; a folder, a device (/dev/zero would be read for ever), a pipe
    or a missing file is a one-line DataError naming the card and the key."""
    if not path.exists():
        raise DataError(f"{_where(card)}: source.files.{split}: no such file {path}")
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file (a device, pipe or socket)"
        raise DataError(f"{_where(card)}: source.files.{split}: {path} is {kind}; name a data file")
    return path


def _where(card: TaskCard) -> str:
    return f"task {card.name!r} ({card.path})" if card.path else f"task {card.name!r}"


