"""Plots of a `Results` (matplotlib, no display needed): what a strategy costs for what it scores.

- score against trainable parameters (log axis) with the Pareto frontier, per task and averaged,
  each point's bar the 95% Student-t interval of its mean over seeds
- score against peak memory, train time, training compute, training energy, latency and bytes
  shipped (averaged over tasks where the rows share them, else per task)
- per-task bars with 95% Student-t interval whiskers
- evaluation curves over training steps, from the evaluations logged during training
- with a sweep: the expected best score for a budget of trials, per task, against trials and
  against train time (harness.report.tuning)
"""

from __future__ import annotations

import io
import math
from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["text.parse_math"] = False  # names are data: '$x$' in an alias is text, never TeX to parse
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import ticker  # noqa: E402

from harness.base.errors import shown  # noqa: E402
from harness.base.files import write_output  # noqa: E402
from harness.report import stats  # noqa: E402
from harness.report.pareto import pareto  # noqa: E402
from harness.report.results import Results  # noqa: E402
from harness.report.tuning import curves  # noqa: E402

MARKERS = "osD^vP*Xh"


def points(results: Results, x: str, task: str | None) -> list[dict]:
    """One point per (model, strategy): median of cost column `x`, mean score (a task's, or the
    task-average) and its 95% Student-t interval over seeds ("low", "high"; NaN with one seed, or
    where the seeds do not all have every task)."""
    runs = results.runs
    out = []
    for model in results.models:
        for strategy in results.strategies:
            mine = runs[(runs.model == model) & (runs.strategy == strategy)]
            if task is not None:
                mine = mine[mine.task == task]
                seeds = stats.summarize(list(mine.score))
                score = mine.score.mean() if len(mine) else math.nan
            else:
                per_task = [mine[mine.task == t].task_score.mean() for t in results.task_names]
                score = float(np.mean(per_task)) if per_task and not any(math.isnan(v) for v in per_task) else math.nan
                by_seed = mine.groupby("seed")
                complete = [g.task_score.mean() for _, g in by_seed if set(g.task) == set(results.task_names)]
                seeds = stats.summarize(complete if len(complete) == by_seed.ngroups else [])
            cost = mine[x].dropna().median() if len(mine) else math.nan
            if not math.isnan(score) and not math.isnan(cost) and cost > 0:
                out.append({"model": model, "strategy": strategy, "x": float(cost), "y": float(score),
                            "low": seeds.low, "high": seeds.high})
    return out


