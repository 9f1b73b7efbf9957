"""Which examples two rows disagree on, which every row gets wrong: from the stored predictions."""

from __future__ import annotations

import re

from harness.cli.commands import main
from harness.config.suite import expand, load_suite
from harness.report.examples import flips
from harness.report.results import Results
from harness.store.database import Store
from harness.testing import REFS, fake_record

# planted: examples each row gets wrong, per seed
WRONG = {("full", 0): {*range(10, 20), 90, 91, 92, 60},
         ("full", 1): {*range(10, 20), 90, 91, 92, 61},
         ("lora", 0): {*range(30, 40), 90, 91, 92, 60, 61},
         ("lora", 1): {*range(30, 40), 90, 91, 92, 70},
         ("bitfit", 0): {90, 91, 92, 93},
         ("bitfit", 1): {90, 91, 92}}


def planted(small_suite):
    path = small_suite(strategies={"full": {}, "lora": {}, "bitfit": {}}, seeds=[0, 1])
    loaded = load_suite(path)
    with Store(loaded.store_path) as store:
        for spec in expand(loaded):
            record = fake_record(spec, 200)
            wrong = WRONG[(spec.strategy, spec.seed)]
            record.predictions = [1 - r if i in wrong else r for i, r in enumerate(REFS)]
            store.write(record)
    return path, loaded


def test_exactly_the_planted_disagreements_are_listed(small_suite):
    path, loaded = planted(small_suite)
    with Store(loaded.store_path) as store:
        results = Results.from_suite(loaded, expand(loaded), store)
        task = results.task_names[0]
        found = flips(results, ("tiny", "full"), ("tiny", "lora"), task, lambda p, r: p == r)
    # full right in both seeds and lora wrong in both: 30-39 (61 and 70: lora wrong in one seed only;
    # 60: full wrong too); the other way: 10-19; every row wrong in every seed: 90-92 (93: one seed of one row)
    assert found.a_not_b == list(range(30, 40)) and found.b_not_a == list(range(10, 20))
    assert found.all_wrong == [90, 91, 92] and found.examples == 200 and found.seeds == (2, 2)


def test_the_examples_command_lists_them_with_their_text_and_each_cells_confusion(small_suite, capsys):
    path, _ = planted(small_suite)
    assert main(["examples", str(path), "--rows", "full", "lora"]) == 0
    said = capsys.readouterr().out
    sections = said.split("right in every seed")
    assert len(sections) == 3
    listed = [sorted(int(n) for n in re.findall(r"eval #(\d+)", part)) for part in said.split("\n\n")]
    assert list(range(30, 40)) in listed and list(range(10, 20)) in listed and [90, 91, 92] in listed
    assert "confusion" in said and "tiny · lora" in said
    assert main(["examples", str(path), "--rows", "full", "nothing"]) == 2
    assert "'nothing'" in capsys.readouterr().out


def test_each_task_type_says_what_right_is():
    import pytest

    from harness.config.registry import TaskCatalogue, task_type_of

    catalogue = TaskCatalogue()
    facts, headline, entities = (task_type_of(catalogue.get(n)) for n in ("gen_facts", "gen_headline", "gen_entities"))
    assert facts.right("The Eiffel Tower!", ["eiffel tower", "the tower"]) and not facts.right("tower", ["eiffel tower"])
    assert headline.right("the cat sat on the mat", "the cat sat on the mat")
    assert not headline.right("a dog ran", "the cat sat on the mat")  # its own rougeL is below 50
    assert entities.right(["B-PER", "O"], ["B-PER", "O"]) and not entities.right(["B-PER", "O"], ["B-PER", "B-LOC"])
    with pytest.raises(NotImplementedError, match="regression"):
        task_type_of(catalogue.get("stsb")).right(2.5, 2.4)


def test_the_html_report_lists_the_two_best_rows_flips_with_their_text_and_the_overlap(small_suite, tmp_path):
    import html

    from harness.config.registry import task_type_of
    from harness.tasks.data import load_splits

    path = small_suite(strategies={"full": {}, "lora": {}, "bitfit": {}}, seeds=[0, 1])
    loaded = load_suite(path)
    with Store(loaded.store_path) as store:
        for spec in expand(loaded):
            wrong = WRONG[(spec.strategy, spec.seed)]
            record = fake_record(spec, 200 - len(wrong))  # scores as the predictions: bitfit best, then full
            record.predictions = [1 - r if i in wrong else r for i, r in enumerate(REFS)]
            store.write(record)
    out = tmp_path / "out"
    assert main(["report", str(path), "--out", str(out)]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    examples = page[page.index("<h2>Examples</h2>"):]
    card = loaded.cards[next(iter(loaded.cards))]
    texts = task_type_of(card).row_texts(load_splits(card).eval)
    first = examples.index("right in every seed of tiny · bitfit, wrong in every seed of tiny · full")
    listed = examples[first:examples.index("</ul>", first)]
    assert re.findall(r"eval #(\d+)", listed) == [str(i) for i in range(10, 20)]
    assert html.escape(texts[10]) in listed
    assert "3 of 200 eval examples wrong in every seed of every row" in examples
    assert "confusion over its seeds" in examples and "predicted" in examples
    assert "eval examples overlap train" in examples
