"""Train/eval overlap: a shared 13-gram, or for a short text the whole normalised text."""

from __future__ import annotations

import pandas as pd

from harness.cli.commands import main
from harness.config.registry import load_card, task_type_of
from harness.tasks.data import load_splits
from harness.tasks.overlap import overlap, words
from harness.testing import write_suite, write_yaml

LONG = "the committee met on tuesday to review the budget for the new library and its reading rooms"


def test_words_are_normalised_and_thirteen_words_in_a_row_overlap():
    assert words("It's GREAT, isn't it?!") == ("it", "s", "great", "isn", "t", "it")
    twelve = " ".join(LONG.split()[:12])
    found = overlap([LONG, "a fine film"], ["on Tuesday to review the budget for the new library, and its reading rooms... soon",
                                            f"yesterday {twelve} nothing more at all", "A FINE film!", "a fine film indeed"])
    # 13 words in a row of the first train text (case and punctuation aside); 12 are not enough; a short
    # text overlaps only as a whole
    assert found.found == {0: 0, 2: 1} and found.rows == 4 and found.share == 0.5


TRAIN = [f"review number {i} says the plot of this film was {'good' if i % 2 else 'bad'} and the cast did "
         f"their work with care on every single day of shooting {i}" for i in range(30)] + \
        [f"short phrase {i}" for i in range(30)]


def card_with_repeats(folder):
    """A card whose eval holds five training rows again (two long ones changed in case and
    punctuation, three short ones), and near misses that must not count."""
    evals = [TRAIN[3], TRAIN[7].upper(), TRAIN[12] + "!", TRAIN[31], TRAIN[40],  # the five repeats
             "short phrase 31 again",  # a short text that is not a whole training text
             " ".join(TRAIN[5].split()[:12]) + " but different words follow here now",  # 12 words in a row
             *[f"a new sentence number {i} unlike training" for i in range(13)]]
    pd.DataFrame({"text": TRAIN, "label": [i % 2 for i in range(len(TRAIN))]}).to_csv(folder / "train.csv", index=False)
    pd.DataFrame({"text": evals, "label": [i % 2 for i in range(len(evals))]}).to_csv(folder / "eval.csv", index=False)
    dev = [f"a dev sentence {i}" for i in range(10)]
    pd.DataFrame({"text": dev, "label": [i % 2 for i in range(10)]}).to_csv(folder / "dev.csv", index=False)
    return write_yaml(folder / "repeats.yaml", {
        "name": "repeats", "type": "classification", "splits": {"dev": "dev"},
        "source": {"files": {"train": "train.csv", "validation": "eval.csv", "dev": "dev.csv"}},
        "inputs": ["text"], "labels": ["neg", "pos"], "metrics": ["accuracy"], "primary": "accuracy"})


def test_a_card_whose_eval_repeats_five_train_rows_flags_exactly_those_five(tmp_path, capsys):
    card = load_card(card_with_repeats(tmp_path))
    data = load_splits(card)
    task_type = task_type_of(card)
    found = overlap(task_type.row_texts(data.train), task_type.row_texts(data.eval))
    assert sorted(found.found) == [0, 1, 2, 3, 4] and found.rows == 20
    suite = write_suite(tmp_path, tasks=[str(tmp_path / "repeats.yaml")],
                        train={"epochs": 1, "batch_size": 16, "max_length": 48})
    assert main(["run", str(suite)]) == 0
    said = " ".join(capsys.readouterr().out.split())  # the board's caption wraps
    assert "⚠ eval overlaps train: repeats: 5 of 20 eval examples (25%) overlap train" in said
    assert "repeats: 5 of 20 eval examples (25%) overlap train" in (tmp_path / "results" / "small" / "leaderboard.md").read_text()
    assert main(["examples", str(suite), "--task", "repeats", "--overlap"]) == 0
    listed = capsys.readouterr().out
    assert listed.count("eval #") == 5 and "SHORT PHRASE" not in listed and "short phrase 1" in listed
