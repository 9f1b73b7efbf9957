"""One run spec end to end: data, backbone, strategy, the one training path, evaluation, cost.

The runner raises on failure; the executor records the failure and goes on.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import datasets

from harness.backbones import resolve
from harness.cost import PeakMemory, PhaseTimer, environment, parameter_counts
from harness.data import load_splits
from harness.finetuned import save_finetuned
from harness.registry import ADAPTERS
from harness.spec import RunSpec
from harness.store import RunRecord
from harness.strategies import Context
from harness.training import (
    Progress,
    build_trainer,
    preprocessed,
    set_dropout,
    train,
    training_info,
)


def run_cell(spec: RunSpec, progress: Progress | None = None, artifacts: Path | None = None) -> RunRecord:
    """Train and score one cell. With `train.save_model`, the model goes to <artifacts>/<run id>/model.
    A strategy that does not train (zero-shot, in-context) predicts instead of the Trainer."""
    started = time.perf_counter()
    card = spec.task_card()
    adapter = ADAPTERS.get(card.type)(card)
    cfg = spec.train
    strategy = spec.build_strategy()
    timer = PhaseTimer()
    info: dict = {}
    with PeakMemory() as memory:
        with timer("load"):
            data, train_rows, eval_rows, augmented = rows_of(card, adapter, strategy, cfg, spec.seed)
            backbone = resolve(spec.model, spec.model_spec)
            model, tokenizer = backbone.load(strategy.model_class(adapter), strategy.head(adapter),
                                             adapter.texts(train_rows), spec.seed)
        if not strategy.trains:
            params = parameter_counts(model, set())
            with timer("evaluate"):
                predictions, info = strategy.predict(model, tokenizer, adapter, eval_rows, train_rows, spec.seed, cfg)
            references = adapter.references_of(eval_rows, data.eval_source)
            tokens, result_metrics = 0, {}
        else:
            adapter.bind(model)
            cache = artifacts.parent / "cache" / "preprocessed" if artifacts else None
            with timer("preprocess"):
                train_set, train_info = preprocessed(adapter, train_rows, data.train_source, tokenizer, cfg, model, cache)
                eval_set, eval_info = preprocessed(adapter, eval_rows, data.eval_source, tokenizer, cfg, model, cache)
            if cfg.dropout is not None:
                set_dropout(model, cfg.dropout)
            strategy.prepare(Context(spec, adapter, tokenizer, artifacts))
            model = strategy.apply(model, adapter)
            params = parameter_counts(model, strategy.trained(model))
            with tempfile.TemporaryDirectory(prefix="harness-") as workdir:
                trainer = build_trainer(spec, model, tokenizer, adapter, train_set, eval_set, workdir, progress, strategy)
                with timer("train"):
                    result = train(trainer, cfg)
                with timer("evaluate"):
                    trainer.model = strategy.before_evaluate(trainer.model)
                    predictions = trainer.predictions(eval_set)
                saved = save_finetuned(trainer.model, tokenizer, artifacts / spec.id / "model", strategy, spec) \
                    if cfg.save_model and artifacts else None
            references = adapter.references(eval_set)
            tokens, result_metrics = int(trainer.state.num_input_tokens_seen or 0), result.metrics
            info = training_info(trainer, result, train_info, eval_info, data, cfg, saved)
            if augmented:
                info["augmentation"] = augmented
    cost = cost_of(params, memory, timer, started, result_metrics, tokens, len(eval_rows), timer.seconds["evaluate"])
    return record_of(spec, adapter, data, predictions, references, cost, info)


def rows_of(card, adapter, strategy, cfg, seed: int):
    """(splits, training rows, evaluation rows, what augmentation did) of one task for one cell:
    the first N rows if asked, the few-shot draw, the strategy's data augmentation."""
    data = load_splits(card)
    train_rows = _head(data.train, cfg.max_train_samples)
    if cfg.shots:
        train_rows = adapter.few_shot(train_rows, cfg.shots, seed)
    train_rows, augmented = strategy.augment(train_rows, adapter, seed)
    return data, train_rows, _head(data.eval, cfg.max_eval_samples), augmented


def cost_of(params: dict, memory: PeakMemory, timer: PhaseTimer, started: float, result_metrics: dict,
            tokens: int, eval_rows: int, eval_seconds: float) -> dict:
    train_seconds = timer.seconds.get("train", 0.0)
    return {
        **params,
        "peak_memory_mb": memory.megabytes,
        "memory_kind": memory.kind,
        "seconds": {k: round(timer.seconds.get(k, 0.0), 3) for k in ("load", "preprocess", "train", "evaluate")},
        "wall_seconds": round(time.perf_counter() - started, 3),  # the whole cell, phases and the rest
        "train_samples_per_second": round(result_metrics.get("train_samples_per_second", 0.0), 2),
        "train_tokens_per_second": round(tokens / train_seconds, 1) if train_seconds else 0.0,
        "eval_samples_per_second": round(eval_rows / eval_seconds, 2) if eval_seconds else 0.0,
    }


def record_of(spec: RunSpec, adapter, data, predictions: list, references: list, cost: dict, info: dict) -> RunRecord:
    """The finished record of one cell: its predictions scored with the card's metrics."""
    metrics = adapter.score(predictions, references)
    if breakdown := adapter.breakdown(predictions, references):
        info["breakdown"] = breakdown
    info |= {"trained_on": data.train_source, "reported_on": data.eval_source}
    return RunRecord(
        id=spec.id, spec=spec.model_dump(mode="json"), status="done", metrics=metrics,
        signatures=adapter.signatures(), cost=cost, info=info, environment=environment(),
        predictions=predictions, references=references,
    )


def _head(split: datasets.Dataset, n: int | None) -> datasets.Dataset:
    return split.select(range(min(n, len(split)))) if n else split
