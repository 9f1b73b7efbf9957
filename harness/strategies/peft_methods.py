"""PEFT methods through the `peft` library: arguments pass through to the method's peft config.

`target_modules: auto` (the default) takes peft's own table of target modules for the
architecture, and falls back to peft's `all-linear` for architectures it does not list.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar

import peft
from peft.utils import constants
from torch import nn

from harness.errors import ConfigError, did_you_mean
from harness.strategies import Strategy

# Fields of a peft config that harness sets itself or that do not describe the method.
_NOT_ARGUMENTS = {"task_type", "peft_type", "auto_mapping", "peft_version", "base_model_name_or_path",
                  "revision", "inference_mode", "modules_to_save"}


class PeftStrategy(Strategy):
    config_class: ClassVar[type]
    targets_table: ClassVar[dict[str, list[str]]]

    def __init__(self, args: dict[str, Any]):
        self.args = args

    @classmethod
    def arguments(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls.config_class) if f.name not in _NOT_ARGUMENTS]

    @classmethod
    def from_suite(cls, raw: dict[str, Any], where: str, key: str) -> PeftStrategy:
        known = cls.arguments()
        for name in raw:
            if name not in known:
                raise ConfigError(f"{where}: {key}: unknown {cls.config_class.__name__} key {name!r}{did_you_mean(name, known)}")
        args = {"target_modules": "auto", **raw}
        try:
            cls._config(args, ["placeholder"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {key}: {exc}") from None
        return cls(args)

    @classmethod
    def _config(cls, args: dict[str, Any], targets: list[str] | str, task_type: str | None = None):
        return cls.config_class(**{**args, "target_modules": targets}, task_type=task_type)

    def resolved(self) -> dict[str, Any]:
        config = self._config(self.args, self.args["target_modules"])
        values = {f: getattr(config, f) for f in self.arguments()}
        values["target_modules"] = self.args["target_modules"]
        return json.loads(json.dumps(values, sort_keys=True, default=str))

    def targets(self, model: nn.Module) -> list[str] | str:
        wanted = self.args["target_modules"]
        if wanted == "auto":
            return self.targets_table.get(model.config.model_type, "all-linear")
        return wanted

    def check(self, model: nn.Module) -> str | None:
        targets = self.targets(model)
        if isinstance(targets, str):
            return None  # 'all-linear' or a regex: peft resolves it
        names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        missing = [t for t in targets if t not in names]
        if missing:
            linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
            return (f"target modules {missing} not found in {type(model).__name__} "
                    f"(its linear modules: {', '.join(linear)})")
        return None

    def apply(self, model: nn.Module, adapter) -> nn.Module:
        config = self._config(self.args, self.targets(model), adapter.peft_task_type)
        return peft.get_peft_model(model, config)


class LoRA(PeftStrategy):
    """LoRA (Hu et al., 2021) and its variants through LoraConfig: r, lora_alpha, use_rslora, use_dora ..."""

    name = "lora"
    config_class = peft.LoraConfig
    targets_table = constants.TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
