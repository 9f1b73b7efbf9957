"""Strict models and their loading: `parse` either returns a fully typed object or raises
`ConfigError` with one line: the file, the key path and what is wrong, with the closest known
names for an unknown key.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Union

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.base.errors import ConfigError, did_you_mean


class Strict(BaseModel):
    """A schema that refuses unknown keys and is frozen once loaded."""

    # `.inf` and `.nan` are valid YAML floats, and a learning rate of inf trains a model of NaNs
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


M = typing.TypeVar("M", bound=BaseModel)


def parse(schema: type[M], data: dict[str, Any], where: str, prefix: tuple = ()) -> M:
    """Validate `data` against `schema`; on failure raise one line naming `where` and the key path."""
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_error(exc, schema, where, prefix)) from None


def format_error(exc: ValidationError, schema: type[BaseModel], where: str, prefix: tuple = ()) -> str:
    # With unions (a model given as a string or a mapping) pydantic reports one error per member;
    # the most useful is an unknown key, then a missing one, then the rest.
    rank = {"extra_forbidden": 0, "missing": 1}
    errors = sorted(exc.errors(), key=lambda e: (rank.get(e["type"], 2), -len(e["loc"])))
    first = errors[0]
    raw = tuple(p for p in first["loc"] if not _is_member_tag(p))
    loc = tuple(prefix) + raw
    key = ".".join(str(p) for p in loc) or "(top level)"
    if first["type"] == "extra_forbidden":
        known = known_keys(schema, raw[:-1])
        message = f"unknown key {loc[-1]!r}{did_you_mean(str(loc[-1]), known)}"
        key = ".".join(str(p) for p in loc[:-1]) or "(top level)"
    elif first["type"] == "missing":
        message = "required key is missing"
    else:
        message = first["msg"].removeprefix("Value error, ")
        if "input" in first and not isinstance(first["input"], (dict, list)):
            message += f" (got {first['input']!r})"
    others = len({tuple(e["loc"][:1]) for e in errors}) - 1
    more = f" (and problems under {others} more key{'s' * (others > 1)})" if others > 0 else ""
    return f"{where}: {key}: {message}{more}"


def _is_member_tag(part: Any) -> bool:
    """pydantic names the union member in an error's loc ('str', 'ModelSpec', 'list[str]')."""
    return isinstance(part, str) and (
        part in {"str", "int", "float", "bool", "none"}
        or part.startswith(("list[", "dict["))
        or any(part == cls.__name__ for cls in _all_models())
    )


def _all_models() -> list[type[BaseModel]]:
    found, todo = [], [Strict]
    while todo:  # every schema, however deep its base class
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return found


def known_keys(schema: type[BaseModel], loc: tuple) -> list[str]:
    """The field names of the model found by walking `loc` down from `schema`."""
    current: Any = schema
    for part in loc:
        model = _model_in(current)
        if model is not None and isinstance(part, str) and part in model.model_fields:
            current = model.model_fields[part].annotation
        else:  # a list index or a dict key: step into the element type
            current = _element_type(current)
            if current is None:
                return []
    model = _model_in(current)
    return [name for name, f in model.model_fields.items() if not f.exclude] if model else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if (m := _model_in(arg)) is not None:
                return m
    return None


def _element_type(annotation: Any) -> Any:
    for arg in typing.get_args(annotation):
        if _model_in(arg) is not None:
            return arg
        inner = typing.get_args(arg)
        if inner:
            return inner[-1]
    args = typing.get_args(annotation)
    return args[-1] if args else None
