"""Which eval examples of a task overlap its training rows: a shared 13-gram, as lm-eval's
decontamination counts it (GPT-3's paper, appendix C), or for a text shorter than 13 words the
whole normalised text.

Texts are normalised before they are compared: lower case, every character that is neither a
letter, a digit nor white space made a space, then split into words. An eval text of 13 words or
more overlaps when any 13 consecutive words of it are 13 consecutive words of a training text; a
shorter one (a sentiment phrase, a question) when its words are exactly a training text's words.
A row's text is its task type's input (harness.tasks.types.TaskType.row_texts): the card's input
columns, a translation's source.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

N = 13  # words in the n-grams compared (lm-eval's decontamination, GPT-3 appendix C)
_NOT_WORD = re.compile(r"[^\w\s]|_")


def words(text: str) -> tuple[str, ...]:
    """A text's words after normalisation (lower case; punctuation and symbols are spaces)."""
    return tuple(_NOT_WORD.sub(" ", text.lower()).split())


def grams(text: tuple[str, ...], n: int = N) -> set[tuple[str, ...]]:
    return {text[i:i + n] for i in range(len(text) - n + 1)}


@dataclass
class Overlap:
    """A task's eval examples that overlap its training rows: eval position -> the first training
    position it overlaps, out of `rows` eval examples."""

    rows: int
    found: dict[int, int] = field(default_factory=dict)

    @property
    def share(self) -> float:
        return len(self.found) / self.rows if self.rows else 0.0


def overlap(train: Sequence[str], evaluation: Sequence[str], n: int = N) -> Overlap:
    """The eval texts that share an n-gram (or, under n words, their whole text) with a train text."""
    first_gram: dict[tuple[str, ...], int] = {}
    first_text: dict[tuple[str, ...], int] = {}
    for i, text in enumerate(train):
        said = words(text)
        first_text.setdefault(said, i)
        for gram in grams(said, n):
            first_gram.setdefault(gram, i)
    found = {}
    for j, text in enumerate(evaluation):
        said = words(text)
        if not said:
            continue
        hit = first_text.get(said)  # the whole text repeated: that row, whatever its length
        if hit is None and len(said) >= n:
            hit = min((first_gram[g] for g in grams(said, n) if g in first_gram), default=None)
        if hit is not None:
            found[j] = hit
    return Overlap(len(evaluation), found)


def task_overlap(card) -> Overlap:
    """The overlap of a task card's eval split with its train split (as the cells read them)."""
    from harness.config.registry import task_type_of
    from harness.tasks.data import load_splits

    task_type, data = task_type_of(card), load_splits(card)
    return overlap(task_type.row_texts(data.train), task_type.row_texts(data.eval))
