"""`harness check-catalogue` on local folders laid out as the hub lays out the catalogue's dataset
repositories: the cards' sources resolve there (data_files globs, README configurations, parquet
schemas with ClassLabel names), and a broken copy gets one line per mismatch.

The fixture's facts are the sources' own (the loading scripts' features and the repositories'
layouts, cited in each card), not copied from the cards: a card that drifted from its source fails."""

from __future__ import annotations

import shutil
from pathlib import Path

import datasets
import pytest

from harness.cli.commands import main
from harness.config.registry import TaskCatalogue, load_card
from harness.hub.card_check import check_card
from harness.tasks.data import load_splits

CONLL_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]  # conll2003.py


def _parquet(path: Path, rows: list[dict], features: datasets.Features) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(path))


def conll(tags=CONLL_TAGS, tag_column="ner_tags"):
    features = datasets.Features({
        "id": datasets.Value("string"), "tokens": datasets.Sequence(datasets.Value("string")),
        "pos_tags": datasets.Sequence(datasets.Value("int32")), "chunk_tags": datasets.Sequence(datasets.Value("int32")),
        tag_column: datasets.Sequence(datasets.ClassLabel(names=tags))})
    rows = [{"id": str(i), "tokens": ["EU", "rejects", "German", "call"], "pos_tags": [22, 42, 16, 21],
             "chunk_tags": [11, 21, 11, 12], tag_column: [3, 0, 7, 0]} for i in range(20)]
    return rows, features


def lay_out(mirror: Path, *, tags=CONLL_TAGS, tag_column="ner_tags", glue_splits=("train", "validation", "test"),
            languages=("ro", "en")) -> Path:
    """The layouts the catalogue's hub cards read: a parquet-converter branch with one folder per
    config and split (eriktks/conll2003, nyu-mll/glue), and the branch's older flat files (wmt/wmt16,
    EdinburghNLP/xsum)."""
    rows, features = conll(tags, tag_column)
    for split in ("train", "validation", "test"):
        _parquet(mirror / "eriktks/conll2003/conll2003" / split / "0000.parquet", rows, features)
    glue = mirror / "nyu-mll/glue"
    sst2 = datasets.Features({"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["negative", "positive"]),
                              "idx": datasets.Value("int32")})
    for split in glue_splits:  # the parquet branch: <config>/<split>/0000.parquet
        _parquet(glue / "sst2" / split / "0000.parquet",
                 [{"sentence": "a gripping film", "label": 1, "idx": i} for i in range(4)], sst2)
    pairs = datasets.Features({"translation": datasets.Translation(languages=list(languages))})
    for split in ("train", "validation", "test"):
        _parquet(mirror / "wmt/wmt16/ro-en" / f"wmt16-{split}.parquet",
                 [{"translation": dict(zip(languages, ["Bună ziua.", "Good day."]))}] * 3, pairs)
        _parquet(mirror / "EdinburghNLP/xsum/default" / f"xsum-{split}.parquet",
                 [{"document": "A long article.", "summary": "Short.", "id": "1"}] * 3,
                 datasets.Features({k: datasets.Value("string") for k in ("document", "summary", "id")}))
    return mirror


CARDS = ["conll2003", "sst2", "wmt16_en_ro", "wmt16_ro_en", "xsum"]


def cards():
    catalogue = TaskCatalogue()
    return [catalogue.get(name) for name in CARDS]


def test_the_catalogue_cards_match_sources_laid_out_as_the_hub_has_them(tmp_path):
    mirror = lay_out(tmp_path / "mirror")
    for card in cards():
        check = check_card(card, mirror)
        assert check.ok, (card.name, check.problems)
    # the same files load through the card's own source (a local folder is what load_dataset reads
    # from the hub's cache), and ids map to the card's label names
    card = load_card(TaskCatalogue().paths["conll2003"])
    local = card.model_copy(update={"source": card.source.model_copy(update={"hub": str(mirror / "eriktks/conll2003")})})
    data = load_splits(local)
    assert data.train.features["ner_tags"].feature.names == card.labels


def test_a_broken_copy_gets_one_line_per_mismatch(tmp_path, capsys):
    swapped = [CONLL_TAGS[0], CONLL_TAGS[2], CONLL_TAGS[1], *CONLL_TAGS[3:]]
    mirror = lay_out(tmp_path / "mirror", tags=swapped, tag_column="tags", glue_splits=("train", "test"),
                     languages=("cs", "en"))
    shutil.rmtree(mirror / "EdinburghNLP")
    by_name = {c.name: check_card(c, mirror) for c in cards()}
    assert by_name["conll2003"].problems == [
        "label: no column 'ner_tags' in the source (it has id, tokens, pos_tags, chunk_tags, tags)"]
    assert by_name["sst2"].problems == ["data_files.validation: 'sst2/validation/*.parquet' matches no file in "
                                        "nyu-mll/glue @ cd696e28db6a60fe07ef14fb22f3b8d1b4615671"]
    assert by_name["wmt16_en_ro"].problems == ["options.target_lang: 'ro' is not a language of the source (cs, en)"]
    assert by_name["wmt16_ro_en"].problems == ["options.source_lang: 'ro' is not a language of the source (cs, en)"]
    assert by_name["xsum"].problems[0].startswith("cannot resolve EdinburghNLP/xsum @ 5484b354")
    order = lay_out(tmp_path / "order", tags=swapped)
    assert check_card(cards()[0], order).problems == [
        f"labels: the card has {CONLL_TAGS}, the source {swapped} (order matters: ids are positions)"]

    paths = [str(TaskCatalogue().paths[name]) for name in CARDS]
    assert main(["check-catalogue", *paths, "--mirror", str(mirror)]) == 1
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("tasks/") or "/tasks/" in line.split(":")[0]]
    assert len(lines) == 5 and "0 of 5 hub cards match their sources" in out
    assert main(["check-catalogue", *paths[:1], "--mirror", str(order)]) == 1
    assert main(["check-catalogue", *paths[1:2], "--mirror", str(lay_out(tmp_path / "good"))]) == 0


def test_without_the_hub_it_says_so_in_one_line_with_its_own_exit_code(capsys):
    assert main(["check-catalogue"]) == 3  # the tests run with HF_HUB_OFFLINE=1
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"cannot check {sum(1 for c in _all() if c.source.hub)} hub cards: the Hugging Face Hub cannot be "
                   "reached (HF_HUB_OFFLINE is set)"]


def _all():
    catalogue = TaskCatalogue()
    return [catalogue.get(n) for n in catalogue.names()]


@pytest.mark.parametrize("name", [n for n in TaskCatalogue().names()])
def test_every_hub_card_reads_a_script_free_source(name):
    """Every hub card either reads a repository's parquet files (data_files, at a revision where no
    loading script is) or a repository whose main the cards' comments say holds parquet; each says
    where its facts come from."""
    card = TaskCatalogue().get(name)
    if not card.source.hub:
        return
    text = card.path.read_text()
    assert "# Source:" in text, f"{card.path}: no comment saying where the source's facts come from"
    if card.source.data_files:
        assert card.source.revision, f"{card.path}: data_files without a revision read main, which may hold a script"
        assert all(str(p).endswith(".parquet") for p in card.source.data_files.values())
