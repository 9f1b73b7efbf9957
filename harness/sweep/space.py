"""Search spaces of a sweep: the points a grid or a seeded random search tries, and how a point
splits into training settings and strategy arguments.

A space maps keys to a list of values (grid and random) or a `Range` (random only). Keys name
train settings (`learning_rate`, dotted for nested ones: `early_stopping.patience`) or, for any
other name, strategy arguments (`r`); `strategy.<arg>` names a strategy argument whose name is
also a train setting (`strategy.batch_size` of zero_shot).
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy as np

from harness.config.schemas import Range, Sweep, TrainConfig

Point = dict[str, Any]  # space key -> the value tried


def merged(sweep: Sweep, model: str, task: str, strategy: str | tuple[str, ...],
           recipe: str | None = None) -> dict[str, list[Any] | Range] | None:
    """The space of one cell: every space whose `when` matches it, later keys replacing earlier
    ones; None when no space matches (the cell is not swept). See When.matches."""
    found = [s.space for s in sweep.spaces if s.when.matches(model, task, strategy, recipe)]
    if not found:
        return None
    space: dict[str, list[Any] | Range] = {}
    for one in found:
        space |= one
    return space


def size(space: dict[str, list[Any] | Range]) -> float:
    """How many points the space holds (inf with a range)."""
    return math.prod(len(v) if isinstance(v, list) else math.inf for v in space.values())


def points(space: dict[str, list[Any] | Range], search: str, budget: int, seed: int) -> list[Point]:
    """The points a sweep tries, in a fixed order. Grid: every point (the caller refuses a grid
    larger than the budget). Random: `budget` distinct points drawn with `seed`; a space of at most
    `budget` points is tried whole. Draws are prefix-stable: a larger budget keeps the earlier points."""
    keys = list(space)
    finite = size(space)
    if finite <= budget or search == "grid":
        return [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]
    rng = np.random.default_rng(seed)
    if finite < math.inf:
        grid = list(itertools.product(*(space[k] for k in keys)))
        return [dict(zip(keys, grid[i])) for i in rng.permutation(len(grid))[:budget]]
    found: dict[str, Point] = {}
    for _ in range(100 * budget):
        point = {k: _draw(space[k], rng) for k in keys}
        found.setdefault(key_of(point), point)
        if len(found) == budget:
            break
    return list(found.values())


def _draw(values: list[Any] | Range, rng: np.random.Generator) -> Any:
    if isinstance(values, list):
        return values[int(rng.integers(len(values)))]
    low, high = (math.log(values.low), math.log(values.high)) if values.log else (values.low, values.high)
    x = float(rng.uniform(low, high))
    x = math.exp(x) if values.log else x
    return int(round(x)) if values.integer else float(f"{x:.3g}")  # 3 significant digits: readable ids and rows


def key_of(point: Point) -> str:
    """A point as one string, the same for equal points (what selection groups trials by)."""
    return json.dumps(point, sort_keys=True, default=str)


def shown(point: Point) -> str:
    """A point as a reader sees it, keys sorted (as stored records hold them): 'learning_rate=0.001, r=16'."""
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(point.items())) \
        or "defaults"


def split(point: Point) -> tuple[dict[str, Any], dict[str, Any]]:
    """(train settings as a nested update, strategy arguments) of a point."""
    train: dict[str, Any] = {}
    args: dict[str, Any] = {}
    for key, value in point.items():
        if key.startswith("strategy."):
            args[key.removeprefix("strategy.")] = value
        elif key.split(".")[0] in TrainConfig.model_fields:
            *parents, last = key.split(".")
            node = train
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        else:
            args[key] = value
    return train, args
