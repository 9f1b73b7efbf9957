"""The one training path: the Trainer subclass every strategy trains through, building it from a
cell's settings, preprocessing and its cache, and training with an out-of-memory fallback.

Every strategy goes through the same `transformers.Trainer`; a strategy only changes which
parameters train, and may add callbacks, optimizer groups or a loss term.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import torch
import transformers
from torch.utils.data import SequentialSampler
from transformers import (
    EarlyStoppingCallback,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.trainer_utils import has_length

import harness
from harness.base.device import precision, precision_args
from harness.base.digest import json_digest, text_digest
from harness.base.files import private_folder
from harness.config.schemas import train_fields
from harness.config.spec import RunSpec, card_identity

Progress = Callable[[int, int], None]  # (steps done, total steps)

transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()
datasets.disable_progress_bars()
datasets.logging.set_verbosity_error()


class HarnessTrainer(Trainer):
    """Trainer whose optimizer takes the strategy's parameter groups (learning-rate scales, and
    parameters that unfreeze later) while keeping Trainer's weight-decay rules, and which stops a
    run that diverges (see `diverged`). Nothing else changes."""

    def __init__(self, *args, strategy, task_type, train_config, **kwargs):
        self.strategy = strategy
        self.task_type = task_type
        self.train_config = train_config
        # {"step", "signal", "value"} of the first non-finite training loss, gradient norm or weight;
        # None while training is sound. Trainer's own log filters non-finite losses out of its
        # average (logging_nan_inf_filter), so a diverged run would otherwise look finished.
        self.diverged: dict | None = None
        super().__init__(*args, **kwargs)

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.diverged is None and not torch.isfinite(loss).all():
            self._diverge("loss", loss)
        return loss

    def log(self, logs, start_time=None):
        norm = logs.get("grad_norm")
        if self.diverged is None and isinstance(norm, (int, float)) and not math.isfinite(norm):
            self._diverge("grad_norm", norm)
        return super().log(logs, start_time)

    def check_weights(self) -> None:
        """After training: a trainable weight that is not finite means the run diverged at its last step."""
        if self.diverged is None:
            for param in self.model.parameters():
                if param.requires_grad and not torch.isfinite(param).all():
                    self._diverge("weights", float("nan"), self.state.global_step)
                    break

    def _diverge(self, signal: str, value, step: int | None = None) -> None:
        value = float(value.detach().float().flatten()[0]) if isinstance(value, torch.Tensor) else float(value)
        self.diverged = {"step": step if step is not None else self.state.global_step + 1, "signal": signal,
                         "value": str(value)}
        self.control.should_training_stop = True

    def _get_eval_sampler(self, eval_dataset):
        """Evaluation and prediction read the rows in dataset order, whatever the training sampler.

        transformers 5 hands evaluation the training's LengthGroupedSampler too when
        `train_sampling_strategy` is group_by_length, so `predict` returns its rows shuffled while
        harness pairs them with references in dataset order. On several processes, accelerate's
        sharding of a sequential order (and its gather) keeps the order as well."""
        if eval_dataset is None or not has_length(eval_dataset):
            return None
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None

    # True: an evaluation during training draws nothing from the global RNG that training reads (a
    # DataLoader's iterator draws its base seed from it), so a pruned sweep's trial that runs to the
    # end trains exactly as it would without its rung evaluations (harness.sweep.pruning)
    neutral_evaluation = False

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        if self.neutral_evaluation:
            with torch.random.fork_rng(devices=[]):
                return self._evaluate_on(eval_dataset, ignore_keys, metric_key_prefix)
        return self._evaluate_on(eval_dataset, ignore_keys, metric_key_prefix)

    def _evaluate_on(self, eval_dataset, ignore_keys, metric_key_prefix):
        """Generation tasks are scored on generated text, not on one forward pass's logits."""
        if not self.task_type.generates:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        features = eval_dataset if eval_dataset is not None else self.eval_dataset
        predictions = self.task_type.generate(self.model, self.processing_class, features, self.train_config)
        scores = self.task_type.score(predictions, self.task_type.references(features))
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in scores.items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def predictions(self, features) -> list:
        """Per-example predictions on preprocessed `features` (the scores are the caller's: the
        Trainer's compute_metrics reads the dev set)."""
        self.probabilities = None  # per-example class probabilities of these features, where the task has classes
        if self.task_type.generates:
            self.model.eval()
            return self.task_type.generate(self.model, self.processing_class, features, self.train_config)
        scorer, self.compute_metrics = self.compute_metrics, None
        try:
            raw = self.predict(features).predictions
            self.probabilities = self.task_type.probabilities(raw, features)
            return self.task_type.decode(raw, features)
        finally:
            self.compute_metrics = scorer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not self.strategy.own_loss:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        outputs = model(**inputs)
        loss = self.strategy.loss(inputs, outputs)
        return (loss, outputs) if return_outputs else loss

    def create_optimizer(self, model=None):
        groups = self.strategy.parameter_groups(self.model)
        if groups is None or self.optimizer is not None:
            return super().create_optimizer(model)
        decay = set(self.get_decay_parameter_names(self.model))
        params = dict(self.model.named_parameters())
        grouped = []
        for names, scale in groups:
            for weight_decay, decayed in ((self.args.weight_decay, True), (0.0, False)):
                chosen = [params[n] for n in names if (n in decay) == decayed]
                if chosen:
                    grouped.append({"params": chosen, "weight_decay": weight_decay, "lr": self.args.learning_rate * scale})
        optimizer_cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, self.model)
        self.optimizer = optimizer_cls(grouped, **kwargs)
        return self.optimizer


