"""A cell's recipe: a method (what trains) with the parts a suite adds to it, and how the base is held.

A suite entry under `strategies` names a method or a part (`use:`, else its label) and may add
parts and a base beside the method's own arguments:

    lora:      {r: 8}                                     # a method alone
    augment:   {fraction: 0.5}                            # a part alone: full fine-tuning with it
    lora_eda:  {use: lora, r: 8, augment: {fraction: 0.5}}
    lora_kd:   {use: lora, distill: {teacher: {model: minilm, strategy: full}}}
    qlora:     {use: lora, r: 8, base: nf4}
    rte_after_mnli: {use: full, start: {strategy: full, task: mnli}}   # intermediate-task transfer
    mt_lora:   {use: lora, r: 8, multitask: {}}            # the suite's tasks in one model, one LoRA

A method or a part alone hashes as it always did (its name and its arguments), so every run id of
a single technique is unchanged; a composed recipe hashes the method's arguments with each part's
and the base under their keys. Each part is validated on its own; what cannot combine is refused
in preflight (`Recipe.check`) with the reason, cell by cell.
"""

from __future__ import annotations

import importlib.util
from importlib.metadata import version
from typing import Any

from packaging.version import Version

from harness.base.digest import bad_run_reference
from harness.base.errors import ConfigError, unknown
from harness.config.parsing import Strict, parse
from harness.config.registry import PARTS, STRATEGIES
from harness.strategies import Context, NoArgs, Part, Strategy

# How the frozen backbone is held: its weights' storage while a method trains around it.
BASES = ("fp32", "bf16", "int8", "nf4")
QUANTIZED = ("int8", "nf4")
# bitsandbytes trains through 4-bit and 8-bit layers on a CPU from this release (its CPU backend)
BITSANDBYTES_CPU = Version("0.48.0")


class StartCell(Strict):
    """Where the body starts: the cell of row `strategy` on `task` (same model and seed), trained first."""

    strategy: str
    task: str


class Recipe(Strategy):
    """A method with its data and objective parts and its base: the one strategy a cell runs.
    Everything the method decides (what trains, how it is saved, how it predicts) is the
    method's; the parts add rows and a loss."""

    def __init__(self, method: Strategy, parts: dict[str, Part] | None = None, base: str = "fp32",
                 alone: str | None = None, start: StartCell | str | None = None):
        super().__init__(method.args)
        self.method, self.parts, self.base, self.alone = method, dict(parts or {}), base, alone
        self.start = start  # a cell of the suite (resolved to 'run:<id>' when the grid expands), or None
        self.name = alone or method.name
        self.trains, self.adapts = method.trains, method.adapts
        kinds = [k for k in [method.task_types, *(p.task_types for p in self.parts.values())] if k is not None]
        self.task_types = frozenset.intersection(*kinds) if kinds else None

    @property
    def data(self) -> dict[str, Part]:
        """The data parts, in the recipe's order."""
        return {name: part for name, part in self.parts.items() if part.role == "data"}

    @property
    def objective(self) -> Part | None:
        return next((p for p in self.parts.values() if p.role == "objective"), None)

    @property
    def together(self) -> Part | None:
        """The tasks part (multitask): which of the suite's tasks train with this one, in one model."""
        return next((p for p in self.parts.values() if p.role == "tasks"), None)

    @property
    def joint(self) -> bool:
        """Whether the suite's tasks train together as one model (a job of several cells)."""
        return self.together is not None

    @property
    def own_loss(self) -> bool:
        return self.objective is not None

    def resolved(self) -> dict[str, Any]:
        if self.alone:  # a part alone, spelled as a strategy: hashed as it always was
            return self.parts[self.alone].resolved()
        out = self.method.resolved()
        out |= {name: part.resolved() for name, part in self.parts.items()}
        if self.start is not None:
            out["start"] = self.start if isinstance(self.start, str) else self.start.model_dump(mode="json")
        return out | ({"base": self.base} if self.base != "fp32" else {})

    def arguments(self) -> dict[str, Any]:
        """{key path in the suite entry: validated arguments} of the method and every part."""
        if self.alone:
            return {"": self.parts[self.alone].args}
        return {"": self.method.args} | {name: part.args for name, part in self.parts.items()}

    def describe(self) -> str:
        """What the recipe is, in one line: 'lora + augment + distill on an nf4 base'."""
        parts = " + ".join([self.method.name, *self.parts])
        start = f" from {self.start if isinstance(self.start, str) else self.start.task}" if self.start else ""
        return parts + (f" on a {self.base} base" if self.base != "fp32" else "") + start

    def check(self, model) -> str | None:
        return self._combination() or self.method.check(model) or next(
            (reason for part in self.parts.values() if (reason := part.check(model))), None)

    def _combination(self) -> str | None:
        """Why the method, parts and base cannot go together, or None."""
        if (self.parts or self.start) and not self.method.trains:
            return (f"{' and '.join([*self.parts, *(['start'] if self.start else [])])} need a method that trains; "
                    f"{self.method.name} predicts without training")
        if self.joint and (reason := self._joint_combination()):
            return reason
        if self.base in QUANTIZED:
            if not self.method.adapts:
                return (f"base {self.base} holds the backbone's weights quantized and frozen: only a peft method "
                        f"(lora, ia3, ...) trains around them, not {self.method.name}")
            return bitsandbytes_missing()
        return None

    def _joint_combination(self) -> str | None:
        """Why the tasks part cannot go with the rest of the recipe, or None."""
        if self.start:
            return f"start: {self.name} trains several tasks in one model; a start body is for one task's model"
        if self.objective is not None:
            return (f"{self.objective.name} and multitask: a teacher scores one task, and multitask trains "
                    f"several in one model")
        if isinstance(self.method.args, dict) and self.method.args.get("merge"):
            return (f"merge and multitask: the tasks share {self.method.name}'s weights, which merging would fold "
                    f"into the shared body once per task; evaluate unmerged")
        return None

    def prepare(self, context: Context) -> None:
        for part in self.parts.values():
            part.prepare(context)

    def augment(self, rows, task_type, seed: int) -> tuple[Any, dict | None]:
        """The training rows after every data part, in the recipe's order, and what each did."""
        done = {}
        for name, part in self.data.items():
            rows, done[name] = part.augment(rows, task_type, seed)
        if not done:
            return rows, None
        return rows, next(iter(done.values())) if len(done) == 1 else done

    def loss(self, inputs: dict, outputs):
        return self.objective.loss(inputs, outputs)

    def apply(self, model, task_type):
        return self.method.apply(self._prepared(model), task_type)

    def _prepared(self, model):
        """peft's own preparation of a k-bit base (norms in fp32, input gradients), else `model`."""
        if self.base not in QUANTIZED:
            return model
        import peft

        return peft.prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)

    # everything else is the method's
    def architecture(self, task_type):
        return self.method.architecture(task_type)

    def parameter_groups(self, model):
        return self.method.parameter_groups(model)

    def trained(self, model):
        return self.method.trained(model)

    def before_evaluate(self, model):
        return self.method.before_evaluate(model)

    def callbacks(self, model):
        return self.method.callbacks(model)

    def predict(self, *args, **kwargs):
        return self.method.predict(*args, **kwargs)

    @property
    def probabilities(self):
        return self.method.probabilities

    def mixing(self, sizes):
        return self.together.mixing(sizes)

    def save_trained(self, model, folder):
        return self.method.save_trained(model, folder)

    def load_trained(self, model, task_type, folder):
        return self.method.load_trained(self._prepared(model), task_type, folder)


