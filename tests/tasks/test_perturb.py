"""Seeded perturbations of eval text: the same text twice, at most the share asked for, no label changed."""

from __future__ import annotations

import datasets
import pytest

from harness.tasks.perturb import NEIGHBOURS, PERTURBATIONS, perturb_texts, perturbed, sites

TEXTS = ["It is not a good movie , I do not like it .", "the cast cannot act , and they are not funny",
         "What's this ? It's great , we're happy", "an utterly charming film", "12 34 !"] * 20


@pytest.mark.parametrize("kind", PERTURBATIONS)
@pytest.mark.parametrize("share", [0.05, 0.3, 1.0])
def test_a_perturbation_is_seeded_and_changes_at_most_its_share_of_sites(kind, share):
    out, changed = perturb_texts(TEXTS, kind, share, seed=3)
    assert (out, changed) == perturb_texts(TEXTS, kind, share, seed=3)  # the same text twice
    assert out != perturb_texts(TEXTS, kind, share, seed=4)[0] or share == 1.0  # the seed draws the sites
    total = sum(len(sites(t, kind)) for t in TEXTS)
    assert sum(changed) <= int(share * total)
    assert sum(changed) >= int(share * total) * 0.9  # and does change about that many
    assert out[4::5] == TEXTS[4::5]  # a text without letters has no site


def test_tokenized_contractions_are_found_and_turned_the_other_way():
    text = "it 's not that it does n't work , i ca n't say what 's wrong"
    (out,), (changed,) = perturb_texts([text], "contractions", 1.0, 0)
    assert out == "it is not that it does not work , i can not say what is wrong" and changed == 4


def test_each_perturbation_does_what_it_says():
    (typo,), _ = perturb_texts(["house"], "typos", 1.0, 0)
    assert len(typo) == 5 and sum(a != b for a, b in zip(typo, "house")) == 1
    assert next(b for a, b in zip("house", typo) if a != b) in NEIGHBOURS[next(a for a, b in zip("house", typo) if a != b)]
    assert perturb_texts(["Good movie"], "case", 1.0, 0)[0] == ["gOOD MOVIE"]
    assert perturb_texts(["It is not bad, I don't care"], "contractions", 1.0, 0)[0] == ["It's not bad, I do not care"]


def test_token_lists_keep_their_length_and_contractions_leave_them_alone():
    words = [["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."]]
    for kind in ("typos", "case"):
        out, _ = perturb_texts(words, kind, 0.5, 0)
        assert len(out[0]) == len(words[0]) and out[0] != words[0] and out[0][-1] == "."
    assert perturb_texts(words, "contractions", 1.0, 0) == (words, [0])


def test_labels_and_other_columns_never_change():
    rows = datasets.Dataset.from_dict({"sentence": TEXTS, "label": [i % 2 for i in range(len(TEXTS))],
                                       "question": ["what is it ?"] * len(TEXTS)})
    out, changed = perturbed(rows, ["sentence"], "typos", 0.5, 0)
    assert out.column_names == rows.column_names and out["label"] == rows["label"]
    assert out["question"] == rows["question"]
    assert [c > 0 for c in changed] == [a != b for a, b in zip(out["sentence"], rows["sentence"])]
    assert any(changed)