class _ReportSteps(TrainerCallback):
    def __init__(self, progress: Progress):
        self.progress = progress

    def on_step_end(self, args, state, control, **kwargs):
        self.progress(state.global_step, state.max_steps)


def preprocessed(task_type, rows, name: str, tokenizer, cfg, model, cache: Path | None):
    """task_type.preprocess, done once per (rows, tokenizer, settings) and kept under `cache`:
    every cell of a suite that reads the same split with the same tokenizer reuses it. The key
    hashes the rows' content (after few-shot draws and augmentation), the tokenizer's full
    definition, the card, the settings preprocessing reads, and the architecture kind."""
    if cache is None:
        return task_type.preprocess(rows, name, tokenizer, cfg)
    key = json_digest({
        "adapter": task_type.type, "card": card_identity(task_type.card),
        "split": name, "rows": _rows_digest(rows), "tokenizer": _tokenizer_digest(tokenizer),
        "train": cfg.model_dump(mode="json", include=train_fields("preprocess")),
        "model": [getattr(model.config, "model_type", None), bool(getattr(model.config, "is_encoder_decoder", False))],
        "harness": harness.__version__,
    }, 24)
    folder = cache / key
    if (folder / "info.json").exists():
        try:
            info = json.loads((folder / "info.json").read_text(encoding="utf-8"))
            return datasets.load_from_disk(str(folder / "data")), info | {"cache": "hit"}
        except Exception:  # noqa: BLE001 - a damaged entry (a full disk, a crash) is made again, not fatal
            shutil.rmtree(folder, ignore_errors=True)
    features, info = task_type.preprocess(rows, name, tokenizer, cfg)
    private_folder(cache)  # the entries hold the task's rows, which may be readable by this user alone
    partial = cache / f".{key}.{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    features.save_to_disk(str(partial / "data"))
    (partial / "info.json").write_text(json.dumps(info), encoding="utf-8")
    try:
        partial.rename(folder)  # whole entries only; another process may have made it meanwhile
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
    return features, info | {"cache": "miss"}


def _rows_digest(rows: datasets.Dataset) -> str:
    table = rows.with_format("arrow")[:]
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return text_digest(sink.getvalue(), 64)