def bitsandbytes_missing() -> str | None:
    """Why bitsandbytes cannot hold a quantized base in this environment, or None."""
    import torch

    if importlib.util.find_spec("bitsandbytes") is None:
        return "a quantized base needs bitsandbytes (pip install 'bitsandbytes>=0.48')"
    if not torch.cuda.is_available() and Version(version("bitsandbytes")) < BITSANDBYTES_CPU:
        return (f"bitsandbytes {version('bitsandbytes')} cannot train through quantized layers on a CPU "
                f"(its CPU backend came in {BITSANDBYTES_CPU})")
    return None


def known_names() -> list[str]:
    return sorted(STRATEGIES.names() + PARTS.names())


def build(name: str, raw: dict[str, Any] | None, where: str, key: str) -> Recipe:
    """The recipe a suite entry asks for: `name` (a method or a part) with `raw`, its arguments and
    any parts and base beside them. Errors name `where` and `key`."""
    raw = dict(raw or {})
    if name not in STRATEGIES and name not in PARTS:
        raise ConfigError(f"{where}: {key}: {unknown('strategy', name, known_names())}")
    parts_raw = {part: raw.pop(part) for part in list(raw) if part in PARTS and part != name}
    base, start = raw.pop("base", "fp32"), raw.pop("start", None)
    if base not in BASES:
        raise ConfigError(f"{where}: {key}.base: {unknown('base', str(base), list(BASES))}")
    if isinstance(start, str):
        reason = bad_run_reference(start) if start.startswith("run:") else \
            f"{start!r} is neither run:<run id> nor {{strategy, task}}"
        if reason:
            raise ConfigError(f"{where}: {key}.start: {reason}")
    elif start is not None:
        start = parse(StartCell, start, where, prefix=(*key.split("."), "start"))
    if name in PARTS:  # a part alone is spelled as a strategy: full fine-tuning with it
        parts_raw = {name: raw} | parts_raw
        method: Strategy = STRATEGIES.get("full")(NoArgs())
    else:
        method = STRATEGIES.get(name).from_suite(raw, where, key)
    parts = {part: PARTS.get(part).from_suite(args or {}, where, key if part == name else f"{key}.{part}")
             for part, args in parts_raw.items()}
    alone = name if name in PARTS and len(parts) == 1 and base == "fp32" and start is None else None
    return Recipe(method, parts, base, alone, start)
