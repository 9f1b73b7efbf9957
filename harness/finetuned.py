"""Save and reload fine-tuned models: what `train.save_model` keeps, and how it is rebuilt."""

from __future__ import annotations

from pathlib import Path

import peft
import safetensors.torch
import transformers

from harness.backbones import resolve
from harness.registry import ADAPTERS
from harness.spec import RunSpec


def save_finetuned(model, tokenizer, folder: Path, strategy, spec: RunSpec) -> Path:
    """What load_finetuned needs to rebuild the fine-tuned model, and no more: a PEFT model's
    adapter (with its trained head), or else the parameters the strategy trained; the rest is the
    backbone, which the run spec rebuilds. The tokenizer goes beside it."""
    if isinstance(model, peft.PeftModel):
        if any(getattr(m, "merged", False) for m in model.modules()):
            model.unmerge_adapter()  # save the adapter as trained, not folded into the weights
        model.save_pretrained(folder)
    else:
        folder.mkdir(parents=True, exist_ok=True)
        trained = strategy.trained(model)
        state = {n: p.detach().contiguous() for n, p in model.named_parameters() if n in trained}
        safetensors.torch.save_file(state, folder / TRAINED)
    tokenizer.save_pretrained(folder)
    (folder / "run_spec.json").write_text(spec.model_dump_json(), encoding="utf-8")
    return folder


TRAINED = "trained.safetensors"


def load_finetuned(spec: RunSpec | None, folder: Path):
    """(model, tokenizer) of a run saved with `train.save_model`, ready to predict: the backbone
    rebuilt from the spec (the one saved beside the model if None), the strategy applied, and the
    saved parameters loaded into it."""
    if spec is None:
        spec = RunSpec.model_validate_json((folder / "run_spec.json").read_text(encoding="utf-8"))
    card = spec.task_card()
    adapter = ADAPTERS.get(card.type)(card)
    strategy = spec.build_strategy()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    backbone = resolve(spec.model, spec.model_spec)
    model, _ = backbone.load(strategy.model_class(adapter), strategy.head(adapter), [], spec.seed, tokenizer=tokenizer)
    if (folder / "adapter_config.json").exists():
        return peft.PeftModel.from_pretrained(strategy.peft_ready(model), folder), tokenizer
    model = strategy.apply(model, adapter)
    state = safetensors.torch.load_file(folder / TRAINED)
    missing = set(state) - set(dict(model.named_parameters()))
    if missing:
        raise ValueError(f"{folder}: saved parameters the rebuilt model lacks: {sorted(missing)[:3]}")
    model.load_state_dict(state, strict=False)
    return model, tokenizer
