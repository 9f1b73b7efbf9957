"""PEFT methods through the `peft` library: each one is its peft config class plus peft's own table
of target modules per architecture. Arguments pass through to the config and are checked before
the grid starts; `target_modules: auto` (the default) takes peft's table for the architecture and
falls back to `all-linear` where peft has none. Preflight tries the injection on a meta-device
model, so a method that cannot apply to an architecture is refused with peft's own reason.

Harness's own argument: `merge: true` merges the adapter into the weights before evaluation
(methods that can merge).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path
from typing import Any, ClassVar

import peft
from peft.utils import constants
from torch import nn
from transformers import TrainerCallback

from harness.base.errors import ConfigError, did_you_mean, first_line
from harness.strategies import Strategy, backbone_of

# Fields of a peft config that harness sets itself or that do not describe the method.
_NOT_ARGUMENTS = {"task_type", "peft_type", "auto_mapping", "peft_version", "base_model_name_or_path",
                  "revision", "inference_mode", "modules_to_save"}
HARNESS_ARGUMENTS = {"merge"}


class PeftStrategy(Strategy):
    config_class: ClassVar[type]
    targets_table: ClassVar[dict[str, list[str]] | None] = None  # None: the method has no target modules
    feedforward_table: ClassVar[dict[str, list[str]] | None] = None  # IA3's feed-forward modules
    defaults: ClassVar[dict[str, Any]] = {}
    can_merge: ClassVar[bool] = True
    adapts = True

    def __init__(self, args: dict[str, Any]):
        self.args = args

    @classmethod
    def arguments(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls.config_class) if f.name not in _NOT_ARGUMENTS]

    @classmethod
    def from_suite(cls, raw: dict[str, Any], where: str, key: str) -> PeftStrategy:
        known = cls.arguments() + sorted(HARNESS_ARGUMENTS)
        for name in raw:
            if name not in known:
                raise ConfigError(f"{where}: {key}: unknown {cls.config_class.__name__} key {name!r}{did_you_mean(name, known)}")
        if raw.get("merge") and not cls.can_merge:
            raise ConfigError(f"{where}: {key}.merge: {cls.name} adapters cannot be merged into the weights")
        args = dict(cls.defaults)
        if cls.targets_table is not None:
            args["target_modules"] = "auto"
        if cls.feedforward_table is not None:
            args["feedforward_modules"] = "auto"
        args.update(raw)
        try:
            cls(args)._config(None)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {key}: {first_line(exc)}") from None
        return cls(args)

    def _config(self, model: nn.Module | None, peft_task_type: str | None = None):
        """The peft config; with no model (validating a suite) target modules are placeholders."""
        args = {k: v for k, v in self.args.items() if k not in HARNESS_ARGUMENTS}
        if "target_modules" in args:
            args["target_modules"] = self._resolve("target_modules", self.targets_table, model)
        if "feedforward_modules" in args:
            args["feedforward_modules"] = self._resolve("feedforward_modules", self.feedforward_table, model)
        return self.config_class(**args, task_type=peft_task_type)

    def _resolve(self, key: str, table: dict[str, list[str]], model: nn.Module | None):
        wanted = self.args[key]
        if wanted != "auto":
            return wanted
        if model is None:
            return ["placeholder"]
        if model.config.model_type in table:
            return table[model.config.model_type]
        return body_linear(model) if key == "target_modules" else []

    def resolved(self) -> dict[str, Any]:
        config = self._config(None)
        values = {f: getattr(config, f) for f in self.arguments()}
        for key in ("target_modules", "feedforward_modules"):
            if key in self.args:
                values[key] = self.args[key]
        values["merge"] = bool(self.args.get("merge", False))
        return json.loads(json.dumps(values, sort_keys=True, default=str))

    def check(self, model: nn.Module) -> str | None:
        targets = self._resolve("target_modules", self.targets_table, model) if "target_modules" in self.args else None
        if isinstance(targets, list):
            names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()} | {n for n, _ in model.named_modules()}
            missing = [t for t in targets if t not in names and not any(n.endswith("." + t) for n in names)]
            if missing:
                linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
                return (f"target modules {missing} not found in {type(model).__name__} "
                        f"(its linear modules: {', '.join(linear)})")
        try:  # the model is on the meta device: this costs no memory
            peft.get_peft_model(self.peft_ready(model), self._config(model, peft_task(model)))
        except Exception as exc:  # peft raises many types; its message is the reason
            return f"peft cannot apply {self.name}: {first_line(exc)}"
        return None

    def peft_ready(self, model: nn.Module) -> nn.Module:
        """The model as peft is to wrap it, when the method applies and when a saved adapter reloads."""
        return model

    def apply(self, model: nn.Module, task_type) -> nn.Module:
        return peft.get_peft_model(self.peft_ready(model), self._config(model, peft_task(model)))

    def before_evaluate(self, model: nn.Module) -> nn.Module:
        if self.args.get("merge"):
            model.merge_adapter()
        return model

    def save_trained(self, model: nn.Module, folder: Path) -> None:
        """peft's own format: the adapter (with the trained head peft keeps as modules_to_save)."""
        if any(getattr(m, "merged", False) for m in model.modules()):
            model.unmerge_adapter()  # save the adapter as trained, not folded into the weights
        model.save_pretrained(folder)

    def load_trained(self, model: nn.Module, task_type, folder: Path) -> nn.Module:
        return peft.PeftModel.from_pretrained(self.peft_ready(model), folder)