def score_against(results: Results, x: str, label: str, task: str | None = None, log: bool = True):
    pts = points(results, x, task)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    strategies = results.strategies
    for i, model in enumerate(results.models):
        mine = [p for p in pts if p["model"] == model]
        for p in mine:
            color = plt.cm.tab10(strategies.index(p["strategy"]) % 10)
            ax.scatter(p["x"], p["y"], marker=MARKERS[i % len(MARKERS)], color=color, s=60, zorder=3,
                       label=shown(f"{model} · {p['strategy']}"))
            if not math.isnan(p["low"]):  # the seeds' 95% interval of the mean score
                ax.errorbar(p["x"], p["y"], yerr=[[p["y"] - p["low"]], [p["high"] - p["y"]]], color=color,
                            capsize=3, linewidth=1, zorder=2)
    front = pareto(pts)
    if len(front) > 1:
        ax.step([p["x"] for p in front], [p["y"] for p in front], where="post", color="grey", linestyle="--",
                linewidth=1, zorder=2, label="Pareto frontier")
    if log and pts and max(p["x"] for p in pts) < 3 * min(p["x"] for p in pts):
        log = False  # a range within a factor of 3: a linear axis reads better, and gets its ticks
        ax.xaxis.set_major_formatter(ticker.EngFormatter(sep=""))
    ax.margins(x=0.08)
    if log:
        ax.set_xscale("log")
        # ticks at 1, 2 and 5 of each decade over a short range (so that one within a decade is labelled
        # too), at each decade over a long one; engineering prefixes (2k, 30µ, 1M): math text is off
        # (names print literally), and log ticks are math text by default
        decades = math.log10(max(p["x"] for p in pts) / min(p["x"] for p in pts)) if pts else 0
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0) if decades < 2 else (1.0,)))
        ax.xaxis.set_major_formatter(ticker.EngFormatter(sep=""))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    if pts:  # the scores' range: a wide seed interval (two seeds: t = 12.7) runs off the axis, not the points
        low, high = min(p["y"] for p in pts), max(p["y"] for p in pts)
        pad = max(5.0, 0.15 * (high - low))
        ax.set_ylim(low - pad, high + pad)
    what = f"{task} ({results.tasks[task]['primary']})" if task else "average over tasks"
    ax.set_xlabel(label)
    ax.set_ylabel(f"score: {what}")
    bars = "\nbars: 95% Student-t interval of the mean over seeds" if any(not math.isnan(p["low"]) for p in pts) else ""
    ax.set_title(shown(f"{results.name}: {what} against {label}") + bars, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if pts:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def task_bars(results: Results):
    rows = results.pairs()
    tasks = results.task_names
    fig, ax = plt.subplots(figsize=(max(6.4, 1.6 * len(tasks) + 2), 4.4))
    width = 0.8 / max(len(rows), 1)
    runs = results.runs
    for i, (model, strategy) in enumerate(rows):
        means, lows, highs = [], [], []
        for task in tasks:
            s = stats.summarize(list(runs[(runs.model == model) & (runs.strategy == strategy) & (runs.task == task)].score))
            means.append(s.mean)
            lows.append(s.mean - s.low if not math.isnan(s.low) else 0.0)
            highs.append(s.high - s.mean if not math.isnan(s.high) else 0.0)
        x = np.arange(len(tasks)) + (i - (len(rows) - 1) / 2) * width
        ax.bar(x, means, width, yerr=[lows, highs], capsize=3, label=shown(f"{model} · {strategy}"),
               color=plt.cm.tab10(i % 10))
    ax.set_xticks(np.arange(len(tasks)), [f"{t}\n({results.tasks[t]['primary']})" for t in tasks], fontsize=8)
    ax.set_ylabel("score (mean over seeds, 95% Student-t interval)")
    ax.set_title(shown(f"{results.name}: score per task"), fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def eval_curves(results: Results):
    """Evaluation score against training step, one line per run; None when nothing was logged."""
    fig, axes = plt.subplots(1, len(results.task_names), figsize=(5 * len(results.task_names), 3.8), squeeze=False)
    drawn = False
    rows = results.pairs()
    for ax, task in zip(axes[0], results.task_names):
        key = f"eval_{results.tasks[task]['primary']}"
        for i, (model, strategy) in enumerate(rows):
            mine = results.runs[(results.runs.model == model) & (results.runs.strategy == strategy) & (results.runs.task == task)]
            for j, run_id in enumerate(mine.run_id):
                logged = [(e["step"], e[key]) for e in results.histories.get(run_id, []) if key in e]
                if logged:
                    steps, values = zip(*logged)
                    ax.plot(steps, values, marker=".", color=plt.cm.tab10(i % 10), alpha=0.8,
                            label=shown(f"{model} · {strategy}") if j == 0 else None)
                    drawn = True
        ax.set_title(shown(task), fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel(key.removeprefix("eval_"))
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    if not drawn:
        plt.close(fig)
        return None
    return fig


def budget_curves(results: Results, task: str):
    """Expected best dev score (solid) and the eval score of that dev-best (dashed) against the
    number of trials and against their train time; None when the task had no sweep."""
    found = {(c["model"], c["strategy"]): c for c in curves(results) if c["task"] == task}
    if not found:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    rows = [row for row in results.pairs() if row in found] + [row for row in found if row not in results.pairs()]
    for i, row in enumerate(rows):
        c, color = found[row], plt.cm.tab10(i % 10)
        for ax, x in zip(axes, (c["k"], c["seconds"])):
            ax.plot(x, c["dev"], marker="o", color=color, label=shown(" · ".join(row)) if ax is axes[0] else None)
            ax.plot(x, c["eval"], marker=".", linestyle="--", color=color, alpha=0.7)
    axes[0].plot([], [], color="black", label="expected best dev score")
    axes[0].plot([], [], color="black", linestyle="--", label="eval score of that dev-best")
    axes[0].set_xlabel("trials (settings tried)")
    axes[0].xaxis.get_major_locator().set_params(integer=True)
    axes[1].set_xlabel("train time of the trials (s)")
    axes[1].set_xscale("log")
    axes[1].xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axes[1].xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axes[1].xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[0].set_ylabel(f"expected best {next(iter(found.values()))['metric']}")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    fig.legend(fontsize=7, loc="center left", bbox_to_anchor=(0.83, 0.5))
    fig.suptitle(shown(f"{results.name}: {task}, expected best score for a budget of trials (Dodge et al. 2019)"), fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.83, 1))
    return fig


def write(results: Results, folder: Path) -> list[Path]:
    """Every plot as a PNG in `folder`; returns their paths (plots with nothing to show are left out).
    Each figure is drawn, written and closed in turn."""
    folder.mkdir(parents=True, exist_ok=True)
    figures = {"score_vs_params": partial(score_against, results, "trainable_params", "trainable parameters")}
    if len(results.task_names) > 1:
        for task in results.task_names:
            figures[f"score_vs_params_{task}"] = partial(score_against, results, "trainable_params",
                                                         "trainable parameters", task)
    # costs beyond the parameters: records from before one was measured lack it
    for key, x, label in (("score_vs_memory", "peak_memory_mb", "peak memory (MB)"),
                          ("score_vs_time", "train_seconds", "train time (s)"),
                          ("score_vs_compute", "train_flops", "training compute (FLOPs)"),
                          ("score_vs_energy", "train_kwh", "training energy (kWh)"),
                          ("score_vs_latency", "latency_ms", "latency per example at batch 1 (ms)"),
                          ("score_vs_shipped", "shipped_bytes", "bytes shipped")):
        if not results.runs[x].notna().any():
            continue
        if points(results, x, None):  # the average over tasks, where rows share their tasks; else each task
            figures[key] = partial(score_against, results, x, label)
        else:
            for task in results.task_names:
                figures[f"{key}_{task}"] = partial(score_against, results, x, label, task)
    figures["task_bars"] = partial(task_bars, results)
    figures["eval_curves"] = partial(eval_curves, results)
    for task in sorted(set(results.trials.task)):
        figures[f"budget_{task}"] = partial(budget_curves, results, task)
    paths = []
    for name, draw in figures.items():
        fig = draw()
        if fig is None:  # nothing to show
            continue
        path = folder / f"{name}.png"
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=110)
        plt.close(fig)
        write_output(path, png.getvalue())
        paths.append(path)
    return paths
