"""The token classification, QA and seq2seq task types: alignment, decoding edge cases, bad rows,
local file formats, and that each learns its generated task end to end."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest

from harness.base.errors import DataError
from harness.config.card import TaskCard
from harness.config.registry import load_card
from harness.config.schemas import TrainConfig
from harness.config.suite import expand, load_suite
from harness.plan.plan import preflight
from harness.run.backbones import build_tokenizer
from harness.run.cell import run_cell
from harness.tasks.data import load_splits
from harness.tasks.types.qa import QuestionAnsweringType
from harness.tasks.types.seq2seq import Seq2SeqType
from harness.tasks.types.tokens import TokenClassificationType, iob1_to_iob2
from harness.testing import write_yaml

NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def card(**fields) -> TaskCard:
    base = {"name": "t", "source": {"generate": "entities"}, "metrics": ["seqeval_f1"], "primary": "seqeval_f1"}
    return TaskCard.model_validate(base | fields)


def ner_type(**options) -> TokenClassificationType:
    return TokenClassificationType(card(type="token_classification", inputs=["tokens"], label="ner_tags",
                                           labels=NER_LABELS, options=options))


def rows(**columns) -> datasets.Dataset:
    return datasets.Dataset.from_dict(columns)


# --------------------------------------------------------------------------- token classification


def test_iob1_is_converted_to_iob2():
    assert iob1_to_iob2(["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-LOC", "I-PER"]) == \
        ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "B-PER"]


def test_first_subword_carries_the_tag_and_words_map_back():
    task_type = ner_type()
    split = rows(tokens=[["Zürichsee", "anna", "x"]], ner_tags=[["B-LOC", "B-PER", "O"]])
    tokenizer = build_tokenizer(["anna x zürich sea"], 60)  # "zürichsee" is not a word of the vocabulary: many pieces
    features, info = task_type.preprocess(split, "train", tokenizer, TrainConfig(max_length=64))
    labels, starts = features[0]["labels"], features[0]["word_starts"]
    assert [labels[p] for p in starts] == [3, 1, 0]
    assert sum(x != -100 for x in labels) == 3  # continuation pieces and specials are ignored
    all_pieces, _ = ner_type(label_subwords="all").preprocess(split, "train", tokenizer, TrainConfig(max_length=64))
    pieces = [x for x in all_pieces[0]["labels"] if x != -100]
    assert pieces[0] == 3 and set(pieces[1:-2]) == {4}  # B-LOC then I-LOC on the word's other pieces
    # decoding: one logit row per token; each word takes its first piece's label
    logits = np.zeros((1, len(labels), len(NER_LABELS)))
    for p, tag in zip(starts, [3, 1, 0]):
        logits[0, p, tag] = 5.0
    assert task_type.decode(logits, features) == [["B-LOC", "B-PER", "O"]]


def test_words_cut_by_truncation_are_predicted_o_and_counted():
    task_type = ner_type()
    words = ["anna"] * 30
    split = rows(tokens=[words], ner_tags=[["B-PER"] * 30])
    tokenizer = build_tokenizer(["anna"], 60)
    features, info = task_type.preprocess(split, "validation", tokenizer, TrainConfig(max_length=12))
    assert info == {"rows": 1, "truncated": 1, "words_cut": 20}
    logits = np.zeros((1, 12, len(NER_LABELS)))
    logits[..., 1] = 1.0
    predicted = task_type.decode(logits, features)[0]
    assert predicted == ["B-PER"] * 10 + ["O"] * 20 and task_type.references(features)[0] == ["B-PER"] * 30


@pytest.mark.parametrize("tokens, tags, message", [
    (["a", "b"], ["O"], "row 0: 2 tokens but 1 tags"),
    (["a"], ["B-ORG"], "row 0: tag 'B-ORG' is not one of the card's labels"),
    (["a"], [9], "row 0: tag 9 is not one of"),
])
def test_bad_ner_rows_name_the_row(tokens, tags, message):
    with pytest.raises(DataError, match=message):
        ner_type().preprocess(rows(tokens=[tokens], ner_tags=[tags]), "train", build_tokenizer(["a b"], 50),
                                 TrainConfig())


def test_integer_tags_are_indexes_into_the_labels():
    words, tags = ner_type().tags(rows(tokens=[["anna", "x"]], ner_tags=[[1, 0]]), "train")
    assert tags == [["B-PER", "O"]]


# --------------------------------------------------------------------------- question answering


def qa_type(**options) -> QuestionAnsweringType:
    return QuestionAnsweringType(card(type="question_answering", inputs=["question", "context"], label="answers",
                                         metrics=["squad_f1"], primary="squad_f1", options=options))


def _fake_logits(features, answer: str):
    """Logits that point at `answer` in every window that holds it whole, and elsewhere at [CLS]."""
    width = max(len(x) for x in features["input_ids"])
    start = np.full((len(features), width), -5.0)
    end = np.full((len(features), width), -5.0)
    for i, (s, e) in enumerate(zip(features["start_positions"], features["end_positions"])):
        start[i, s], end[i, e] = 5.0, 5.0
    return start, end


@pytest.mark.parametrize("answer_at", [5, 17, 29, 41, 53])  # in the overlap of windows, at their edges
def test_long_context_windows_find_the_answer_wherever_it_lies(answer_at):
    words = [f"w{i}" for i in range(60)]
    words[answer_at:answer_at + 2] = ["Zürich", "Genève"]
    context = " ".join(words)
    start = context.index("Zürich")
    split = rows(id=["q"], question=["where ?"], context=[context],
                 answers=[{"text": ["Zürich Genève"], "answer_start": [start]}])
    tokenizer = build_tokenizer([context, "where ?"], 200)
    task_type = qa_type(doc_stride=6)
    features, info = task_type.preprocess(split, "validation", tokenizer, TrainConfig(max_length=24))
    assert info["windows"] > 3 and info["rows_split"] == info["windows"] - 1
    holding = [i for i, s in enumerate(features["start_positions"]) if s != 0]
    assert holding, "some window must hold the whole answer"
    for i in holding:  # each window's labelled tokens map back to exactly the answer's characters
        offsets = features[i]["offsets"]
        s, e = features[i]["start_positions"], features[i]["end_positions"]
        assert context[offsets[s][0]:offsets[e][1]] == "Zürich Genève"
    assert task_type.decode(_fake_logits(features, "Zürich Genève"), features) == ["Zürich Genève"]
    assert task_type.references(features) == [["Zürich Genève"]]


def test_version_2_answers_nothing_when_no_answer_scores_higher():
    context = "anna lives in oslo ."
    split = rows(id=["a", "b"], question=["where ?", "why ?"], context=[context, context],
                 answers=[{"text": ["oslo"], "answer_start": [14]}, {"text": [], "answer_start": []}])
    tokenizer = build_tokenizer([context, "where why ?"], 100)
    task_type = qa_type(version_2=True)
    features, _ = task_type.preprocess(split, "validation", tokenizer, TrainConfig(max_length=32))
    assert features["start_positions"][1] == 0 and features["end_positions"][1] == 0
    assert task_type.decode(_fake_logits(features, ""), features) == ["oslo", ""]
    assert task_type.references(features) == [["oslo"], []]
    strict = qa_type(version_2=True, null_threshold=100.0)  # no-answer must now win by more than 100
    assert strict.decode(_fake_logits(features, ""), features)[1] != ""


@pytest.mark.parametrize("answers, options, message", [
    ({"text": ["paris"], "answer_start": [3]}, {}, "row 0: answer 'paris' is not at answer_start 3"),
    ({"text": [], "answer_start": []}, {}, "row 0: no answer; .* options.version_2: true"),
    ({"text": ["a"], "answer_start": []}, {}, "row 0: 1 answer texts but 0 answer_start"),
])
def test_bad_qa_rows_name_the_row(answers, options, message):
    split = rows(id=["x"], question=["q"], context=["anna lives in oslo"], answers=[answers])
    with pytest.raises(DataError, match=message):
        qa_type(**options).preprocess(split, "train", build_tokenizer(["anna lives in oslo q"], 80), TrainConfig())


def test_empty_context_is_an_error():
    split = rows(id=["x"], question=["q"], context=["  "], answers=[{"text": [], "answer_start": []}])
    with pytest.raises(DataError, match="row 0: the context is empty"):
        qa_type(version_2=True).preprocess(split, "train", build_tokenizer(["q"], 50), TrainConfig())


# --------------------------------------------------------------------------- seq2seq


def s2s_adapter(**options) -> Seq2SeqType:
    return Seq2SeqType(card(type="seq2seq", inputs=["translation"], label="translation", metrics=["bleu"],
                               primary="bleu", options=options))


def test_language_pairs_and_bad_rows():
    task_type = s2s_adapter(source_lang="ro", target_lang="en")
    split = rows(translation=[{"ro": "buna ziua", "en": "good day"}])
    assert task_type.pairs(split, "train") == (["buna ziua"], ["good day"])
    with pytest.raises(DataError, match="holds \\['en', 'ro'\\]; set options.source_lang"):
        s2s_adapter().pairs(split, "train")
    with pytest.raises(DataError, match="row 1: column 'translation' is empty"):
        task_type.pairs(rows(translation=[{"ro": "a", "en": "b"}, {"ro": "c", "en": " "}]), "train")


def test_decoder_only_loss_covers_the_target_alone():
    import transformers

    task_type = s2s_adapter(source_lang="ro", target_lang="en", prompt="{source} =>")
    tokenizer = build_tokenizer(["buna ziua good day =>"], 60)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(vocab_size=len(tokenizer), hidden_size=16,
                                                                   num_hidden_layers=1, num_attention_heads=2,
                                                                   intermediate_size=32))
    task_type.bind(model)
    features, info = task_type.preprocess(rows(translation=[{"ro": "buna ziua", "en": "good day"}]), "train", tokenizer,
                                        TrainConfig(max_target_length=8))
    ids, labels, prompt = features[0]["input_ids"], features[0]["labels"], features[0]["prompt_ids"]
    assert ids[: len(prompt)] == prompt and all(x == -100 for x in labels[: len(prompt)])
    assert tokenizer.decode(labels[len(prompt):], skip_special_tokens=True) == "good day"
    assert labels[-1] == tokenizer.eos_token_id and info["targets_truncated"] == 0


# --------------------------------------------------------------------------- local formats


CONLL = """-DOCSTART- -X- -X- O

