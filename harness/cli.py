"""Command line: subcommands only. Each parses a suite, then hands over to plan / executors / report."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.errors import HarnessError, unknown

VIEWS = ("overall", "strategies", "backbones", "task", "cost")  # harness.report.leaderboard.VIEWS

# Piped output (CI logs, `| tee`) gets room for a whole leaderboard row instead of 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__.split(":")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def with_suite(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("suite", help="suite file, or the name of one in suites/")
        p.add_argument("--store", help="SQLite store (default: the suite's `store`, else results/harness.sqlite)")
        return p

    with_suite("run", "run every cell of a suite that is not done yet")
    with_suite("plan", "show the grid: which cells are done, to do, or cannot run and why")
    board = with_suite("leaderboard", "print a leaderboard view and write it as Markdown, CSV, JSON and LaTeX")
    board.add_argument("--view", default="overall", choices=VIEWS,
                       help="overall (default): backbone x strategy rows; strategies: one board per backbone; "
                            "backbones: one board per strategy; task: all metrics of a task; cost: cost columns")
    board.add_argument("--task", help="with --view task: only this task")
    board.add_argument("--out", help="output folder (default: results/<suite name>/)")
    lister = sub.add_parser("list", help="list known tasks, strategies, metrics or tiny backbone families")
    lister.add_argument("what", choices=["tasks", "strategies", "metrics", "tiny"])

    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Library deprecation notices are for harness's developers, not for the user reading a grid.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    try:
        return COMMANDS[args.command](args)
    except HarnessError as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: every completed cell is in the store; run the same command to resume")
        return 130


def _suite_path(name: str) -> Path:
    path = Path(name)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    candidate = Path("suites") / f"{name}.yaml"
    return candidate if candidate.exists() else path


def _load(args):
    from harness.plan import expand, load_suite, preflight
    from harness.store import Store

    loaded = load_suite(_suite_path(args.suite))
    specs = expand(loaded)
    store = Store(args.store or loaded.store_path)
    return loaded, specs, store, preflight(loaded, specs)


def cmd_plan(args) -> int:
    loaded, specs, store, refused = _load(args)
    statuses = store.statuses([s.id for s in specs])
    table = Table(title=f"{loaded.name}: {len(specs)} cells", title_justify="left")
    for column in ("model", "task", "strategy", "seed", "id", "status"):
        table.add_column(column)
    counts: dict[str, int] = {}
    for spec in specs:
        status, error = statuses.get(spec.id, (None, None))
        if spec.id in refused and status != "done":
            shown, kind = f"[yellow]cannot run[/]: {refused[spec.id]}", "cannot run"
        elif status == "done":
            shown, kind = "[green]done[/]", "done"
        elif status == "failed":
            shown, kind = f"[red]failed[/] (will retry): {error}", "failed"
        else:
            shown, kind = "to do", "to do"
        counts[kind] = counts.get(kind, 0) + 1
        table.add_row(spec.model, spec.task, spec.strategy, str(spec.seed), spec.id, shown)
    console.print(table)
    console.print(", ".join(f"{n} {k}" for k, n in counts.items()) + f"  (store: {store.path})")
    return 0


def cmd_run(args) -> int:
    from harness.executors.local import run_local

    loaded, specs, store, refused = _load(args)
    runnable = [s for s in specs if s.id not in refused]
    console.print(f"[bold]{loaded.name}[/]: {len(specs)} cells ({len(refused)} cannot run); store {store.path}")
    summary = run_local(runnable, store, console)
    reasons = sorted({refused[s.id] for s in specs if s.id in refused})
    for reason in reasons:
        console.print(f"[yellow]cannot run[/]: {reason}")
    console.print(
        f"{len(summary.done)} ran, {summary.skipped} already done, {len(summary.failed)} failed, "
        f"{len(refused)} cannot run, in {summary.seconds:.1f}s"
    )
    if summary.done or summary.skipped:
        _print_board(loaded, specs, store, None)
    if summary.failed:
        console.print(f"[red]{len(summary.failed)} cell(s) failed[/]; see `harness plan {args.suite}` for the errors")
        return 1
    return 0


def cmd_leaderboard(args) -> int:
    loaded, specs, store, _ = _load(args)
    if args.task and args.task not in loaded.cards:
        raise HarnessError(unknown("task", args.task, loaded.cards))
    _print_board(loaded, specs, store, Path(args.out) if args.out else None, args.view, args.task)
    return 0


def _print_board(loaded, specs, store, out: Path | None, view: str = "overall", task: str | None = None) -> None:
    from harness.report import export
    from harness.report.leaderboard import boards
    from harness.report.results import Results

    results = Results.from_suite(loaded, specs, store)
    tables = boards(results, view, task)
    for table in tables:
        console.print(export.rich_table(table))
    folder = out or store.path.parent / loaded.name
    stem = "leaderboard" if view == "overall" else f"leaderboard-{view}"
    paths = export.write(tables, folder, stem)
    console.print("wrote " + ", ".join(str(p) for p in paths))


def cmd_list(args) -> int:
    from harness.backbones import TINY
    from harness.registry import METRICS, STRATEGIES, TaskCatalogue

    if args.what == "tasks":
        catalogue = TaskCatalogue()
        for name in catalogue.names():
            console.print(f"{name:24} {catalogue.paths[name]}")
    else:
        names = {"strategies": STRATEGIES.names(), "metrics": METRICS.names(), "tiny": sorted(TINY)}[args.what]
        console.print("\n".join(names))
    return 0


COMMANDS = {"run": cmd_run, "plan": cmd_plan, "leaderboard": cmd_leaderboard, "list": cmd_list}

if __name__ == "__main__":
    sys.exit(main())
