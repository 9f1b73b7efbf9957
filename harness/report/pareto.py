"""The Pareto frontier of score against a cost: the rows no other row beats on both.

A row is on the frontier when no other row costs no more and scores no less, and is better in one
of the two (strict dominance): two rows with the same cost and score are both on it. The cost view
marks its frontier rows in every export, and the plots draw it as a step line.
"""

from __future__ import annotations

import math


def dominated(point: tuple[float, float], other: tuple[float, float]) -> bool:
    """Whether `other` (cost, score) beats `point`: no dearer, no worse, and better in one."""
    return other[0] <= point[0] and other[1] >= point[1] and (other[0] < point[0] or other[1] > point[1])


def frontier(points: list[tuple[float, float]]) -> list[bool]:
    """For each (cost, score), whether it is on the frontier; a point with a missing value is not
    on it and beats no other."""
    valid = [not any(v is None or math.isnan(v) for v in p) for p in points]
    known = [p for p, ok in zip(points, valid) if ok]
    return [ok and not any(dominated(p, q) for q in known) for p, ok in zip(points, valid)]


def pareto(pts: list[dict]) -> list[dict]:
    """Of points {"x": cost, "y": score, ...}, those on the frontier, by increasing cost."""
    on = frontier([(p["x"], p["y"]) for p in pts])
    return sorted((p for p, keep in zip(pts, on) if keep), key=lambda p: (p["x"], -p["y"]))