Anna NNP B-NP I-PER
Berg NNP I-NP I-PER
visited VBD B-VP O
Oslo NNP B-NP I-LOC
. . O O

Oslo NNP B-NP I-LOC
Lima NNP I-NP B-LOC
"""


def test_conll_files_load_through_a_card_and_iob1_becomes_iob2(tmp_path):
    (tmp_path / "train.txt").write_text(CONLL, encoding="utf-8")
    path = write_yaml(tmp_path / "conll_local.yaml", {
        "name": "conll_local", "type": "token_classification",
        "source": {"files": {"train": "train.txt", "validation": "train.txt", "dev": "train.txt"}, "format": "conll"},
        "splits": {"dev": "dev"},  # two sentences: too few to carve a dev from
        "inputs": ["tokens"], "label": "ner_tags", "labels": NER_LABELS, "options": {"scheme": "IOB1"},
        "metrics": ["seqeval_f1"], "primary": "seqeval_f1"})
    data = load_splits(load_card(path))
    assert list(data.eval["tokens"]) == [["Anna", "Berg", "visited", "Oslo", "."], ["Oslo", "Lima"]]
    assert data.eval.column_names[:4] == ["tokens", "pos_tags", "chunk_tags", "ner_tags"]
    _, tags = TokenClassificationType(load_card(path)).tags(data.eval, "validation")
    assert tags == [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-LOC", "B-LOC"]]


def test_squad_json_loads_through_a_card(tmp_path):
    official = {"version": "2.0", "data": [{"title": "T", "paragraphs": [{"context": "anna lives in oslo .", "qas": [
        {"id": "1", "question": "where ?", "answers": [{"text": "oslo", "answer_start": 14}]},
        {"id": "2", "question": "why ?", "answers": [], "is_impossible": True,
         "plausible_answers": [{"text": "anna", "answer_start": 0}]}]}]}]}
    (tmp_path / "dev.json").write_text(json.dumps(official), encoding="utf-8")
    path = write_yaml(tmp_path / "squad_local.yaml", {
        "name": "squad_local", "type": "question_answering",
        "source": {"files": {"train": "dev.json", "validation": "dev.json", "dev": "dev.json"}, "format": "squad"},
        "splits": {"dev": "dev"},  # two questions: too few to carve a dev from
        "inputs": ["question", "context"], "label": "answers", "options": {"version_2": True},
        "metrics": ["squad_v2_exact", "squad_v2_f1"], "primary": "squad_v2_f1"})
    data = load_splits(load_card(path))
    assert data.eval["id"] == ["1", "2"]
    assert data.eval["answers"] == [{"text": ["oslo"], "answer_start": [14]}, {"text": [], "answer_start": []}]


def test_jsonl_language_pairs_load_through_a_card(tmp_path):
    lines = [{"translation": {"de": f"hund {i}", "en": f"dog {i}"}} for i in range(10)]
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(x) for x in lines), encoding="utf-8")
    path = write_yaml(tmp_path / "pairs_local.yaml", {
        "name": "pairs_local", "type": "seq2seq", "source": {"files": {"train": "pairs.jsonl"}},
        "splits": {"eval": None, "validation_fraction": 0.2, "dev_fraction": 0.25}, "inputs": ["translation"], "label": "translation",
        "options": {"source_lang": "de", "target_lang": "en"}, "metrics": ["bleu"], "primary": "bleu"})
    card = load_card(path)
    data = load_splits(card)
    sources, targets = Seq2SeqType(card).pairs(data.eval, data.eval_source)
    assert len(sources) == 2 and all(t == s.replace("hund", "dog") for s, t in zip(sources, targets))


def test_card_options_are_checked(tmp_path):
    from harness.base.errors import ConfigError

    path = write_yaml(tmp_path / "bad_options.yaml", {
        "name": "bad_options", "type": "question_answering", "source": {"generate": "facts"},
        "inputs": ["question", "context"], "label": "answers", "options": {"doc_strid": 64},
        "metrics": ["squad_f1"], "primary": "squad_f1"})
    with pytest.raises(ConfigError, match="options: unknown key 'doc_strid' .*doc_stride"):
        load_card(path)


# --------------------------------------------------------------------------- planning


def test_grid_exclusions_and_refusals(tmp_path):
    suite = write_yaml(tmp_path / "suite.yaml", {
        "name": "kinds", "models": {"bert": "tiny:bert", "llama": "tiny:llama"},
        "tasks": ["gen_entities", "gen_reorder"], "strategies": {"full": {}, "zero_shot": {}},
        "exclude": [{"model": "llama", "task": "gen_entities"}], "store": str(tmp_path / "s.sqlite")})
    loaded = load_suite(suite)
    specs = expand(loaded)
    assert {(s.model, s.task) for s in specs} == {("bert", "gen_entities"), ("bert", "gen_reorder"), ("llama", "gen_reorder")}
    refused = {(s.model, s.task, s.strategy): preflight(loaded, specs).get(s.id) for s in specs}
    assert "encoder-only backbone" in refused[("bert", "gen_reorder", "full")]
    assert "applies to classification, seq2seq tasks, not token_classification" in refused[("bert", "gen_entities", "zero_shot")]
    assert refused[("llama", "gen_reorder", "zero_shot")] is None and refused[("bert", "gen_entities", "full")] is None
    bad = write_yaml(tmp_path / "bad.yaml", {**json.loads(json.dumps(loaded.suite.model_dump(exclude={"path"}))),
                                              "exclude": [{"model": "lama"}]})
    from harness.base.errors import ConfigError

    with pytest.raises(ConfigError, match="exclude.0.model: unknown model 'lama'.*llama"):
        load_suite(bad)


# --------------------------------------------------------------------------- learning, end to end


LEARN = {"epochs": 3, "learning_rate": 2.0e-3, "batch_size": 32, "max_length": 64, "warmup_ratio": 0.1,
         "max_target_length": 24, "generation": {"max_new_tokens": 24}}


def run_one(tmp_path, model: str, task: str, **train):
    suite = write_yaml(tmp_path / "suite.yaml", {
        "name": "learn", "models": {"m": model}, "tasks": [task], "strategies": {"full": {}},
        "train": LEARN | train, "store": str(tmp_path / "s.sqlite")})
    return run_cell(expand(load_suite(suite))[0])


def test_ner_learns_its_generated_task(tmp_path):
    record = run_one(tmp_path, "tiny:bert", "gen_entities", epochs=2, max_train_samples=800)
    assert record.metrics["seqeval_f1"] > 80, record.metrics
    per_type = record.info["breakdown"]["per_type"]
    assert {"PER", "LOC", "ORG", "PER (strict)"} <= set(per_type)
    assert "mode=strict" in record.signatures["seqeval_f1_strict"]


def test_qa_learns_its_generated_task(tmp_path):
    record = run_one(tmp_path, "tiny:bert", "gen_facts")
    assert record.metrics["squad_f1"] > 80, record.metrics
    assert record.info["eval"]["windows"] == 300


def test_qa_v2_reports_answerable_and_unanswerable_scores(tmp_path):
    record = run_one(tmp_path, "tiny:bert", "gen_facts_v2", epochs=1, max_train_samples=300, max_eval_samples=60)
    breakdown = record.info["breakdown"]["squad_v2"]
    assert breakdown["HasAns_total"] + breakdown["NoAns_total"] == 60 and breakdown["NoAns_total"] > 5


def test_decoder_only_seq2seq_learns_translation(tmp_path):
    record = run_one(tmp_path, "tiny:llama", "gen_reorder", max_train_samples=1500, max_eval_samples=60)
    assert record.metrics["bleu"] > 60, record.metrics
    assert "nrefs:1" in record.signatures["bleu"] and record.spec["train"]["generation"]["max_new_tokens"] == 24


def test_encoder_decoder_seq2seq_learns_translation(tmp_path):
    untrained = run_one(tmp_path / "a", "tiny:t5", "gen_reorder", max_steps=1, max_eval_samples=40)
    # 5 epochs at 2e-3 without warm-up: 58.1 BLEU in 12.9 s (8 epochs with warm-up: 58.8 in 22.6 s; 5 at 3e-3: 27.7)
    trained = run_one(tmp_path / "b", "tiny:t5", "gen_reorder", epochs=5, learning_rate=2e-3, warmup_ratio=0.0,
                      max_eval_samples=40)
    assert trained.metrics["bleu"] > 25 and trained.metrics["bleu"] > untrained.metrics["bleu"] + 20, \
        (untrained.metrics, trained.metrics)
