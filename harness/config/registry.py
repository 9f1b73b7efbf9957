"""One table per kind of thing: task types, strategies (methods), recipe parts, metrics, generated tasks, and the task catalogue.

Entries are `"module:attribute"` strings imported on first use, so listing names imports nothing
and nothing registers itself as a side effect of an import. A test checks that every table entry
imports and that the task catalogue matches the files on disk.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, TypeVar

from harness.base.errors import ConfigError, HarnessError, did_you_mean, unknown
from harness.config.card import TaskCard
from harness.config.parsing import parse
from harness.config.yamlfile import read_yaml

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries, plus optional families named `<prefix>:<argument>` whose entry is a factory
    called with the argument (`evaluate:sacrebleu` for metrics)."""

    def __init__(self, kind: str, entries: dict[str, str], families: dict[str, str] | None = None):
        self.kind = kind
        self._entries = dict(entries)
        self._families = dict(families or {})
        self._loaded: dict[str, T] = {}

    def _family(self, name: object) -> str | None:
        if isinstance(name, str) and ":" in name:
            prefix, _, argument = name.partition(":")
            if prefix in self._families and argument:
                return prefix
        return None

    def __contains__(self, name: object) -> bool:
        return name in self._entries or self._family(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def names(self) -> list[str]:
        return sorted(self._entries)

    def families(self) -> list[str]:
        return sorted(f"{prefix}:<...>" for prefix in self._families)

    def get(self, name: str) -> T:
        family = self._family(name)
        if name not in self._entries and family is None:
            raise HarnessError(unknown(self.kind, name, self._entries))
        if name not in self._loaded:
            module, _, attr = (self._entries.get(name) or self._families[family]).partition(":")
            found = getattr(importlib.import_module(module), attr)
            self._loaded[name] = found(name.partition(":")[2]) if family else found
        return self._loaded[name]


TASK_TYPES: Registry[Any] = Registry(
    "task type",
    {
        "classification": "harness.tasks.types.classification:ClassificationType",
        "token_classification": "harness.tasks.types.tokens:TokenClassificationType",
        "question_answering": "harness.tasks.types.qa:QuestionAnsweringType",
        "seq2seq": "harness.tasks.types.seq2seq:Seq2SeqType",
    },
)

def task_type_of(card: TaskCard) -> Any:
    """The task type (harness/tasks/types) that handles `card`, bound to it."""
    return TASK_TYPES.get(card.type)(card)


STRATEGIES: Registry[Any] = Registry(
    "strategy",
    {
        "full": "harness.strategies.full:Full",
        "head_only": "harness.strategies.freezing:HeadOnly",
        "freeze": "harness.strategies.freezing:Freeze",
        "top_k": "harness.strategies.freezing:TopK",
        "gradual_unfreezing": "harness.strategies.freezing:GradualUnfreezing",
        "llrd": "harness.strategies.freezing:LLRD",
        "ln_tuning": "harness.strategies.norms:LNTuning",
        "bitfit": "harness.strategies.bitfit:BitFit",
        "lora": "harness.strategies.peft_methods:LoRA",
        "adapters": "harness.strategies.adapters:BottleneckAdapters",
        "zero_shot": "harness.strategies.prompting:ZeroShot",
        "in_context": "harness.strategies.prompting:InContext",
        "adalora": "harness.strategies.peft_methods:AdaLoRA",
        "ia3": "harness.strategies.peft_methods:IA3",
        "loha": "harness.strategies.peft_methods:LoHa",
        "lokr": "harness.strategies.peft_methods:LoKr",
        "vera": "harness.strategies.peft_methods:VeRA",
        "oft": "harness.strategies.peft_methods:OFT",
        "boft": "harness.strategies.peft_methods:BOFT",
        "prefix_tuning": "harness.strategies.peft_methods:PrefixTuning",
        "prompt_tuning": "harness.strategies.peft_methods:PromptTuning",
        "p_tuning": "harness.strategies.peft_methods:PTuning",
    },
)

# Recipe parts: what a recipe adds to any method that trains (harness.strategies.recipe). Each is
# also a strategy name alone: full fine-tuning with that part.
PARTS: Registry[Any] = Registry(
    "recipe part",
    {
        "augment": "harness.strategies.augment:Augment",
        "back_translation": "harness.strategies.back_translation:BackTranslation",
        "distill": "harness.strategies.distill:Distill",
        "multitask": "harness.strategies.multitask:MultiTask",
    },
)

METRICS: Registry[Any] = Registry(
    "metric",
    {
        "accuracy": "harness.metrics.classification:ACCURACY",
        "f1": "harness.metrics.classification:F1",
        "f1_macro": "harness.metrics.classification:F1_MACRO",
        "mcc": "harness.metrics.classification:MCC",
        "pearson": "harness.metrics.classification:PEARSON",
        "spearman": "harness.metrics.classification:SPEARMAN",
        "seqeval_f1": "harness.metrics.ner:SEQEVAL_F1",
        "seqeval_precision": "harness.metrics.ner:SEQEVAL_PRECISION",
        "seqeval_recall": "harness.metrics.ner:SEQEVAL_RECALL",
        "seqeval_f1_strict": "harness.metrics.ner:SEQEVAL_F1_STRICT",
        "token_accuracy": "harness.metrics.ner:TOKEN_ACCURACY",
        "squad_exact": "harness.metrics.squad:SQUAD_EXACT",
        "squad_f1": "harness.metrics.squad:SQUAD_F1",
        "squad_v2_exact": "harness.metrics.squad:SQUAD_V2_EXACT",
        "squad_v2_f1": "harness.metrics.squad:SQUAD_V2_F1",
        "rouge1": "harness.metrics.generation:ROUGE1",
        "rouge2": "harness.metrics.generation:ROUGE2",
        "rougeL": "harness.metrics.generation:ROUGEL",
        "rougeLsum": "harness.metrics.generation:ROUGELSUM",
        "bleu": "harness.metrics.generation:BLEU",
        "chrf": "harness.metrics.generation:CHRF",
    },
    families={"evaluate": "harness.metrics.external:load"},
)

GENERATORS: Registry[Any] = Registry(
    "generated task",
    {
        "sentiment": "harness.tasks.generated:sentiment",
        "same_subject": "harness.tasks.generated:same_subject",
        "similarity": "harness.tasks.generated:similarity",
        "entities": "harness.tasks.generated:entities",
        "facts": "harness.tasks.generated:facts",
        "headline": "harness.tasks.generated:headline",
        "reorder": "harness.tasks.generated:reorder",
    },
)


# --------------------------------------------------------------------------- task catalogue

CATALOGUE_DIR = Path(__file__).resolve().parents[2] / "tasks"


class TaskCatalogue:
    """Task cards found under one or more folders, by name; a card path also works as a name."""

    def __init__(self, *roots: Path):
        self.roots = [Path(r) for r in roots] or [CATALOGUE_DIR]

    @cached_property
    def paths(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for root in self.roots:
            for path in sorted(root.rglob("*.yaml")):
                name = path.stem
                if name in found:
                    raise ConfigError(f"{path}: task {name!r} is already defined in {found[name]}")
                found[name] = path
        return found

    def names(self) -> list[str]:
        return sorted(self.paths)

    def get(self, name: str, base: Path | None = None) -> TaskCard:
        """The card called `name`, or the card file `name` (relative to `base`) if it ends in .yaml."""
        if name.endswith((".yaml", ".yml")):
            path = Path(name).expanduser()
            if not path.is_absolute() and base is not None:
                path = base / path
            if not path.exists():
                raise ConfigError(f"task card {name!r}: no such file {path}")
        elif name in self.paths:
            path = self.paths[name]
        else:
            raise ConfigError(unknown("task", name, self.paths))
        return load_card(path)


def load_card(path: Path) -> TaskCard:
    data = read_yaml(path)
    card = parse(TaskCard, data, str(path))
    if card.name != path.stem:
        raise ConfigError(f"{path}: name: {card.name!r} must match the file name {path.stem!r}")
    task_type = TASK_TYPES.get(card.type) if card.type in TASK_TYPES else None
    if task_type is None:
        raise ConfigError(f"{path}: type: {unknown('task type', card.type, TASK_TYPES.names())}")
    card = card.model_copy(update={"path": path.resolve()})
    for metric in card.metrics:
        if metric not in METRICS:
            raise ConfigError(f"{path}: metrics: {unknown('metric', metric, METRICS.names())}")
    if card.source.generate:
        if card.source.generate not in GENERATORS:
            raise ConfigError(f"{path}: source.generate: {unknown('generated task', card.source.generate, GENERATORS.names())}")
        accepted = set(inspect.signature(GENERATORS.get(card.source.generate)).parameters) - {"seed"}
        for key in card.source.options:
            if key not in accepted:
                raise ConfigError(f"{path}: source.options: unknown key {key!r}{did_you_mean(key, accepted)}")
    parse(task_type.Options, card.options, str(path), prefix=("options",))
    problem = task_type.check_card(card)
    if problem:
        raise ConfigError(f"{path}: {problem}")
    return card