def _tokenizer_digest(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    settings = {k: str(v) for k, v in sorted(tokenizer.init_kwargs.items())}
    return json_digest([body, settings, type(tokenizer).__name__, tokenizer.padding_side, tokenizer.truncation_side], 24)


def train(trainer: HarnessTrainer, cfg):
    """trainer.train(); with `auto_batch_size`, retried after an out-of-memory error with half the
    per-device batch and twice the gradient accumulation (the effective batch stays), from the
    weights as they were before training, until it fits. The batch used goes into the run's info."""
    trainer.batch_used = {"per_device": cfg.batch_size, "accumulation": cfg.gradient_accumulation_steps}
    if not cfg.auto_batch_size:
        result = trainer.train()
        trainer.check_weights()
        return result
    from accelerate.utils import find_executable_batch_size

    start = {k: v.detach().to("cpu", copy=True) for k, v in trainer.model.state_dict().items()}
    rng = (random.getstate(), np.random.get_state(), torch.get_rng_state(),
           torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)
    size = cfg.batch_size

    def smaller() -> int:
        nonlocal size
        size = max((d for d in range(1, size // 2 + 1) if cfg.batch_size % d == 0), default=0)
        return size

    @find_executable_batch_size(starting_batch_size=cfg.batch_size, reduce_batch_size_fn=smaller)
    def attempt(per_device: int):
        if per_device != cfg.batch_size:  # a retry: undo the steps (and random draws) the failed attempt took
            trainer.model.load_state_dict(start)
            trainer.optimizer, trainer.lr_scheduler = None, None
            random.setstate(rng[0])
            np.random.set_state(rng[1])
            torch.set_rng_state(rng[2])
            if rng[3] is not None:
                torch.cuda.set_rng_state_all(rng[3])
        accumulation = cfg.gradient_accumulation_steps * cfg.batch_size // per_device
        trainer.args.per_device_train_batch_size = trainer._train_batch_size = per_device
        trainer.args.gradient_accumulation_steps = accumulation
        trainer.batch_used = {"per_device": per_device, "accumulation": accumulation}
        return trainer.train()

    result = attempt()
    trainer.check_weights()
    return result


def training_info(trainer, result, train_info: dict, eval_info: dict, data, cfg, saved) -> dict:
    """What a training run did, for the record: preprocessing counts, steps, loss, selection."""
    return {
        "train": train_info,
        "eval": eval_info,
        "steps": trainer.state.global_step,
        "epochs": round(trainer.state.epoch or 0.0, 3),
        "train_loss": round(result.training_loss, 6) if math.isfinite(result.training_loss) else None,
        "tokens_seen": int(trainer.state.num_input_tokens_seen or 0),
        "selected_on": data.dev_source if cfg.early_stopping else None,  # checkpoint chosen on it
        "best_step": _best_step(trainer) if cfg.early_stopping else None,
        "log_history": trainer.state.log_history,
        "saved_to": str(saved) if saved else None,
        "precision": precision(cfg.precision),
        "weights_dtype": weights_dtype(trainer.model),
        "batch": getattr(trainer, "batch_used", None),
        "attention": getattr(getattr(trainer.model, "config", None), "_attn_implementation", None),
        **({"diverged": trainer.diverged} if getattr(trainer, "diverged", None) else {}),
    }


def weights_dtype(model: torch.nn.Module) -> str | None:
    """The dtype the model's parameters are kept in ('float32': autocast does the rest)."""
    first = next(iter(model.parameters()), None)
    return str(first.dtype).removeprefix("torch.") if first is not None else None


def set_dropout(model: torch.nn.Module, p: float) -> None:
    """Every dropout of the backbone and head: nn.Dropout modules, and the attention-dropout rates
    that attention implementations read from their module (before a strategy adds its own)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = p


@dataclass
class TrainerInputs:
    """What a cell's Trainer works on: the model and its tokenizer, the task type that collates,
    decodes and scores, the rows it trains on, and the rows it evaluates on while training (early
    stopping, checkpoint choice, curves: the task's dev split, never the split it reports; None
    when nothing selects)."""

    model: Any
    tokenizer: Any
    task_type: Any
    train_set: Any = None
    dev_set: Any = None


def build_trainer(spec: RunSpec, strategy, inputs: TrainerInputs, workdir: str, progress: Progress | None = None,
                  trainer_class: type[HarnessTrainer] | None = None, track: bool = True, **extra) -> Trainer:
    """The Trainer of one cell. `track`: send it to the trackers of `train.report_to` (see
    harness.run.tracking); `extra`: arguments of `trainer_class` beyond HarnessTrainer's."""
    model, task_type, dev_set = inputs.model, inputs.task_type, inputs.dev_set
    cfg, stopping = spec.train, spec.train.early_stopping
    callbacks: list[TrainerCallback] = list(strategy.callbacks(model))
    if stopping:
        callbacks.append(EarlyStoppingCallback(stopping.patience, stopping.threshold))
    if progress:
        callbacks.append(_ReportSteps(progress))
    trainer = (trainer_class or HarnessTrainer)(
        **extra,
        model=model,
        strategy=strategy,
        task_type=task_type,
        train_config=cfg,
        args=_arguments(spec, task_type, workdir, track),
        train_dataset=inputs.train_set,
        eval_dataset=dev_set,
        processing_class=inputs.tokenizer,
        data_collator=task_type.collator(inputs.tokenizer),
        compute_metrics=(lambda p: task_type.score(task_type.decode(p.predictions, dev_set), task_type.references(dev_set)))
        if dev_set is not None else None,
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # our own display reports progress
    return trainer


def _arguments(spec: RunSpec, task_type, workdir: str, track: bool = True) -> TrainingArguments:
    """The cell's training settings as Trainer's arguments."""
    cfg, stopping = spec.train, spec.train.early_stopping
    every = "steps" if cfg.eval_every_steps else "epoch" if stopping else "no"
    return TrainingArguments(
        output_dir=workdir,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps or -1,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        warmup_steps=cfg.warmup_ratio,  # a float below 1 is a ratio of the total steps
        weight_decay=cfg.weight_decay,
        lr_scheduler_type=cfg.lr_scheduler,
        max_grad_norm=cfg.max_grad_norm,
        label_smoothing_factor=cfg.label_smoothing,
        seed=spec.seed,
        data_seed=spec.seed,
        eval_strategy=every,
        eval_steps=cfg.eval_every_steps,
        save_strategy=every if stopping else "no",
        save_steps=cfg.eval_every_steps,
        save_total_limit=1 if stopping else None,
        load_best_model_at_end=bool(stopping),
        metric_for_best_model=(stopping.metric or task_type.card.primary) if stopping else None,
        greater_is_better=not (stopping and stopping.metric == "loss"),  # the loss is best lowest
        logging_strategy="steps",
        logging_steps=10,
        report_to=cfg.report_to if track else "none",
        run_name=spec.label,
        disable_tqdm=True,
        include_num_input_tokens_seen="non_padding",
        label_names=list(task_type.label_names),
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        **precision_args(cfg.precision),
    )


def _best_step(trainer: Trainer) -> int | None:
    checkpoint = trainer.state.best_model_checkpoint
    return int(checkpoint.rsplit("-", 1)[-1]) if checkpoint else None
