"""Hold results against a baseline or published numbers: `compare` (a diff), `check` (a CI gate), targets.

Cells are matched by (model, strategy, task) on the primary metric. `check` fails a candidate cell
that is worse than its baseline by more than max(absolute floor, k x seed std), or that a paired
test on the same examples finds significantly worse (Holm-corrected over the cells tested; the
seed variance pooled over the task's cells of both, as the leaderboard's best sets pool it). A
baseline cell with no candidate is reported as missing and fails the check: nothing passes silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pandas as pd
from pydantic import Field

from harness.config.parsing import Strict, parse
from harness.config.registry import METRICS
from harness.config.yamlfile import read_yaml
from harness.report import stats
from harness.report.results import Results

KEY = ["model", "strategy", "task"]


def cells(results: Results) -> pd.DataFrame:
    """One row per (model, strategy, task): mean, std and n of the primary metric, and the run ids."""
    rows = []
    for (model, strategy, task), group in results.runs.groupby(KEY, sort=False):
        summary = stats.summarize(list(group.score))
        rows.append({"model": model, "strategy": strategy, "task": task, "metric": group.primary.iloc[0],
                     "mean": summary.mean, "std": summary.std, "n": summary.n, "run_ids": list(group.run_id),
                     "seeds": list(group.seed), "scores": list(group.score)})
    return pd.DataFrame(rows, columns=[*KEY, "metric", "mean", "std", "n", "run_ids", "seeds", "scores"])


def compare(a: Results, b: Results) -> pd.DataFrame:
    """Side by side: every cell of either, with B - A, and `environment`: how the environments of
    its runs differ between A and B ('torch 2.13.0 / 2.14.0'; empty when they do not)."""
    left, right = cells(a), cells(b)
    merged = left.merge(right, on=KEY, how="outer", suffixes=("_a", "_b"))
    merged["delta"] = merged.mean_b - merged.mean_a
    envs = {side: _environments(results) for side, results in (("a", a), ("b", b))}
    merged["environment"] = [_differences(envs["a"].get(key, []), envs["b"].get(key, []))
                             for key in zip(merged.model, merged.strategy, merged.task)]
    return merged[[*KEY, "mean_a", "std_a", "n_a", "mean_b", "std_b", "n_b", "delta", "environment"]]


def _environments(results: Results) -> dict[tuple, list[dict]]:
    """(model, strategy, task) -> the distinct environments its runs were made in."""
    out: dict[tuple, list[dict]] = {}
    for row in results.runs.itertuples():
        env = row.environment if isinstance(row.environment, dict) else {}
        found = out.setdefault((row.model, row.strategy, row.task), [])
        if env and env not in found:
            found.append(env)
    return out


def _differences(a: list[dict], b: list[dict]) -> str:
    """'key A values / B values' for each environment key whose values differ between A's runs and B's."""
    parts = []
    for key in dict.fromkeys(k for env in a + b for k in env):
        left = sorted({str(env.get(key)) for env in a})
        right = sorted({str(env.get(key)) for env in b})
        if a and b and left != right:
            parts.append(f"{key} {', '.join(left)} / {', '.join(right)}")
    return "; ".join(parts)


@dataclass
class Verdict:
    model: str
    strategy: str
    task: str
    status: str  # pass | regression | missing | improved
    baseline: float = math.nan
    candidate: float = math.nan
    delta: float = math.nan
    tolerance: float = math.nan
    p_value: float = math.nan  # Holm-adjusted, candidate vs baseline, where predictions allow
    reason: str = ""

    @property
    def failed(self) -> bool:
        return self.status in ("regression", "missing", "below")

    @property
    def name(self) -> str:
        return f"{self.model} · {self.strategy} · {self.task}"


@dataclass
class Report:
    title: str
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def failed(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.failed]


def check(baseline: Results, candidate: Results, floor: float = 0.5, k: float = 2.0, alpha: float = 0.05) -> Report:
    base, cand = cells(baseline), cells(candidate).set_index(KEY)
    report = Report(f"check {candidate.name} against baseline {baseline.name}")
    pending: dict[int, tuple] = {}
    noise = {task: stats.pooled_noise([*base[base.task == task].scores, *cand[cand.index.get_level_values("task") == task]
                                       .scores]) for task in set(base.task)}
    for row in base.itertuples():
        key = (row.model, row.strategy, row.task)
        if key not in cand.index:
            report.verdicts.append(Verdict(*key, "missing", row.mean, reason="no completed candidate run"))
            continue
        other = cand.loc[key]
        spread = max((s for s in (row.std, other["std"]) if not math.isnan(s)), default=math.nan)
        tolerance = max(floor, k * spread) if not math.isnan(spread) else floor
        delta = other["mean"] - row.mean
        verdict = Verdict(*key, "pass", row.mean, other["mean"], delta, tolerance)
        if delta < -tolerance:
            verdict.status, verdict.reason = "regression", f"{delta:+.2f} points is beyond the tolerance of {tolerance:.2f}"
        elif delta > tolerance:
            verdict.status = "improved"
        report.verdicts.append(verdict)
        pending[len(report.verdicts) - 1] = (row, other)
    # Holm's smallest threshold is alpha / m: each test spends a tenth of it bounding the seed variance
    gamma = 0.1 * alpha / max(1, len(pending))
    tests = {i: test.p_value for i, (row, other) in pending.items()
             if (test := _paired(baseline, candidate, row, other, noise[row.task], gamma)) is not None}
    for i, p in stats.holm(tests).items():
        verdict = report.verdicts[i]
        verdict.p_value = p
        if p < alpha and verdict.delta < 0 and verdict.status == "pass":
            verdict.status = "regression"
            verdict.reason = f"{verdict.delta:+.2f} points, significantly worse on the same examples (Holm p = {p:.3g})"
    return report


def _paired(baseline: Results, candidate: Results, base_row, cand_row, noise: stats.SeedNoise, gamma: float):
    def runs(results: Results, ids, seeds):
        found = []
        for run_id, seed in zip(ids, seeds):
            kept = results.predictions(run_id)
            if kept is not None:
                found.append((seed, kept[0], kept[1]))
        return found

    a = runs(candidate, cand_row["run_ids"], cand_row["seeds"])
    b = runs(baseline, base_row.run_ids, base_row.seeds)
    return stats.paired_test(a, b, METRICS.get(base_row.metric), noise, gamma=gamma) if a and b else None


# ---------------------------------------------------------------------- published targets


class Target(Strict):
    model: str
    strategy: str
    task: str
    value: float
    tolerance: float | None = None


class Targets(Strict):
    name: str
    source: str = ""
    note: str = ""
    tolerance: float = Field(1.0, gt=0, description="default band in points around each published value")
    targets: list[Target]


def check_targets(path: Path, candidate: Results) -> Report:
    targets = parse(Targets, read_yaml(path), str(path))
    cand = cells(candidate).set_index(KEY)
    report = Report(f"reproduce {targets.name}" + (f" ({targets.source})" if targets.source else ""))
    for t in targets.targets:
        tolerance = t.tolerance if t.tolerance is not None else targets.tolerance
        key = (t.model, t.strategy, t.task)
        if key not in cand.index:
            report.verdicts.append(Verdict(*key, "missing", t.value, tolerance=tolerance, reason="no completed run"))
            continue
        value = cand.loc[key]["mean"]
        delta = value - t.value
        status = "pass" if abs(delta) <= tolerance else "below" if delta < 0 else "above"
        reason = "" if status == "pass" else f"{delta:+.2f} points from the published {t.value}"
        report.verdicts.append(Verdict(*key, status, t.value, value, delta, tolerance, reason=reason))
    return report


# ---------------------------------------------------------------------- outputs


def markdown(report: Report) -> str:
    lines = [f"## {report.title}", "",
             f"{len(report.verdicts) - len(report.failed)} of {len(report.verdicts)} cells pass; "
             f"{len(report.failed)} fail.", "",
             "| model | strategy | task | baseline | candidate | Δ | tolerance | p | status |",
             "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for v in report.verdicts:
        numbers = [_num(v.baseline), _num(v.candidate), _num(v.delta, signed=True), _num(v.tolerance),
                   "—" if math.isnan(v.p_value) else f"{v.p_value:.3g}"]
        status = f"**{v.status}**: {v.reason}" if v.failed else v.status
        lines.append("| " + " | ".join([v.model, v.strategy, v.task, *numbers, status]) + " |")
    return "\n".join(lines) + "\n"


def junit(reports: list[Report]) -> str:
    """JUnit XML: one testsuite per report, one testcase per cell, a failure per failing cell."""
    suites = []
    for report in reports:
        cases = []
        for v in report.verdicts:
            body = f'<failure message={quoteattr(v.status + ": " + v.reason)} type="{v.status}"/>' if v.failed else ""
            cases.append(f'    <testcase classname="harness.{escape(v.task)}" name={quoteattr(v.name)}>{body}</testcase>')
        suites.append(f'  <testsuite name={quoteattr(report.title)} tests="{len(report.verdicts)}" '
                      f'failures="{len(report.failed)}" errors="0">\n' + "\n".join(cases) + "\n  </testsuite>")
    return '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n' + "\n".join(suites) + "\n</testsuites>\n"


def _num(value: float, signed: bool = False) -> str:
    return "—" if value is None or math.isnan(value) else (f"{value:+.2f}" if signed else f"{value:.2f}")
