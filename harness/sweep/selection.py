"""Which setting a sweep chose: a pure function of its trials' records.

Each (model, task, row) group's candidates are the settings whose trials are done on every trial
seed; the chosen one has the best mean dev score of the task's primary metric (ties: the first in
the space's order). Eval scores are carried along for reports (the eval score of the dev-best for
a budget) and are never read by the choice. `harness run` (to decide the finals), `harness
leaderboard` and `Results.from_store` all choose with this one function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from harness.sweep.space import key_of, shown

Group = tuple[str, str, str]  # model, task, row (strategy label)


@dataclass(frozen=True)
class TrialScore:
    """One done trial run: its group, setting, seed and scores."""

    run_id: str
    group: Group
    point: str  # space.key_of of the setting
    setting: str  # the setting as a reader sees it
    seed: int
    seeds: tuple[int, ...]  # the sweep's trial seeds
    settings: int  # settings the group's space gives
    order: int  # the setting's place in the space's order
    dev: float  # primary metric on dev
    eval: float  # primary metric on eval (reports only)
    seconds: float  # train seconds
    epochs: float = 0.0  # epochs it trained: its compute in trial-epochs
    pruned: bool = False  # stopped early on dev by a pruned sweep (harness.sweep.pruning)
    planned_epochs: float = 0.0  # epochs it would have trained had it not been stopped
    compute: float | None = None  # a pruned sweep's budget of trial-epochs per group and trial seed


@dataclass(frozen=True)
class Setting:
    """A setting of a group with every trial seed done: its means over those seeds."""

    point: str
    setting: str
    order: int
    dev: float
    eval: float
    seconds: float  # train seconds of its trials, summed


@dataclass(frozen=True)
class Choice:
    point: str  # key of the chosen setting
    setting: str
    dev: float  # its mean dev score
    eval: float  # its trials' mean eval score (the finals are what the leaderboard reports)
    tried: int  # settings with every trial seed done: the candidates
    settings: int  # settings the space gives
    seconds: float  # train seconds of every trial run of the group
    candidates: tuple[Setting, ...]  # in the space's order
    epochs: float = 0.0  # trial-epochs every trial run of the group trained: the compute the sweep spent
    pruned: int = 0  # settings stopped early on dev on some trial seed: no candidates
    spent: bool = False  # a pruned sweep's compute is spent: its settings not run never will be


def trial_scores(frame: pd.DataFrame, primaries: dict[str, str], labels: dict[str, tuple] | None = None) -> list[TrialScore]:
    """The done trial runs of a store frame (Store.frame) whose seed is one of their sweep's trial
    seeds. `primaries`: task -> primary metric; `labels`: run id -> (model, row, task) to label them
    as a suite does now (default: as when they ran)."""
    out = []
    for record in frame[frame.status == "done"].itertuples():
        sweep = record.spec.get("sweep")
        if not sweep or record.seed not in sweep["seeds"]:
            continue
        model, row, task = (labels or {}).get(record.id, (record.model, record.strategy, record.task))
        primary = primaries[task]
        # a diverged trial has no score to choose by, and a stopped one no final score: their settings
        # are no candidates (a failed trial; in Optuna, the best trial is a complete one)
        pruned = bool((record.info.get("pruning") or {}).get("pruned"))
        dev = math.nan if record.info.get("diverged") or pruned else \
            record.info.get("dev_metrics", {}).get(primary, math.nan)
        point = sweep["point"]
        out.append(TrialScore(record.id, (model, task, row), key_of(point), shown(point), record.seed,
                              tuple(sweep["seeds"]), sweep["settings"], sweep.get("order", 0), dev,
                              record.metrics[primary], record.cost.get("seconds", {}).get("train", 0.0),
                              float(record.info.get("epochs") or 0.0), pruned, float(record.spec["train"]["epochs"]),
                              (sweep.get("prune") or {}).get("compute")))
    return out


def settings(scores: list[TrialScore]) -> dict[Group, list[Setting]]:
    """Each group's settings done on every trial seed, in the space's order."""
    runs: dict[Group, dict[str, list[TrialScore]]] = {}
    for score in scores:
        runs.setdefault(score.group, {}).setdefault(score.point, []).append(score)
    out: dict[Group, list[Setting]] = {}
    for group, by_point in runs.items():
        found = []
        for point, mine in by_point.items():
            if {s.seed for s in mine} >= set(mine[0].seeds) and not any(math.isnan(s.dev) for s in mine):
                found.append(Setting(point, mine[0].setting, mine[0].order, _mean(s.dev for s in mine),
                                     _mean(s.eval for s in mine), sum(s.seconds for s in mine)))
        out[group] = sorted(found, key=lambda s: s.order)
    return out


def choose(scores: list[TrialScore]) -> dict[Group, Choice]:
    """{group: its choice} for every group with at least one candidate."""
    seconds: dict[Group, float] = {}
    epochs: dict[Group, float] = {}
    pruned: dict[Group, set[str]] = {}
    planned: dict[Group, int] = {}
    for score in scores:
        seconds[score.group] = seconds.get(score.group, 0.0) + score.seconds
        epochs[score.group] = epochs.get(score.group, 0.0) + score.epochs
        pruned.setdefault(score.group, set()).update([score.point] if score.pruned else [])
        planned[score.group] = score.settings
    choices = {}
    for group, candidates in settings(scores).items():
        if candidates:
            best = max(candidates, key=lambda s: (s.dev, -s.order))
            choices[group] = Choice(best.point, best.setting, best.dev, best.eval, len(candidates), planned[group],
                                    seconds[group], tuple(candidates), epochs[group], len(pruned[group]),
                                    _spent([s for s in scores if s.group == group]))
    return choices


def _spent(scores: list[TrialScore]) -> bool:
    """Whether a pruned sweep's group has no compute left for another trial on some trial seed (its
    trials on a seed run one after another until the next would not fit: harness.sweep.grid)."""
    if not scores or scores[0].compute is None:
        return False
    used: dict[int, float] = {}
    for score in scores:
        used[score.seed] = used.get(score.seed, 0.0) + score.epochs
    smallest = min(s.planned_epochs for s in scores)
    return any(total + smallest > scores[0].compute + 1e-9 for total in used.values())


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)
