"""Seeded perturbations of evaluation text, as HELM's robustness perturbations: typos, case and
contractions. Each changes at most the share of its sites that it is given, over the whole set
(floor(share x sites) sites, drawn with the seed: the same text every time), and touches only the
input columns a task type names (TaskType.perturbed_columns): a label never changes.

- typos: a site is a word with a letter; one of its letters becomes a neighbour on a QWERTY
  keyboard (HELM's butter-finger typo), keeping its case;
- case: a site is a word with a letter; its case is swapped (lower to upper and back);
- contractions: a site is a phrase that contracts ("do not", "it is") or a contraction that
  expands ("don't"); it becomes the other form, keeping the first letter's case. Token lists (a
  token task's words) have no such site: a contraction would change how many tokens carry labels.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

import datasets

# letters next to each other on a QWERTY keyboard
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours() -> dict[str, str]:
    where = {c: (r, j) for r, row in enumerate(_ROWS) for j, c in enumerate(row)}
    return {c: "".join(d for d, (r2, j2) in where.items() if d != c and abs(r2 - r) <= 1 and abs(j2 - j) <= 1)
            for c, (r, j) in where.items()}


NEIGHBOURS = _neighbours()
CONTRACTIONS = {"do not": "don't", "does not": "doesn't", "did not": "didn't", "is not": "isn't", "are not": "aren't",
                "was not": "wasn't", "were not": "weren't", "can not": "can't", "cannot": "can't", "will not": "won't",
                "would not": "wouldn't", "should not": "shouldn't", "could not": "couldn't", "have not": "haven't",
                "has not": "hasn't", "had not": "hadn't", "it is": "it's", "that is": "that's", "there is": "there's",
                "i am": "i'm", "you are": "you're", "we are": "we're", "they are": "they're", "i have": "i've",
                "you have": "you've", "i will": "i'll", "you will": "you'll", "let us": "let's", "what is": "what's"}
EXPANSIONS = {short: long for long, short in CONTRACTIONS.items() if long != "cannot"}
PERTURB_VERSION = 2  # bump when a perturbation changes other text: it is hashed into the run ids


def _spaced(short: str) -> str:
    """A contraction's pattern, also as tokenized text writes it (SST-2's 'does n't', 'it 's', 'ca n't')."""
    cut = len(short) - 3 if short.endswith("n't") else short.index("'")
    return re.escape(short[:cut]) + " ?" + re.escape(short[cut:])


_PHRASE = re.compile(r"\b(" + "|".join(sorted([*map(re.escape, CONTRACTIONS), *map(_spaced, EXPANSIONS)], key=len,
                                              reverse=True)) + r")(?!\w)", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
PERTURBATIONS = ("typos", "case", "contractions")


def _typo(word: str, rng: random.Random) -> str:
    letters = [i for i, c in enumerate(word) if c.lower() in NEIGHBOURS]
    if not letters:
        return word
    i = rng.choice(letters)
    new = rng.choice(NEIGHBOURS[word[i].lower()])
    return word[:i] + (new.upper() if word[i].isupper() else new) + word[i + 1:]


def _other_form(phrase: str, rng: random.Random) -> str:
    lower = re.sub(r" (?=n't|')", "", phrase.lower())  # a tokenized contraction: 'does n't' is "doesn't"
    new = CONTRACTIONS.get(lower) or EXPANSIONS[lower]
    return new[0].upper() + new[1:] if phrase[0].isupper() else new


CHANGES: dict[str, Callable[[str, random.Random], str]] = {
    "typos": _typo, "case": lambda word, rng: word.swapcase(), "contractions": _other_form}


def sites(text: str, kind: str) -> list[tuple[int, int]]:
    """Where `kind` can change `text`: (start, end) of each word or phrase."""
    pattern = _PHRASE if kind == "contractions" else _WORD
    return [m.span() for m in pattern.finditer(text)]


def perturb_texts(values: list, kind: str, share: float, seed: int) -> tuple[list, list[int]]:
    """`values` (texts, or lists of words) with floor(share x sites) of their sites changed, drawn
    with `seed`; and how many sites changed in each value."""
    if kind not in CHANGES:
        raise ValueError(f"unknown perturbation {kind!r}")
    words = [isinstance(v, (list, tuple)) for v in values]
    found = []  # (value, word or None, start, end)
    for i, value in enumerate(values):
        if words[i]:
            if kind != "contractions":
                found += [(i, j, s, e) for j, w in enumerate(value) for s, e in sites(str(w), kind)[:1]]
        elif isinstance(value, str):
            found += [(i, None, s, e) for s, e in sites(value, kind)]
    rng = random.Random(f"{kind}:{seed}")
    chosen = sorted(rng.sample(range(len(found)), int(share * len(found) + 1e-9)), reverse=True)  # right to left
    out = [list(v) if words[i] else v for i, v in enumerate(values)]
    changed = [0] * len(values)
    for k in chosen:
        i, j, start, end = found[k]
        text = str(out[i][j]) if j is not None else out[i]
        new = text[:start] + CHANGES[kind](text[start:end], rng) + text[end:]
        changed[i] += new != text
        if j is not None:
            out[i][j] = new
        else:
            out[i] = new
    return out, changed


def perturbed(rows: datasets.Dataset, columns: list[str], kind: str, share: float,
              seed: int) -> tuple[datasets.Dataset, list[int]]:
    """`rows` with `columns` perturbed (each column drawn on its own, from the same seed); and how many
    sites changed in each row."""
    changed = [0] * len(rows)
    for n, column in enumerate(columns):
        values, counts = perturb_texts(list(rows[column]), kind, share, seed + n)
        feature = rows.features[column]
        order = rows.column_names
        rows = rows.remove_columns(column).add_column(column, values, feature=feature).select_columns(order)
        changed = [a + b for a, b in zip(changed, counts)]
    return rows, changed
