"""What a suite runs and reports, given its store: with a `sweep`, each tuned cell's trials, the
setting they chose (harness.sweep.selection, from the store alone) and that setting on every suite seed.

A trial is a cell like any other: its own content id, so it resumes, skips and runs on Ray; a new
value in a space adds only the new trials. It is scored on dev (and on eval, which reports read
and the choice never does). A group's finals run once none of its trials is left to run; the
leaderboard shows each group's current choice.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, replace

from harness.base.device import CPU_COMPUTE, Target
from harness.base.errors import literal
from harness.config.spec import RunSpec
from harness.config.suite import LoadedSuite, expand
from harness.store.database import Store
from harness.sweep.pruning import earlier_of
from harness.sweep.selection import Choice, Group, choose, trial_scores
from harness.sweep.space import key_of, shown


@dataclass(frozen=True)
class Grid:
    cells: list[RunSpec]  # to plan now: cells not tuned, every trial, the finals of groups whose trials are over
    reported: list[RunSpec]  # what the leaderboard shows: cells not tuned, each group's choice on the suite seeds
    trials: list[RunSpec] = field(default_factory=list)
    choices: dict[Group, Choice] = field(default_factory=dict)
    waiting: dict[Group, int] = field(default_factory=dict)  # groups whose finals wait: their trials left to run
    seeds: tuple[int, ...] = ()  # the suite's seeds (the finals')
    # cells held back until a cell they learn from is done: {run id: that run id}; those that cannot run: {id: why}
    learners: dict[str, str] = field(default_factory=dict)
    orphans: dict[str, str] = field(default_factory=dict)

    @property
    def pending(self) -> bool:
        """Whether running what is planned now may let more cells join (finals, learners)."""
        return bool(self.waiting) or len(self.learners) > len(self.orphans)

    def waiting_lines(self) -> list[str]:
        """What the sweep and the learners still wait on, one line per group (rich markup, names
        escaped)."""
        lines = [f"[cyan]tuning[/] {literal(model)} · {literal(task)} · {literal(row)}: {left} trial(s) left; then the "
                 f"setting with the best mean dev score runs on seeds {', '.join(map(str, self.seeds))}"
                 for (model, task, row), left in self.waiting.items()]
        if waiting := len(self.learners) - len(self.orphans):
            lines.append(f"[cyan]learning[/] {waiting} cell(s) wait for the teacher or intermediate-task cells "
                         f"they learn from")
        for why, count in Counter(self.orphans.values()).items():
            lines.append(f"[yellow]learning[/] {count} cell(s) cannot run: {literal(why)}")
        return lines


def group_of(spec: RunSpec) -> Group:
    return spec.model, spec.task, spec.strategy


def is_trial(spec: RunSpec) -> bool:
    return spec.sweep is not None and spec.seed in spec.sweep.seeds


def role_of(spec: RunSpec) -> str:
    """'trial: <setting>', 'chosen: <setting>' (a final on a seed no trial ran), or '' (not tuned)."""
    if spec.sweep is None:
        return ""
    return f"{'trial' if is_trial(spec) else 'chosen'}: {shown(spec.sweep.point)}"


def grid(loaded: LoadedSuite, store: Store, counted_out: set[str] | frozenset = frozenset()) -> Grid:
    """The suite's cells against `store`. `counted_out`: trial ids that will not run now (they
    cannot run, or failed in this invocation): a group whose other trials are done is over."""
    specs = expand(loaded)
    trials = [s for s in specs if is_trial(s)]
    if not trials:
        return _after_upstream(Grid(specs, specs), store, counted_out)
    frame = store.frame([s.id for s in trials])
    primaries = {name: card.primary for name, card in loaded.cards.items()}
    labels = {s.id: (s.model, s.strategy, s.task) for s in trials}
    choices = choose(trial_scores(frame, primaries, labels))
    done = set(frame[frame.status == "done"].id)
    left: dict[Group, int] = {}
    for spec in trials:
        if spec.id not in done and spec.id not in counted_out and spec.sweep.prune is None:
            left[group_of(spec)] = left.get(group_of(spec), 0) + 1
    ready = _next_in_chains([s for s in trials if s.sweep.prune is not None], frame, counted_out, primaries, left)
    with_finals = expand(loaded, {group: choice.point for group, choice in choices.items()})
    seeds = set(loaded.suite.seeds)

    def final(spec: RunSpec) -> bool:
        chosen = choices.get(group_of(spec))
        return chosen is not None and key_of(spec.sweep.point) == chosen.point and spec.seed in seeds

    cells = [ready.get(s.id, s) for s in with_finals if s.sweep is None or final(s) and group_of(s) not in left
             or is_trial(s) and (s.sweep.prune is None or s.id in ready or s.id in done)]
    reported = [s for s in with_finals if s.sweep is None or final(s)]
    return _after_upstream(Grid(cells, reported, trials, choices, left, tuple(loaded.suite.seeds)), store, counted_out)


def _next_in_chains(trials: list[RunSpec], frame, counted_out, primaries: dict[str, str],
                    left: dict[Group, int]) -> dict[str, RunSpec]:
    """A pruned sweep's trials run one after another per (group, trial seed), in the space's order
    (harness.sweep.pruning): {run id: the next trial of each chain, given the pruning info of the
    trials before it}. Adds each chain's trials still to run to `left`. A chain ends when its
    trials are over or the next would not fit in `prune.compute` trial-epochs."""
    records = {r.id: r for r in frame.itertuples()}
    chains: dict[tuple[Group, int], list[RunSpec]] = {}
    for spec in sorted(trials, key=lambda s: s.sweep.order):
        chains.setdefault((group_of(spec), spec.seed), []).append(spec)
    ready = {}
    for (group, _), chain in chains.items():
        earlier, used = [], 0.0
        for at, spec in enumerate(chain):
            record = records.get(spec.id)
            if record is not None and record.status == "done":
                dev = record.info.get("dev_metrics", {}).get(primaries[spec.task])
                earlier.append(earlier_of(record.info, dev))
                used += float(record.info.get("epochs") or 0.0)
                continue
            compute = spec.sweep.prune.compute
            if spec.id in counted_out or compute is not None and used + spec.train.epochs > compute + 1e-9:
                continue  # failed in this invocation, or it would overspend the group's compute
            ready[spec.id] = spec.model_copy(update={"sweep": spec.sweep.model_copy(update={"earlier": earlier})})
            left[group] = left.get(group, 0) + sum(s.id not in counted_out for s in chain[at:])
            break
    return ready


def _after_upstream(found: Grid, store: Store, counted_out: set[str] | frozenset) -> Grid:
    """`found` less the cells whose teacher or intermediate-task cell (harness.config.upstream) is
    not done with its model kept: they join once it is; those it will not be for cannot run now."""
    needs = {s.id: s.after for s in found.cells if s.after}
    if not needs:
        return found
    done = set(store.done(sorted({run for runs in needs.values() for run in runs})))
    kept = store.path.parent / "runs"
    unkept = {t for t in done if not (kept / t / "model").is_dir()}  # done before any row learnt from it
    blocking = {cell: [r for r in after if r not in done or r in unkept] for cell, after in needs.items()}
    held = {cell: runs[0] for cell, runs in blocking.items() if runs}
    orphans = {s: f"the cell they learn from failed or cannot run (run {t})" for s, t in held.items() if t in counted_out}
    orphans |= {s: f"the cell they learn from (run {t}) is done but did not keep its model, having run before a row "
                   f"learnt from it; run the suite with another store (--store) to train it again"
                for s, t in held.items() if t in unkept}
    return replace(found, cells=[s for s in found.cells if s.id not in held], learners=held, orphans=orphans)


def stored_target(store, suite: str) -> Target | None:
    """Where most of `suite`'s runs in `store` trained (of those with train.precision auto, whose
    compute says what auto meant there): reports show those runs on any machine. None: no runs."""
    found = Counter(json.dumps(compute or CPU_COMPUTE, sort_keys=True) for compute, setting in store.computes(suite)
                    if setting == "auto")
    return Target.of(json.loads(found.most_common(1)[0][0])) if found else None
