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



# --------------------------------------------------------------------------- token classification

FIRST_NAMES = "anna ben carla david elena frank grace henry iris jonas kemal lena".split()
LAST_NAMES = "smith garcia novak okafor berg tanaka rossi dubois".split()
CITIES = ["paris", "lagos", "new york", "oslo", "lima", "san jose", "cairo", "hanoi"]
COMPANIES = ["acme corp", "globex", "initech", "umbrella group", "stark industries", "wayne enterprises"]
NER_TEMPLATES = [
    "{PER} visited {LOC} last week",
    "{ORG} hired {PER} in {LOC}",
    "yesterday {PER} left {ORG}",
    "the office of {ORG} in {LOC} is closed",
    "{PER} and {PER} met in {LOC}",
    "shares of {ORG} rose after {PER} spoke",
    "it rained in {LOC} all day",
]


def entities(seed: int, n_train: int = 1500, n_eval: int = 300) -> dict[str, list[dict]]:
    """Templated sentences with people, places and companies from small gazetteers, tagged IOB2."""

    def make(rng: random.Random) -> dict:
        tokens, tags = [], []
        for part in rng.choice(NER_TEMPLATES).split():
            if part.startswith("{"):
                kind = part[1:4]
                name = {"PER": lambda: f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                        "LOC": lambda: rng.choice(CITIES), "ORG": lambda: rng.choice(COMPANIES)}[kind]().split()
                tokens += name
                tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(name) - 1)
            else:
                tokens.append(part)
                tags.append("O")
        return {"tokens": tokens, "ner_tags": tags}

    return _splits(make, seed, n_train, n_eval)


# --------------------------------------------------------------------------- question answering

PEOPLE = "anna ben carla david elena frank grace henry iris jonas kemal lena maria nils olga paul".split()
FACTS = {
    "city": ("lives in", "where does {p} live ?", ["paris", "lagos", "oslo", "lima", "cairo", "hanoi", "quito", "rome"]),
    "job": ("works as a", "what is the job of {p} ?", ["baker", "pilot", "nurse", "farmer", "judge", "tailor", "chef"]),
    "pet": ("owns a", "what pet does {p} own ?", ["cat", "dog", "parrot", "horse", "goat", "rabbit", "turtle"]),
    "sport": ("plays", "which sport does {p} play ?", ["tennis", "chess", "rugby", "golf", "hockey", "polo"]),
}


def facts(seed: int, n_train: int = 1500, n_eval: int = 300, unanswerable: float = 0.0) -> dict[str, list[dict]]:
    """A few facts about people ('anna lives in oslo . ben works as a pilot .') and a question about
    one of them; with `unanswerable` > 0 that share of questions asks a fact the context lacks
    (SQuAD 2.0 style, no answer)."""

    def make(rng: random.Random) -> dict:
        people = rng.sample(PEOPLE, 3)
        kinds = rng.sample(sorted(FACTS), 3)
        sentences, told = [], []
        for person, kind in zip(people, kinds):
            verb, _, values = FACTS[kind]
            value = rng.choice(values)
            sentences.append((f"{person} {verb} ", value, " ."))
            told.append((person, kind, value))
        context, spans = "", []
        for before, value, after in sentences:
            spans.append(len(context) + len(before))
            context += before + value + after + " "
        context = context.strip()
        if rng.random() < unanswerable:
            person, kind, _ = told[0]
            missing = next(k for k in sorted(FACTS) if k not in kinds)
            return {"id": f"q{rng.getrandbits(40):x}", "context": context,
                    "question": FACTS[missing][1].format(p=person), "answers": {"text": [], "answer_start": []}}
        i = rng.randrange(3)
        person, kind, value = told[i]
        return {"id": f"q{rng.getrandbits(40):x}", "context": context, "question": FACTS[kind][1].format(p=person),
                "answers": {"text": [value], "answer_start": [spans[i]]}}

    return _splits(make, seed, n_train, n_eval)


# --------------------------------------------------------------------------- summarization, translation


def _clause(rng: random.Random) -> str:
    return f"the {rng.choice(ADJECTIVES)} {rng.choice(ANIMALS)} {rng.choice(VERBS)} {rng.choice(PLACES)}"


def headline(seed: int, n_train: int = 1500, n_eval: int = 200) -> dict[str, list[dict]]:
    """Documents of three to five sentences, one of them flagged 'in short :'; the summary is that
    sentence (a copy task: find the flag, copy what follows)."""

    def make(rng: random.Random) -> dict:
        sentences = [_clause(rng) for _ in range(rng.randint(3, 5))]
        key = rng.randrange(len(sentences))
        document = " ".join(("in short : " if i == key else "") + s + " ." for i, s in enumerate(sentences))
        return {"document": document, "summary": sentences[key] + " ."}

    return _splits(make, seed, n_train, n_eval)


# An invented language: each English word has a fixed translation, and the word order changes:
# adjectives follow their noun and the verb goes to the end of the clause (SOV).
LEXICON = {
    "the": "lo", "red": "rusa", "small": "pikku", "old": "vanha", "quick": "nopa", "lazy": "laiska",
    "young": "nuori", "brown": "rusko", "grey": "harma", "tall": "pitka", "quiet": "hilja",
    "fox": "kettu", "dog": "koira", "cat": "kissa", "horse": "hevo", "bird": "lintu", "mouse": "hiiri",
    "rabbit": "jano", "wolf": "susi", "bear": "karhu", "goat": "vuohi",
    "sees": "nakee", "follows": "seuraa", "likes": "tykkaa", "chases": "jahtaa", "helps": "auttaa",
}
TRANSITIVE = ["sees", "follows", "likes", "chases", "helps"]


def reorder(seed: int, n_train: int = 2000, n_eval: int = 200) -> dict[str, list[dict]]:
    """'the red fox sees the small bird' -> 'lo kettu rusa lo lintu pikku nakee': word-by-word
    translation with the adjective after its noun and the verb last."""

    def make(rng: random.Random) -> dict:
        subject = (rng.choice(ADJECTIVES), rng.choice(ANIMALS))
        obj = (rng.choice(ADJECTIVES), rng.choice(ANIMALS))
        verb = rng.choice(TRANSITIVE)
        source = f"the {subject[0]} {subject[1]} {verb} the {obj[0]} {obj[1]}"
        words = ["the", subject[1], subject[0], "the", obj[1], obj[0], verb]
        return {"source": source, "target": " ".join(LEXICON[w] for w in words)}

    return _splits(make, seed, n_train, n_eval)
