"""Writes ner.json, squad.json and generation.json: metric cases whose expected values come from the
reference implementations, not from harness.

    python tests/metrics/cases/make_cases.py --conlleval conlleval.pl --squad-v1 evaluate-v1.1.py --squad-v2 evaluate-v2.0.py

- entity precision / recall / F1 and token accuracy (default mode): conlleval.pl (Perl), the CoNLL
  shared task's own script, fed the tags as `token gold guess` lines;
- strict mode (which conlleval has no form of): seqeval with mode='strict';
- SQuAD: the official evaluate-v1.1.py and evaluate-v2.0.py, imported from the given paths and run
  on a dataset and predictions built from each case;
- ROUGE: rouge-score's RougeScorer (use_stemmer=True), mean F-measure; BLEU and chrF: sacrebleu's
  corpus_score.
Those scripts are not part of this repository; pass their paths.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import subprocess
from pathlib import Path

HERE = Path(__file__).parent

NER = [
    ("perfect", [["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "B-LOC"]]),
    ("boundary error", [["B-PER", "O", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "B-LOC"]]),
    ("type error", [["B-ORG", "I-ORG", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "B-LOC"]]),
    ("I- after O starts an entity in default mode only", [["O", "I-PER", "I-PER", "O"], ["B-LOC"]],
     [["O", "B-PER", "I-PER", "O"], ["B-LOC"]]),
    ("two sentences, one missed", [["B-MISC", "I-MISC", "O"], ["O", "O"]], [["B-MISC", "I-MISC", "O"], ["B-ORG", "O"]]),
    ("BIOES tags", [["S-PER", "O", "B-LOC", "E-LOC"], ["B-ORG", "I-ORG", "E-ORG"]],
     [["S-PER", "O", "B-LOC", "E-LOC"], ["B-ORG", "E-ORG", "O"]]),
    ("hyphenated types", [["B-creative-work", "I-creative-work", "O"]], [["B-creative-work", "I-creative-work", "B-group"]]),
]


def _random_ner(seed: int):
    rng = random.Random(seed)
    types = ["PER", "LOC", "ORG"]
    refs, preds = [], []
    for _ in range(25):
        tags = []
        while len(tags) < rng.randint(4, 12):
            if rng.random() < 0.3:
                t = rng.choice(types)
                tags += [f"B-{t}"] + [f"I-{t}"] * rng.randint(0, 2)
            else:
                tags.append("O")
        refs.append(tags)
        pred = []
        for tag in tags:
            r = rng.random()
            pred.append(tag if r < 0.8 else rng.choice(["O", "B-PER", "I-PER", "I-LOC", "B-ORG"]))
        preds.append(pred)
    return preds, refs


def conlleval(script: Path, predictions, references) -> list[float]:
    lines = []
    for pred, ref in zip(predictions, references):
        lines += [f"w {r} {p}" for p, r in zip(pred, ref)] + [""]
    out = subprocess.run(["perl", str(script)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
    return [float(x) for x in out.stdout.split()]  # accuracy, precision, recall, F1


def ner_cases(script: Path) -> list[dict]:
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2, IOBES

    cases = []
    preds, refs = _random_ner(0)
    for why, p, r in [*NER, ("25 random sentences, 80% of tags kept", preds, refs)]:
        bioes = any(t[:2] in ("E-", "S-") for s in r + p for t in s)
        if not bioes:
            accuracy, precision, recall, f1 = conlleval(script, p, r)
            for metric, value in (("token_accuracy", accuracy), ("seqeval_precision", precision),
                                  ("seqeval_recall", recall), ("seqeval_f1", f1)):
                cases.append({"metric": metric, "predictions": p, "references": r, "expected": value,
                              "why": f"{why} (conlleval.pl)", "abs": 1e-9})
        strict = 100 * f1_score(r, p, mode="strict", scheme=IOBES if bioes else IOB2)
        cases.append({"metric": "seqeval_f1_strict", "predictions": p, "references": r, "expected": strict,
                      "why": f"{why} (seqeval strict)", "abs": 1e-9})
    return cases


SQUAD = [
    ("exact after normalisation", "The Denver Broncos!", ["Denver Broncos"]),
    ("articles and case", "a Stadium", ["the stadium"]),
    ("partial overlap", "Levi's Stadium in Santa Clara", ["Levi's Stadium"]),
    ("best of several gold answers", "Santa Clara", ["San Francisco Bay Area", "Santa Clara, California", "Santa Clara"]),
    ("no overlap", "Carolina", ["Denver"]),
    ("empty prediction", "", ["Denver"]),
    ("unicode", "Zürich—Genève", ["zürich genève"]),
    ("repeated tokens", "the the cat cat cat", ["cat sat"]),
]
SQUAD_V2 = [
    ("unanswerable, no prediction", "", []),
    ("unanswerable, answered", "Denver", []),
    ("answerable, not answered", "", ["Denver Broncos"]),
    ("gold answer that normalises to nothing", "", ["the"]),
    ("answerable, right", "Denver Broncos", ["Denver Broncos", "Broncos"]),
]


def _import(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dataset(rows):
    return [{"title": "t", "paragraphs": [{"context": "c", "qas": [
        {"id": str(i), "question": "q", "answers": [{"text": g, "answer_start": 0} for g in golds]}
        for i, (_, golds) in enumerate(rows)]}]}]


def squad_cases(v1: Path, v2: Path) -> list[dict]:
    v1, v2 = _import(v1, "evaluate_v1"), _import(v2, "evaluate_v2")
    cases = []
    for version, rows, metrics in (("v1.1", SQUAD, ("squad_exact", "squad_f1")),
                                   ("v2.0", SQUAD + SQUAD_V2, ("squad_v2_exact", "squad_v2_f1"))):
        groups = [[r] for r in rows] + [rows]  # each row alone, then all of them together
        for group in groups:
            predictions = {str(i): p for i, (_, p, _) in enumerate(group)}
            dataset = _dataset([(why, golds) for why, _, golds in group])
            result = v1.evaluate(dataset, predictions) if version == "v1.1" else v2.evaluate(dataset, predictions)
            exact, f1 = (result["exact_match"], result["f1"]) if version == "v1.1" else (result["exact"], result["f1"])
            why = group[0][0] if len(group) == 1 else f"all {len(group)} questions"
            for metric, value in zip(metrics, (exact, f1)):
                case = {"metric": metric, "predictions": [p for _, p, _ in group],
                        "references": [g for _, _, g in group], "expected": value,
                        "why": f"{why} (evaluate-{version}.py)", "abs": 1e-9}
                if version == "v2.0" and len(group) > 1:
                    case["breakdown"] = {k: v for k, v in result.items() if k.startswith(("HasAns", "NoAns"))}
                cases.append(case)
    return cases


GENERATION = {
    "summaries": (["The cat was running in the gardens. It stopped near the door!", "police arrest man after chase",
                   "Großer Hund läuft."],
                  ["A cat runs in the garden. The cat stopped at the door.", "man arrested by police after a car chase",
                   "Ein großer Hund läuft schnell."]),
    "translations": (["The quick brown fox jumps over the lazy dog .", "He said: \"it's fine\".", "Zwei Hunde spielen.",
                      "a"],
                     ["The fast brown fox jumped over the lazy dog.", "He said, \"It is fine.\"", "Two dogs play.",
                      "a small word"]),
}


def generation_cases() -> list[dict]:
    import numpy as np
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU, CHRF

    from harness.metrics.generation import (
        split_sentences,  # the sentence split rougeLsum uses
    )

    cases = []
    predictions, references = GENERATION["summaries"]
    for kind in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        scorer = rouge_scorer.RougeScorer([kind], use_stemmer=True)
        pairs = [(split_sentences(p), split_sentences(r)) if kind == "rougeLsum" else (p, r)
                 for p, r in zip(predictions, references)]
        value = 100 * float(np.mean([scorer.score(r, p)[kind].fmeasure for p, r in pairs]))
        cases.append({"metric": kind, "predictions": predictions, "references": references, "expected": value,
                      "why": "three summaries, stemming, two sentences (rouge-score)", "abs": 1e-9})
    predictions, references = GENERATION["translations"]
    for name, metric in (("bleu", BLEU()), ("chrf", CHRF())):
        value = metric.corpus_score(predictions, [references]).score
        cases.append({"metric": name, "predictions": predictions, "references": references, "expected": value,
                      "why": f"four sentences, corpus level (sacrebleu {metric.get_signature()})", "abs": 1e-9})
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conlleval", type=Path, required=True)
    parser.add_argument("--squad-v1", type=Path, required=True)
    parser.add_argument("--squad-v2", type=Path, required=True)
    args = parser.parse_args()
    for name, cases in (("ner", ner_cases(args.conlleval)), ("squad", squad_cases(args.squad_v1, args.squad_v2)),
                        ("generation", generation_cases())):
        text = "[\n" + ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n]\n"
        (HERE / f"{name}.json").write_text(text, encoding="utf-8")
        print(f"{name}.json: {len(cases)} cases")


if __name__ == "__main__":
    main()