def body_linear(model: nn.Module) -> list[str]:
    """The target modules where peft's table has no entry for the architecture: every linear layer of
    the body, by name (peft's `all-linear` also takes a head layer that peft then cannot keep as a
    trained module to save: DistilBERT's pre_classifier ends in 'classifier'). A name that also ends a
    module outside the body is given by its full path."""
    body = {id(m) for m in backbone_of(model).modules()}
    linear = [(n, n.rsplit(".", 1)[-1]) for n, m in model.named_modules() if isinstance(m, nn.Linear) and id(m) in body]
    outside = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if id(m) not in body}
    return sorted({leaf if leaf not in outside else name for name, leaf in linear}) or "all-linear"


def peft_task(model: nn.Module) -> str:
    """peft's TaskType for a model, read off its head class."""
    name = type(model).__name__
    for suffix, task in (("ForSequenceClassification", "SEQ_CLS"), ("ForTokenClassification", "TOKEN_CLS"),
                         ("ForQuestionAnswering", "QUESTION_ANS"), ("ForCausalLM", "CAUSAL_LM")):
        if name.endswith(suffix):
            return task
    if getattr(model.config, "is_encoder_decoder", False):
        return "SEQ_2_SEQ_LM"
    raise ValueError(f"no peft task type for {name}")


class LoRA(PeftStrategy):
    """LoRA (Hu et al., 2021) and its variants through LoraConfig: r, lora_alpha, use_rslora, use_dora ..."""

    name = "lora"
    config_class = peft.LoraConfig
    targets_table = constants.TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING


class IA3(PeftStrategy):
    """(IA)^3 (Liu et al., 2022): learned rescaling of keys, values and feed-forward activations."""

    name = "ia3"
    config_class = peft.IA3Config
    targets_table = constants.TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING
    feedforward_table = constants.TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING


class LoHa(PeftStrategy):
    """LoHa: low-rank Hadamard-product adapters (LyCORIS)."""

    name = "loha"
    config_class = peft.LoHaConfig
    targets_table = constants.TRANSFORMERS_MODELS_TO_LOHA_TARGET_MODULES_MAPPING


class LoKr(PeftStrategy):
    """LoKr: low-rank Kronecker-product adapters (LyCORIS)."""

    name = "lokr"
    config_class = peft.LoKrConfig
    targets_table = constants.TRANSFORMERS_MODELS_TO_LOKR_TARGET_MODULES_MAPPING


class VeRA(PeftStrategy):
    """VeRA (Kopiczko et al., 2024): shared frozen random matrices with trained scaling vectors."""

    name = "vera"
    config_class = peft.VeraConfig
    targets_table = constants.TRANSFORMERS_MODELS_TO_VERA_TARGET_MODULES_MAPPING


class OFT(PeftStrategy):
    """OFT (Qiu et al., 2023): orthogonal fine-tuning of the weight matrices."""

    name = "oft"
    config_class = peft.OFTConfig
    targets_table = constants.TRANSFORMERS_MODELS_TO_OFT_TARGET_MODULES_MAPPING


class BOFT(PeftStrategy):
    """BOFT (Liu et al., 2024): orthogonal fine-tuning with butterfly factorisation."""

    name = "boft"
    config_class = peft.BOFTConfig
    targets_table = constants.TRANSFORMERS_MODELS_TO_BOFT_TARGET_MODULES_MAPPING
    defaults = {"boft_block_size": 4}


class PromptLearning(PeftStrategy):
    """peft's prompt-learning methods: virtual tokens before the input."""

    can_merge = False

    def check(self, model: nn.Module) -> str | None:
        # peft prepends virtual tokens through the model's input embeddings (or past key values);
        # encoder-decoder classification heads (T5ForSequenceClassification) take neither
        if getattr(model.config, "is_encoder_decoder", False) and peft_task(model) != "SEQ_2_SEQ_LM":
            return f"peft's prompt learning cannot feed virtual tokens to {type(model).__name__}"
        return super().check(model)


class PrefixTuning(PromptLearning):
    """Prefix tuning (Li & Liang, 2021): trained key/value prefixes in every layer."""

    name = "prefix_tuning"
    config_class = peft.PrefixTuningConfig
    defaults = {"num_virtual_tokens": 20}

    def peft_ready(self, model: nn.Module) -> nn.Module:
        return with_past_key_values(model)

    def check(self, model: nn.Module) -> str | None:
        if "past_key_values" not in inspect.signature(type(model).forward).parameters and not _takes_cache(model):
            return (f"{type(model).__name__} takes no past key values, which prefix tuning feeds its prefixes "
                    f"through")
        return super().check(model)


