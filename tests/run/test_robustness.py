"""More evaluation sets: a card's extra split and the suite's seeded perturbations of eval, each
predicted by the cell, kept in the store, and shown in the robustness view with the paired test."""

from __future__ import annotations

import json

import pytest

from harness.config.suite import expand, load_suite
from harness.report.leaderboard import boards
from harness.report.results import Results
from harness.run.cell import run_cell
from harness.store.database import Store
from harness.tasks.generated import sentiment
from harness.testing import SENTIMENT_CARD, write_suite, write_yaml


@pytest.fixture
def suite(tmp_path):
    """A sentiment card read from files, with an out-of-domain split (other generated sentences)."""
    rows = sentiment(0, n_train=500, n_eval=120)
    other = sentiment(7, n_train=1, n_eval=80)["validation"]
    for name, split in (("train", rows["train"]), ("eval", rows["validation"]), ("ood", other)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in split), encoding="utf-8")
    card = dict(SENTIMENT_CARD, source={"files": {s: f"../{s}.jsonl" for s in ("train", "eval", "ood")}},
                splits={"train": "train", "eval": "eval", "extra": ["ood"]})
    write_yaml(tmp_path / "tasks" / "small_sentiment.yaml", card)
    return write_suite(tmp_path, strategies={"full": {}, "head_only": {}}, seeds=[0, 1],
                       robustness={"perturbations": {"typos": 0.3, "case": 1.0}, "seed": 5},
                       train={"epochs": 2, "learning_rate": 2e-3, "batch_size": 32, "max_length": 32})


def test_every_cell_is_scored_on_its_extra_split_and_perturbed_evals(suite):
    loaded = load_suite(suite)
    specs = expand(loaded)
    records = [run_cell(spec) for spec in specs]
    for record in records:
        sets = record.eval_sets
        assert list(sets) == ["ood", "typos", "case"]
        assert len(sets["ood"]["predictions"]) == 80 and sets["ood"]["info"] == {"kind": "split", "split": "ood",
                                                                                   "rows": 80}
        for name in ("typos", "case"):  # eval's examples, labels untouched
            assert sets[name]["references"] == record.references and len(sets[name]["probabilities"]) == 120
        assert 0 < sets["typos"]["info"]["changed_rows"] <= 120
        # the tiny BERT's tokenizer lowercases: swapping case cannot change a prediction
        assert sets["case"]["predictions"] == record.predictions
        assert sets["case"]["probabilities"] == record.probabilities
    with Store(loaded.store_path) as store:
        for record in records:
            store.write(record)
        assert store.eval_sets(records[0].id)["typos"]["predictions"] == records[0].eval_sets["typos"]["predictions"]
        (board,) = boards(Results.from_suite(loaded, specs, store), "robustness")
    rows = [s for _, s in board.rows]
    assert [c.key for c in board.columns] == ["eval", "ood", "ood_drop", "ood_p", "typos", "typos_drop", "typos_p",
                                              "case", "case_drop", "case_p"]
    full = rows.index("full")
    assert board.column("case_drop").cells[full].mean == 0.0 and board.column("case_p").cells[full].mean == 1.0
    assert board.column("typos_drop").cells[full].mean > 0  # typos in a third of the words cost a tiny BERT
    assert board.column("typos_p").cells[full].n == 1 and board.column("ood_p").cells[full].n == 0  # other examples
    clean = [r for r in records if r.spec["strategy"] == "full"]
    typos = sum(r.metrics["accuracy"] - 100 * sum(p == q for p, q in zip(r.eval_sets["typos"]["predictions"],
                                                                       r.references)) / 120 for r in clean) / 2
    assert board.column("typos_drop").cells[full].mean == pytest.approx(typos)
    assert any("typos on 30% of the words of sentence in eval (eval), seed 5" in n for n in board.notes)


def test_robustness_is_hashed_only_when_set_and_a_bad_share_is_refused(tmp_path):
    plain = expand(load_suite(write_suite(tmp_path)))[0].id
    asked = expand(load_suite(write_suite(tmp_path, robustness={"perturbations": {"typos": 0.1}})))[0].id
    assert plain != asked
    from harness.base.errors import ConfigError

    for bad, says in (({"perturbations": {"typos": 1.5}}, "the share changed must be in (0, 1]"),
                      ({"perturbations": {"typo": 0.1}}, "robustness.perturbations"),
                      ({"perturbations": {}}, "robustness.perturbations")):
        with pytest.raises(ConfigError) as error:
            load_suite(write_suite(tmp_path, robustness=bad))
        assert says in str(error.value) and "\n" not in str(error.value)


def test_a_prompting_cell_is_scored_on_its_perturbed_eval_too(tmp_path):
    path = write_suite(tmp_path, models={"llama": "tiny:llama"}, strategies={"zero_shot": {}},
                       robustness={"perturbations": {"typos": 0.5}}, train={"max_eval_samples": 12, "max_length": 32})
    record = run_cell(expand(load_suite(path))[0])
    typos = record.eval_sets["typos"]
    assert typos["references"] == record.references and len(typos["predictions"]) == 12
    assert typos["info"]["changed_rows"] > 0
