"""The CoNLL-2003 card read the way the hub serves it (the parquet files of eriktks/conll2003's
refs/convert/parquet branch, laid out in a local mirror from the real sample in ../shared/data)
gives the same sentences and tags as the same file read as CoNLL columns: a run on the hub reads
what a run on a local copy of the original files reads. A copy whose label order differs is caught."""

from __future__ import annotations

import datasets
import pytest

from harness.config.registry import TaskCatalogue
from harness.hub.card_check import check_card
from harness.tasks.data import load_splits, read_conll
from harness.testing import SHARED_DATA

pytestmark = [
    pytest.mark.real_data,
    pytest.mark.skipif(not (SHARED_DATA / "conll2003" / "train.txt").exists(), reason="../shared/data is not here"),
]

# The hub dataset's features, as eriktks/conll2003's loading script declares them (its _info()).
NER_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def mirror_of(folder, tags=NER_TAGS):
    """The sample as the parquet converter wrote the script's rows: conll2003/<split>/0000.parquet,
    ner_tags as ClassLabel ids (train: the first 1,600 sentences, validation: the rest)."""
    rows = read_conll(SHARED_DATA / "conll2003" / "train.txt")
    features = datasets.Features({"id": datasets.Value("string"), "tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=tags))})
    as_hub = [{"id": str(i), "tokens": r["tokens"], "ner_tags": [tags.index(t) for t in r["ner_tags"]]}
              for i, r in enumerate(rows)]
    for split, part in (("train", as_hub[:1600]), ("validation", as_hub[1600:])):
        path = folder / "eriktks/conll2003/conll2003" / split / "0000.parquet"
        path.parent.mkdir(parents=True)
        datasets.Dataset.from_list(part, features=features).to_parquet(str(path))
    return folder, rows


def test_the_hub_layout_reads_what_the_original_file_reads(tmp_path):
    card = TaskCatalogue().get("conll2003")
    mirror, rows = mirror_of(tmp_path / "mirror")
    assert check_card(card, mirror).ok
    hub = card.model_copy(update={"source": card.source.model_copy(update={"hub": str(mirror / "eriktks/conll2003")})})
    data = load_splits(hub)
    names = data.train.features["ner_tags"].feature.names
    read = [(r["tokens"], [names[t] for t in r["ner_tags"]]) for split in (data.train, data.dev) for r in split]
    original = [(r["tokens"], r["ner_tags"]) for r in rows[:1600]]
    assert len(rows) == 2000 and sorted(map(str, read)) == sorted(map(str, original))  # dev is carved from train
    assert [(r["tokens"], [names[t] for t in r["ner_tags"]]) for r in data.eval] == \
        [(r["tokens"], r["ner_tags"]) for r in rows[1600:]]

    swapped = [NER_TAGS[0], *NER_TAGS[3:5], *NER_TAGS[1:3], *NER_TAGS[5:]]  # ORG before PER
    other, _ = mirror_of(tmp_path / "other", swapped)
    assert check_card(card, other).problems == [
        f"labels: the card has {NER_TAGS}, the source {swapped} (order matters: ids are positions)"]