def with_past_key_values(model: nn.Module) -> nn.Module:
    """`model`, its class given a forward that names `past_key_values` where transformers calls it `cache`.

    peft (0.21) hands prefixes to a model as `past_key_values`, and first reads the model's forward
    signature to see whether it takes them. transformers 5.24 renamed that argument `cache` (the
    old name still works, through a deprecation shim, until 5.40), so peft refuses every model:
    "Model does not support past key values". The forward given here takes the old name and
    passes it on as `cache`; everything else is the model's own. Where the signature still names
    `past_key_values` (transformers up to 5.23), or the model takes no cache at all, it is unchanged.
    """
    cls = type(model)
    if "past_key_values" in inspect.signature(cls.forward).parameters or not _takes_cache(model):
        return model
    model.__class__ = _PREFIX_CLASSES.get(cls) or _PREFIX_CLASSES.setdefault(cls, _prefix_class(cls))
    return model


def _takes_cache(model: nn.Module) -> bool:
    bodies = [model, getattr(model, model.base_model_prefix, None)]
    return any(isinstance(m, nn.Module) and "cache" in inspect.signature(m.forward).parameters for m in bodies)


def _prefix_class(cls: type) -> type:
    def forward(self, *args, past_key_values=None, **kwargs):
        if past_key_values is not None:
            kwargs["cache"] = past_key_values
        return cls.forward(self, *args, **kwargs)

    own = [p for p in inspect.signature(cls.forward).parameters.values() if p.kind != p.VAR_KEYWORD]
    forward.__signature__ = inspect.Signature([*own, inspect.Parameter("past_key_values", inspect.Parameter.KEYWORD_ONLY,
                                                                        default=None),
                                               inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)])
    forward.__doc__ = cls.forward.__doc__
    return type(cls.__name__, (cls,), {"forward": forward, "__module__": cls.__module__})


_PREFIX_CLASSES: dict[type, type] = {}


class SoftPrompt(PromptLearning):
    """Prompt learning through the input embeddings: its virtual tokens are as wide as the model's
    embeddings, which is not the hidden size in ALBERT (embedding_size) or DistilBERT (dim)."""

    def check(self, model: nn.Module) -> str | None:
        if peft_task(model) == "TOKEN_CLS":  # the logits gain a row per virtual token, the labels do not
            return (f"peft's {self.name} puts virtual tokens into the sequence, and its token classification "
                    f"({type(model).__name__}) does not extend the labels to match them")
        return super().check(model)

    def _config(self, model: nn.Module | None, peft_task_type: str | None = None):
        config = super()._config(model, peft_task_type)
        if model is not None and "token_dim" not in self.args and model.get_input_embeddings() is not None:
            config.token_dim = model.get_input_embeddings().embedding_dim
        for key, field in (("num_attention_heads", "num_attention_heads"), ("num_layers", "num_hidden_layers")):
            # read through the config's attribute map: peft reads the stored keys, which are n_heads and
            # n_layers in DistilBERT
            if model is not None and key not in self.args and getattr(model.config, field, None) is not None:
                setattr(config, key, getattr(model.config, field))
        return config


class PromptTuning(SoftPrompt):
    """Prompt tuning (Lester et al., 2021): trained soft-prompt embeddings before the input."""

    name = "prompt_tuning"
    config_class = peft.PromptTuningConfig
    defaults = {"num_virtual_tokens": 20}


class PTuning(SoftPrompt):
    """P-tuning (Liu et al., 2021): soft prompts produced by a small prompt encoder."""

    name = "p_tuning"
    config_class = peft.PromptEncoderConfig
    defaults = {"num_virtual_tokens": 20, "encoder_hidden_size": 128}


class AdaLoRA(PeftStrategy):
    """AdaLoRA (Zhang et al., 2023): LoRA whose rank budget is reallocated during training.

    peft needs the total number of steps when the config is built; harness learns it only when
    training starts, so the config carries a placeholder until then and the callback sets the real
    count, then reallocates the budget after every optimizer step, as peft prescribes.
    """

    name = "adalora"
    config_class = peft.AdaLoraConfig
    targets_table = constants.TRANSFORMERS_MODELS_TO_ADALORA_TARGET_MODULES_MAPPING
    defaults = {"total_step": 10**9}  # placeholder, replaced by the run's real step count

    @classmethod
    def arguments(cls) -> list[str]:
        return [a for a in super().arguments() if a != "total_step"]

    def callbacks(self, model):
        return [_AdaLoRABudget(model)]


class _AdaLoRABudget(TrainerCallback):
    def __init__(self, model):
        self.model = model

    def on_train_begin(self, args, state, control, **kwargs):
        config = self.model.peft_config["default"]
        config.total_step = state.max_steps
        if config.tinit >= config.total_step - config.tfinal:
            raise ValueError(f"adalora: tinit ({config.tinit}) + tfinal ({config.tfinal}) leave no budgeting "
                             f"phase in {config.total_step} steps")

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.model.base_model.update_and_allocate(state.global_step)
