"""Consent to run code that a suite or task card names.

Suites and cards are shared files, run the way lm-eval task YAMLs are: by people who did not write
them. Three things they can name would execute Python: a model with `trust_remote_code: true` (its
folder's or hub repository's `configuration_*.py` / `modeling_*.py`), an `evaluate:` metric (a
metric script, a local file or one downloaded from the hub), and a back-translation model with
`trust_remote_code`. None of them runs unless the person running harness passes `--trust-code` on
the command line (`grant`); `sources` lists them so that `harness plan` can say what the flag
would allow and why.

The consent travels to Ray workers in the HARNESS_TRUST_CODE environment variable, and is checked
again where the code would be loaded (`require`), so a stored spec or a shared store cannot load
code that the suite check did not see.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.base.errors import HarnessError

ENV = "HARNESS_TRUST_CODE"
FLAG = "--trust-code"


class UntrustedCode(HarnessError):
    """A suite or card names code to run and the command line did not allow it: one line per source."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join([*lines, f"nothing was run; pass {FLAG} to allow the code above "
                                             f"(read it first: it runs with your permissions)"]))


def grant(allowed: bool = True) -> None:
    """The person running harness allows the code its suite names (--trust-code), or not."""
    if allowed:
        os.environ[ENV] = "1"
    else:
        os.environ.pop(ENV, None)


def granted() -> bool:
    return os.environ.get(ENV) == "1"


def require(what: str) -> None:
    """Refuse, in one line, to load `what` (code) without consent."""
    if not granted():
        raise UntrustedCode([f"{what} would run code"])


def sources(suite, where: str, cards: dict, strategies: dict) -> list[str]:
    """One line per code-bearing source a loaded suite would use: the file and key that names it,
    and what would run. (`suite`: a config.Suite; `cards`: name -> TaskCard; `strategies`: label ->
    (name, arguments, Strategy).)"""
    lines = []
    for alias, spec in suite.models.items():
        if spec.trust_remote_code:
            lines.append(f"{where}: models.{alias}: trust_remote_code runs the Python files of {spec.source!r} "
                         f"(configuration_*.py, modeling_*.py, tokenization_*.py)")
    for card in cards.values():
        for i, metric in enumerate(card.metrics):
            if metric.startswith("evaluate:"):
                script = metric.removeprefix("evaluate:").partition("#")[0]
                origin = "a local file" if Path(script).exists() else "downloaded from the Hugging Face hub"
                lines.append(f"{card.path or card.name}: metrics.{i}: {metric!r} runs a Python metric script "
                             f"({origin})")
    for label, (_, _, strategy) in strategies.items():
        for key, spec in _model_specs(strategy.arguments(), ""):
            if getattr(spec, "trust_remote_code", False):
                lines.append(f"{where}: strategies.{label}.{key}: trust_remote_code runs the Python files of "
                             f"{spec.source!r}")
    return lines


def _model_specs(value, key: str):
    """(key path, model spec) of every model a strategy's arguments name (back-translation's)."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        if "trust_remote_code" in type(value).model_fields:
            yield key, value
            return
        for name in type(value).model_fields:
            yield from _model_specs(getattr(value, name), f"{key}.{name}".lstrip("."))
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _model_specs(item, f"{key}.{name}".lstrip("."))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _model_specs(item, f"{key}.{i}".lstrip("."))
