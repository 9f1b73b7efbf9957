"""A small kit for testing harness and what is built on it, in the spirit of seqio's test_utils:
tiny task cards and suites written into a folder, fake records whose scores are known, a store
filled with them, a strategy's parameters before and after training, the measured peak
memory of a training step (what memory estimates are checked against), and `command` / `refused`:
a `harness` command run in-process, and the check that it refused an input cleanly (its exit code,
at most N lines, no traceback, nothing written).

Nothing here is used by harness itself; tests and benchmarks import it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from harness.config.spec import RunSpec
from harness.store.database import RunRecord

if TYPE_CHECKING:
    import torch

# The samples of real public datasets beside the checkout (HARNESS_SHARED_DATA overrides).
SHARED_DATA = Path(os.environ.get("HARNESS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

SENTIMENT_CARD = {
    "name": "small_sentiment",
    "type": "classification",
    "source": {"generate": "sentiment", "seed": 0, "options": {"n_train": 600, "n_eval": 200}},
    "inputs": ["sentence"],
    "labels": ["negative", "positive"],
    "metrics": ["accuracy", "f1_macro"],
    "primary": "accuracy",
}

FAST_TRAIN = {"epochs": 3, "learning_rate": 2.0e-3, "batch_size": 32, "max_length": 48, "warmup_ratio": 0.1}


def write_yaml(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def write_suite(folder: Path, **changes) -> Path:
    """<folder>/suite.yaml: a tiny BERT trained fully on the small generated sentiment task, one
    seed, storing in <folder>/results/; `changes` replace its keys. The task's card is
    <folder>/tasks/small_sentiment.yaml, written if absent (a test may have changed it)."""
    card = folder / "tasks" / "small_sentiment.yaml"
    if not card.exists():
        write_yaml(card, SENTIMENT_CARD)
    suite = {
        "name": "small",
        "models": {"tiny": "tiny:bert"},
        "tasks": [str(card)],
        "strategies": {"full": {}},
        "seeds": [0],
        "train": dict(FAST_TRAIN),
        "store": str(folder / "results" / "store.sqlite"),
    }
    suite.update(changes)
    return write_yaml(folder / "suite.yaml", suite)


N = 200  # examples in each fake evaluation set
REFS = [i % 2 for i in range(N)]


def predictions(correct: int, offset: int = 0) -> list[int]:
    """Predictions that get exactly `correct` of REFS right (the wrong ones start at `offset`)."""
    wrong = set(range(offset, offset + N - correct))
    return [1 - r if i in wrong else r for i, r in enumerate(REFS)]


def fake_record(spec: RunSpec, correct: int, trainable: int = 10, offset: int = 0, **info) -> RunRecord:
    """A done record of `spec` with `correct` of N examples right (accuracy, f1_macro, mcc from it)
    and cost figures that grow with `trainable`."""
    accuracy = 100 * correct / N
    return RunRecord(id=spec.id, spec=spec.model_dump(mode="json"), status="done",
                     metrics={"accuracy": accuracy, "f1_macro": accuracy, "mcc": accuracy - 50},
                     cost={"trainable_params": trainable, "trainable_share": trainable / 1000,
                           "peak_memory_mb": 100.0 + trainable, "memory_kind": "cpu_peak_rss",
                           "seconds": {"train": trainable / 100}},
                     info=info, predictions=predictions(correct, offset), references=REFS)


def trained_pair(spec: RunSpec, rows: int = 128):
    """(parameters before, parameters after, trainable names) of `spec`'s strategy trained on the
    first `rows` training rows through the one training path."""
    from harness.config.registry import task_type_of
    from harness.run.backbones import resolve
    from harness.run.training import TrainerInputs, build_trainer
    from harness.tasks.data import load_splits

    card = spec.task_card()
    task_type = task_type_of(card)
    data = load_splits(card)
    backbone = resolve(spec.model, spec.model_spec)
    model, tokenizer = backbone.load(task_type.model_class, task_type.head(), task_type.texts(data.train), spec.seed)
    train, _ = task_type.preprocess(data.train.select(range(rows)), "train", tokenizer, spec.train)
    strategy = spec.build_strategy()
    model = strategy.apply(model, task_type)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    with tempfile.TemporaryDirectory() as workdir:
        build_trainer(spec, strategy, TrainerInputs(model, tokenizer, task_type, train, train), workdir).train()
    return before, dict(model.named_parameters()), trainable


def allocated_peak(step: Callable[[], object], held: int = 0, device: str = "cpu") -> int:
    """The true peak of bytes allocated on `device` while `step()` runs on real tensors, from the
    allocator's own events in torch's profiler, plus `held` (what was allocated before): what
    estimates are checked against (benchmarks/memory.py, tests)."""
    from torch.profiler import ProfilerActivity, profile

    kind = device.split(":")[0]
    with profile(activities=[ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if kind == "cuda" else [])],
                 profile_memory=True) as prof:
        step()
    running = peak = 0
    events = [e for e in prof.profiler.kineto_results.events()
              if e.name() == "[memory]" and str(e.device_type()).lower().endswith(kind)]
    for event in sorted(events, key=lambda e: e.start_ns()):
        running += event.nbytes()
        peak = max(peak, running)
    return held + peak


def trainable_model(backbone, task_type, strategy, device: str = "cpu"):
    """(model, its trained parameters): the cell's model built from its config with real random
    weights (seed 0) on `device`, the strategy applied, only what the strategy trains requiring grads."""
    import torch

    torch.manual_seed(0)
    with torch.device(device):
        model_class, head = strategy.architecture(task_type)
        model = model_class.from_config(backbone.config(**head))
    task_type.bind(model)
    model = strategy.apply(model, task_type)
    trained = strategy.trained(model)
    for name, param in model.named_parameters():
        param.requires_grad_(name in trained)
    return model, [p for n, p in model.named_parameters() if n in trained]


def longest_inputs(model, task_type, train, rows: int, device: str = "cpu") -> dict[str, torch.Tensor]:
    """A batch of `rows` at the longest shapes the settings allow (task_type.longest_batch), with token
    ids from the first 100 of the vocabulary and labels a class or a position (0 or 1)."""
    import torch

    vocab = min(model.config.get_text_config().vocab_size, 100)
    out = {}
    for name, (shape, dtype) in task_type.longest_batch(rows, train).items():
        target = name in task_type.label_names and not task_type.generates
        out[name] = (torch.zeros(shape, device=device) if dtype == "float"
                     else torch.randint(0, 2 if target else vocab, shape, device=device))
    if "attention_mask" in out:
        out["attention_mask"].fill_(1)
    return out


def measured_peak(backbone, task_type, strategy, train, device: str = "cpu") -> int:
    """The true peak bytes of what `cell_memory` estimates: the same model (config, head, strategy;
    real random weights) runs two real optimizer steps at the same longest batch (forward,
    backward, clipping, Trainer's fused AdamW) and an evaluation forward."""
    import torch

    from harness.plan.estimate import tensors_of

    model, params = trainable_model(backbone, task_type, strategy, device)
    optimizer = torch.optim.AdamW(params, lr=1e-4, fused=True)

    def batch(rows: int) -> dict[str, torch.Tensor]:
        return longest_inputs(model, task_type, train, rows, device)

    micro, evaluation = batch(train.batch_size), batch(train.eval_batch_size)

    def steps() -> None:
        for _ in range(2):
            model.train()
            for _ in range(train.gradient_accumulation_steps):
                loss = model(**micro).loss
                loss.backward()
                del loss
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        model.eval()
        with torch.no_grad():
            model(**evaluation)

    return allocated_peak(steps, sum(t.untyped_storage().nbytes() for t in tensors_of(model)), device)


# --------------------------------------------------------------------------- hostile inputs


@dataclass
class Outcome:
    """What one `harness` command did: its exit code, what it printed (stdout and stderr, one
    string per line), the exception that escaped it (a bug: a traceback for the user), and the
    files it created or changed under the watched folders."""

    code: int | None
    lines: list[str]
    escaped: BaseException | None
    written: list[Path]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def command(argv: list[str], watch: list[Path] = ()) -> Outcome:
    """Run `harness <argv>` in this process, capturing what it prints and what it writes under `watch`."""
    import contextlib
    import io

    from harness.cli.commands import main

    before = {p: _state(p) for folder in watch for p in _files(folder)}
    out = io.StringIO()
    escaped, code = None, None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException as exc:  # noqa: BLE001 - what escapes main is what the user sees as a traceback
            escaped = exc
    after = {p: _state(p) for folder in watch for p in _files(folder)}
    written = sorted(p for p, state in after.items() if before.get(p) != state)
    return Outcome(code, [line for line in out.getvalue().splitlines() if line.strip()], escaped, written)


def refused(outcome: Outcome, most: int = 2, code: int | None = 2, mentions: tuple[str, ...] = ()) -> Outcome:
    """Assert that `outcome` is a clean refusal: no traceback, exit `code` (any non-zero if None), at
    most `most` lines, each of `mentions` in them, nothing written under the watched folders."""
    assert outcome.escaped is None, f"escaped {type(outcome.escaped).__name__}: {outcome.escaped}"
    assert "Traceback" not in outcome.text, outcome.text
    assert (outcome.code == code) if code is not None else outcome.code not in (0, None), (outcome.code, outcome.text)
    assert len(outcome.lines) <= most, outcome.text
    for word in mentions:
        assert word in outcome.text, (word, outcome.text)
    assert not outcome.written, outcome.written
    return outcome


def _files(folder: Path) -> list[Path]:
    folder = Path(folder)
    return [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []


def _state(path: Path) -> tuple:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns, stat.st_mode
