"""Save and reload fine-tuned models: what `train.save_model` keeps, and how it is rebuilt.

What is kept is the strategy's to say (Strategy.save_trained / load_trained: the parameters it
trained, or a PEFT adapter in peft's format); beside it go the tokenizer and the run spec, which
rebuilds the backbone.
"""

from __future__ import annotations

from pathlib import Path

import transformers

from harness.base.errors import first_line
from harness.base.files import write_text
from harness.config.registry import task_type_of
from harness.config.spec import RunSpec
from harness.run.backbones import resolve
from harness.strategies import backbone_of


def save_finetuned(model, tokenizer, folder: Path, strategy, spec: RunSpec) -> Path:
    """What load_finetuned needs to rebuild the fine-tuned model, and no more."""
    strategy.save_trained(model, folder)
    tokenizer.save_pretrained(folder)
    write_text(folder / "run_spec.json", spec.model_dump_json())
    return folder


def load_finetuned(spec: RunSpec | None, folder: Path):
    """(model, tokenizer) of a run saved with `train.save_model`, ready to predict: the backbone
    rebuilt from the spec (the one saved beside the model if None), the strategy applied, and the
    saved parameters loaded into it."""
    if spec is None:
        spec = RunSpec.model_validate_json((folder / "run_spec.json").read_text(encoding="utf-8"))
    card = spec.task_card()
    task_type = task_type_of(card)
    strategy = spec.build_strategy()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    backbone = resolve(spec.model, spec.model_spec)
    model, _ = backbone.load(*strategy.architecture(task_type), [], spec.seed, tokenizer=tokenizer,
                             base=strategy.base)
    state, _ = start_body(strategy, folder.parent.parent)  # what it trained on top of, when it started elsewhere
    if state is not None:
        load_start(model, state)
    return strategy.load_trained(model, task_type, folder), tokenizer


def load_kept(run: str, artifacts: Path | None, asker: str):
    """(model, tokenizer) of the run `run` ('run:<id>') kept in the runs folder `artifacts`;
    `asker` (distill, start) opens the error when it was not kept there."""
    folder = artifacts / run.removeprefix("run:") / "model" if artifacts else None
    if folder is None or not folder.is_dir():
        raise ValueError(f"{asker}: no kept model for {run} in {artifacts} (a cell of the suite runs first and keeps "
                         f"it; a run of another suite needs train: {{save_model: true}})")
    return load_finetuned(None, folder)


def start_body(strategy, artifacts: Path | None):
    """(the fine-tuned body's weights, its tokenizer) of the kept run a recipe's `start` names
    ('run:<id>', in the runs folder `artifacts`), or (None, None) for a cell that starts from the
    pretrained backbone. A PEFT run's adapter is merged into the body it trained."""
    if not isinstance(getattr(strategy, "start", None), str):
        return None, None
    model, tokenizer = load_kept(strategy.start, artifacts, "start")
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return backbone_of(model).state_dict(), tokenizer


def load_start(model, state: dict) -> None:
    """Put a start cell's body weights into `model`'s body (the same backbone; its own head stays)."""
    try:
        backbone_of(model).load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"start: the body of the cell to start from does not fit this model: {first_line(exc)}") from None
