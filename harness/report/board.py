"""What a leaderboard is, whatever built it and whatever renders it: a Board of rows and Columns,
each Column a Cell per row (harness.report.leaderboard builds them, harness.report.export and html
render them)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from harness.report import stats

FRONTIER = "◆"  # a cost on the Pareto frontier of score against that cost


@dataclass
class Cell:
    mean: float = math.nan
    std: float = math.nan
    low: float = math.nan
    high: float = math.nan
    n: int = 0
    place: int = 0  # 1 best, 2 second best in its column; 0 otherwise
    best_set: bool = False  # in its column's best set (harness.report.best), the best mean included
    p_value: float = math.nan  # step-down adjusted p-value of "this row is a best"; nan: untested
    test: str = ""  # the procedure that gave it; "" when the cell is untested
    outliers: list[int] = field(default_factory=list)  # seeds far from the row's others, or whose run diverged
    dropped: int = 0  # runs with no score (NaN), left out of every statistic
    frontier: bool = False  # a cost cell on the Pareto frontier of score against its column (harness.report.pareto)

    @property
    def tied(self) -> bool:
        """In the best set without being the best mean: marked †."""
        return self.best_set and self.place != 1


@dataclass
class Column:
    key: str
    title: str
    kind: str  # score | count | share | megabytes | seconds | rank | rate
    cells: list[Cell]
    noise: stats.SeedNoise | None = None  # the seed variance its best set pooled; None: no set
    untested: int = 0  # rows with runs but no best-set test (no stored predictions, or other examples)


@dataclass
class Board:
    title: str
    index: list[str]  # names of the row label parts, e.g. ["model", "strategy"]
    rows: list[tuple[str, ...]]
    columns: list[Column]
    notes: list[str] = field(default_factory=list)
    interval: str = stats.INTERVAL  # what a score cell's low / high are

    def column(self, key: str) -> Column:
        return next(c for c in self.columns if c.key == key)


@dataclass
class Listing:
    """Examples listed with their text (harness.report.examples): each item a label and a text; `more`
    items were left out."""

    title: str
    items: list[tuple[str, str]]
    more: int = 0
    notes: list[str] = field(default_factory=list)
