"""Tasks the harness makes itself: small, deterministic per seed, learnable by a tiny model in seconds.

Each generator takes a seed and keyword options and returns {split: rows}. They exist so that
everything runs offline and so tests can assert that training really learns: a bag-of-words
signal (sentiment), a cross-sentence comparison (same_subject) and a graded overlap (similarity).
"""

from __future__ import annotations

import random

POSITIVE = "good great excellent wonderful superb lovely brilliant delightful charming moving".split()
NEGATIVE = "bad awful terrible poor boring dull horrible weak dreadful clumsy".split()
FILLER = (
    "the a this that movie film plot story acting actor cast music ending scenes script "
    "was is felt seemed really quite rather very and but with of in at overall somewhat"
).split()

ANIMALS = "fox dog cat horse bird mouse rabbit wolf bear goat".split()
ADJECTIVES = "red small old quick lazy young brown grey tall quiet".split()
VERBS = "runs sleeps sits waits plays hides eats walks".split()
PLACES = "near the river|under the tree|in the garden|by the house|on the hill|at the farm".split("|")

WORDS = "apple river stone cloud music garden window letter engine forest candle silver paper winter harbor mirror bridge orange thunder velvet".split()


def _splits(make, seed: int, n_train: int, n_eval: int) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    return {"train": [make(rng) for _ in range(n_train)], "validation": [make(rng) for _ in range(n_eval)]}


def sentiment(seed: int, n_train: int = 2000, n_eval: int = 400) -> dict[str, list[dict]]:
    """Single sentences; the label is the polarity with more words in the sentence (2 vs 0 or 1)."""

    def make(rng: random.Random) -> dict:
        label = rng.randrange(2)
        major, minor = (POSITIVE, NEGATIVE) if label else (NEGATIVE, POSITIVE)
        words = rng.choices(FILLER, k=rng.randint(5, 10))
        cues = rng.sample(major, 2) + rng.sample(minor, rng.randint(0, 1))
        for cue in cues:
            words.insert(rng.randrange(len(words) + 1), cue)
        return {"sentence": " ".join(words), "label": label}

    return _splits(make, seed, n_train, n_eval)


def same_subject(seed: int, n_train: int = 2000, n_eval: int = 400) -> dict[str, list[dict]]:
    """Sentence pairs; the label says whether both sentences are about the same animal."""

    def clause(rng: random.Random, animal: str) -> str:
        return f"the {rng.choice(ADJECTIVES)} {animal} {rng.choice(VERBS)} {rng.choice(PLACES)}"

    def make(rng: random.Random) -> dict:
        label = rng.randrange(2)
        first = rng.choice(ANIMALS)
        second = first if label else rng.choice([a for a in ANIMALS if a != first])
        return {"sentence1": clause(rng, first), "sentence2": clause(rng, second), "label": label}

    return _splits(make, seed, n_train, n_eval)


def similarity(seed: int, n_train: int = 2000, n_eval: int = 400, words: int = 4) -> dict[str, list[dict]]:
    """Sentence pairs of `words` words each; the score is 5 x the share of words they have in common."""

    def make(rng: random.Random) -> dict:
        first = rng.sample(WORDS, words)
        shared = rng.randint(0, words)
        rest = [w for w in WORDS if w not in first]
        second = rng.sample(first, shared) + rng.sample(rest, words - shared)
        rng.shuffle(second)
        return {"sentence1": " ".join(first), "sentence2": " ".join(second), "score": 5.0 * shared / words}

    return _splits(make, seed, n_train, n_eval)

