"""Command line: subcommands only. Each parses a suite, then hands over to plan / executors / report."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.base.errors import HarnessError, literal, refusal_summary, shown, unknown
from harness.base.files import write_output
from harness.base.noise import quiet
from harness.cli.examples import cmd_examples
from harness.cli.hub import cmd_check_catalogue, cmd_lock
from harness.cli.measure import cmd_measure
from harness.cli.parser import parser
from harness.config import consent
from harness.report.leaderboard import VIEWS

# Piped output (CI logs, `| tee`) gets room for a whole leaderboard row instead of 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def main(argv: list[str] | None = None) -> int:
    args = parser("harness: train and score every backbone x strategy x task x seed cell of a suite, and "
                  "report which strategy works best at what cost").parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    quiet()
    consent.grant(getattr(args, "trust_code", False))  # only this command line decides (Ray workers inherit it)
    try:
        return COMMANDS[args.command](args)
    except HarnessError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            console.print(Text("error: ", style="red") + Text(shown(line)), soft_wrap=True)
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


def _suite(args, counted_out: set[str] | frozenset = frozenset(), target=None):
    """(the loaded suite, its grid given the store (see sweep.grid), its store) for a command given a
    suite. The cells are those of `target` (where they train), else of --on, else, for the commands
    that report, of where most of the suite's stored runs trained, else of this machine."""
    from harness.base.device import parse_target
    from harness.config.suite import load_suite
    from harness.store.database import Store
    from harness.sweep.grid import grid, stored_target

    loaded = load_suite(_suite_path(args.suite))
    path = args.store or loaded.store_path
    store = Store.for_reading(path) if args.command in REPORTING else Store(path)
    if target is None and getattr(args, "on", None):
        target = parse_target(args.on)
    if target is None and args.command in (*REPORTING, "measure"):  # the cells as they trained, wherever
        target = stored_target(store, loaded.name)
    loaded.target = target
    return loaded, grid(loaded, store, counted_out), store


PLAN_ROWS = 24  # cells that cannot run listed one a row; more are summed up by reason (plan --all lists them)
REPORTING = ("leaderboard", "report", "export", "compare", "check", "examples")  # they show stored runs, wherever those trained


def _plan(args, limit: bool, counted_out: set[str] | frozenset = frozenset(), target=None):
    """(the suite's plan, its grid). The memory budget: --memory, else (with `limit`) what this
    machine's training device has free, else none (only cells whose training step fails cannot run).
    A sweep's group whose trials left all cannot run is over: its finals are planned too."""
    from harness.base.device import GiB, capacity, training_device
    from harness.plan.plan import make_plan
    from harness.sweep.grid import grid as grid_of

    loaded, grid, store = _suite(args, counted_out, target)
    device = training_device()
    elsewhere = loaded.target is not None and loaded.target.kind != device  # planned for other hardware
    local = getattr(args, "executor", "local") == "local"  # `harness plan` has neither flag
    shared = (getattr(args, "workers", None) or 1) if local else 1
    budget = int(args.memory * GiB) if args.memory is not None else \
        capacity(device) // shared if limit and not elsewhere else None  # N local workers share the machine
    with console.status(f"checking {len(grid.cells)} cells and estimating the peak memory of those to run"):
        plan = make_plan(loaded, grid.cells, store, budget, device)
        out = set(counted_out) | set(plan.refused)
        if grid.pending:  # trials (teachers) that cannot run no longer hold their finals (students) back
            again = grid_of(loaded, store, out)
            if len(again.cells) != len(grid.cells):
                plan = make_plan(loaded, again.cells, store, budget, device)
            grid = again
    return plan, grid


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m {seconds % 60:02.0f}s"
    return f"{seconds // 3600:.0f}h {seconds % 3600 // 60:02.0f}m"


def cmd_plan(args) -> int:
    from harness.base.device import gib
    from harness.run.environment import REQUIREMENTS, requirements_drift
    from harness.sweep.grid import role_of

    plan, grid = _plan(args, limit=True)
    if args.time:
        with console.status("probing") as status:
            plan = plan.probed(lambda i, n, spec: status.update(f"probing {i}/{n}: {spec.label}"))
    refused = [cell for cell in plan.cells if cell.status == "cannot run"]
    summed = len(refused) > PLAN_ROWS and not args.all  # a screenful of refusals says less than their reasons
    table = Table(title=f"{literal(plan.suite.name)}: {len(plan.cells)} cells", title_justify="left")
    swept = grid.trials and ["sweep"]
    columns = ("model", "task", "strategy", *swept, "seed", "id", "memory", *(["time"] if args.time else []), "status")
    for column in columns:
        table.add_column(column, justify="right" if column in ("memory", "time") else "left")
    status = {"done": "[green]done[/]", "to do": "to do", "failed": "[red]failed[/] (will retry): {}",
             "running": "[cyan]running[/] ({})", "cannot run": "[yellow]cannot run[/]: {}"}
    for cell in plan.cells:
        if summed and cell.status == "cannot run":
            continue
        spec, estimate = cell.spec, cell.memory
        memory = f"{'>=' if estimate.note else ''}{gib(estimate.peak)}" if estimate and not estimate.error else ""
        timing = [_duration(cell.time.seconds) if hasattr(cell.time, "seconds") else "?" if cell.time else ""] \
            if args.time else []
        role = [role_of(spec)] if swept else []
        table.add_row(*map(literal, (spec.model, spec.task, spec.strategy, *role)), str(spec.seed), spec.id, memory,
                      *timing, status[cell.status].format(literal(cell.reason)))
    if len(refused) < len(plan.cells) or not summed:
        console.print(table)
    if summed:
        console.print(f"{len(refused)} cells cannot run (`--all` lists each):")
        for line in refusal_summary([cell.reason for cell in refused], args.suite):
            console.print(f"[yellow]cannot run[/] {literal(line)}", soft_wrap=True)
    for line in grid.waiting_lines():
        console.print(line, soft_wrap=True)
    for line in plan.suite.code:  # allowed by --trust-code (without it, loading the suite refused them)
        console.print(Text("runs code (--trust-code): ", style="yellow") + Text(shown(line)), soft_wrap=True)
    console.print(", ".join(f"{n} {k}" for k, n in plan.counts().items()) + f"  (store: {plan.store.path})")
    if drift := requirements_drift():
        listed = ", ".join(drift[:4]) + (f" and {len(drift) - 4} more" if len(drift) > 4 else "")
        console.print(f"[yellow]environment[/]: installed versions differ from {REQUIREMENTS.name}, which the tests passed "
                      f"with: {listed}; results may differ from runs made with the lock", soft_wrap=True)
    if any(cell.memory for cell in plan.cells):
        console.print("memory: the estimated peak of a training step at the longest batch the settings allow "
                      "(>=: activations not counted)")
    if args.time:
        times = [cell.time for cell in plan.cells if hasattr(cell.time, "seconds")]
        probes = sum(t.probe_seconds for t in {id(t): t for t in times}.values())
        console.print(f"time: about {_duration(sum(t.seconds for t in times))} for the {len(times)} cells to do, one "
                      f"after another on this machine (probes took {probes:.0f}s)")
        for reason in sorted({cell.time for cell in plan.cells if isinstance(cell.time, str)}):
            console.print(f"[yellow]probe failed[/]: {literal(reason)}")
    return 0


def cmd_run(args) -> int:
    from harness.config.suite import load_suite
    from harness.executors import Executor, RayOptions

    load_suite(_suite_path(args.suite))  # a suite that does not parse is refused before any worker starts
    ray = RayOptions(address=args.address, workers=args.workers, max_retries=args.max_retries,
                     gpus_per_cell=args.gpus_per_cell, cpus_per_cell=args.cpus_per_cell)
    with Executor.start(ray if args.executor == "ray" else None, args.workers or 1) as executor:
        return _run(args, executor)  # local workers (--workers N) import what cells need while preflight runs


def _run(args, executor) -> int:
    from harness.plan.rounds import run_rounds
    from harness.run.energy import warm

    if executor.local:  # the cells meter their energy in this process: its hardware probed during preflight
        warm()
    plan, grid = _plan(args, limit=executor.local, target=executor.target)
    refused = plan.refused
    reasons = [f"[yellow]cannot run[/] {literal(line)}" for line in refusal_summary(list(refused.values()), args.suite)]
    if plan.cells and not plan.runnable():
        console.print("\n".join(reasons), soft_wrap=True)
        raise HarnessError(f"{plan.suite.path}: no cell can run ({len(plan.cells)} refused, reasons above); nothing "
                           f"ran and no result was stored")
    tuned = f", {sum(bool(c.spec.sweep) and c.spec.seed in c.spec.sweep.seeds for c in plan.cells)} of them sweep trials" if grid.trials else ""
    console.print(f"[bold]{literal(plan.suite.name)}[/]: {len(plan.cells)} cells{tuned} ({len(refused)} cannot "
                  f"run); store {literal(plan.store.path)}{literal(executor.describe())}")
    rounds = run_rounds(plan, grid, executor, console,
                        replan=lambda out: _plan(args, executor.local, out, executor.target),
                        chose=lambda p, n, why: console.print(f"[bold]{literal(p.suite.name)}[/]: {why}; {n} more cells"))
    total, plan, grid, refused = rounds.summary, rounds.plan, rounds.grid, rounds.plan.refused
    if refused:  # every round's: a later round may refuse cells the first did not plan
        console.print("\n".join(f"[yellow]cannot run[/] {literal(line)}"
                                for line in refusal_summary(list(refused.values()), args.suite)), soft_wrap=True)
    for line in grid.waiting_lines():
        console.print(line, soft_wrap=True)
    elsewhere = f", {len(total.elsewhere)} running in another process" if total.elsewhere else ""
    console.print(
        f"{len(total.done)} ran, {total.skipped} already done, {len(total.failed)} failed, "
        f"{len(refused)} cannot run{elsewhere}, in {total.seconds:.1f}s"
    )
    if total.done or total.skipped:
        _print_board(plan.suite, grid, plan.store, None)
    if total.failed:
        console.print(f"[red]{len(total.failed)} cell(s) failed[/]; see `harness plan {literal(args.suite)}` for the errors")
        return 1
    return 0


def cmd_leaderboard(args) -> int:
    from harness.base.device import CPU_COMPUTE, describe

    loaded, grid, store = _suite(args)
    if args.task and args.task not in loaded.cards:
        raise HarnessError(unknown("task", args.task, loaded.cards))
    if args.on and not store.done([s.id for s in grid.reported]):  # an empty board would overwrite the files
        stored = sorted({describe(c or CPU_COMPUTE) for c, _ in store.computes(loaded.name)})
        raise HarnessError(f"{loaded.name}: no completed runs on {describe(loaded.target.compute('auto'))} in "
                           f"{store.path}" + (f"; its runs trained on {', '.join(stored)}" if stored else ""))
    _print_board(loaded, grid, store, Path(args.out) if args.out else None, args.view, args.task, args.measured_on)
    return 0


def _print_board(loaded, grid, store, out: Path | None, view: str = "overall", task: str | None = None,
                 measured_on: str | None = None) -> None:
    from harness.report import export
    from harness.report.leaderboard import boards
    from harness.report.results import Results

    results = Results.from_suite(loaded, grid.reported, store, grid.trials)
    if measured_on:
        results = results.measured_on(measured_on)
    tables = boards(results, view, task)
    if not tables:
        raise HarnessError(f"{loaded.name}: nothing to show in the {view} view (" + (
            "the suite has no sweep, or none of its trials is done)" if view == "tuning" else "no run kept what it shows)"))
    for table in tables:
        console.print(export.rich_table(table))
    folder = out or store.path.parent / loaded.name
    paths = export.write(tables, folder, VIEWS[view].stem)
    console.print(Text("wrote " + ", ".join(shown(p) for p in paths)))
    _say_unsaved(store)


def _say_unsaved(store) -> None:
    if store.readonly:
        kept = f"; metrics of {store.unsaved_metrics} runs computed from their stored predictions were not kept " \
               f"in it" if store.unsaved_metrics else ""
        console.print(Text(shown(f"store {store.path} opened read-only (this process cannot write it){kept}")),
                      soft_wrap=True)


def cmd_report(args) -> int:
    from harness.report import export, html, plots
    from harness.report.examples import example_blocks
    from harness.report.leaderboard import boards
    from harness.report.results import Results

    loaded, grid, store = _suite(args)
    results = Results.from_suite(loaded, grid.reported, store, grid.trials)
    if results.runs.empty:
        raise HarnessError(f"{loaded.name}: no completed runs in {store.path}; run the suite first")
    if args.measured_on:
        results = results.measured_on(args.measured_on)
    folder = Path(args.out) if args.out else store.path.parent / loaded.name
    sections = [(view, tables) for view in VIEWS.values() if (tables := boards(results, view.name))]  # no sweep: no tuning
    written = [path for view, tables in sections for path in export.write(tables, folder, view.stem)]
    console.print(export.rich_table(sections[0][1][0]))
    pictures = plots.write(results, folder / "plots")
    page = folder / "report.html"
    shown_sections = [(v.heading, t) for v, t in sections] + [("Examples", example_blocks(results, loaded.cards))]
    write_output(page, html.render(f"harness report: {loaded.name}", shown_sections, pictures))
    console.print(Text(shown(f"wrote {page}, {len(pictures)} plots in {folder / 'plots'} and {len(written)} tables in {folder}")))
    _say_unsaved(store)
    return 0


def _results(ref: str, store_path: str | None):
    """Results from an export (.json), a whole store (.sqlite / .db) or a suite (file or name)."""
    from harness.config.suite import load_suite
    from harness.report.results import Results
    from harness.store.database import Store
    from harness.sweep.grid import grid, stored_target

    path = Path(ref)
    if path.suffix == ".json":
        return Results.from_json(path)
    if path.suffix in (".sqlite", ".db"):
        if not path.exists():
            raise HarnessError(f"{ref}: no such store")
        return Results.from_store(Store.for_reading(path))
    loaded = load_suite(_suite_path(ref))
    store = Store.for_reading(store_path or loaded.store_path)
    loaded.target = stored_target(store, loaded.name)  # the runs stored, wherever they trained
    found = grid(loaded, store)
    return Results.from_suite(loaded, found.reported, store, found.trials)


def cmd_compare(args) -> int:
    from harness.report.compare import compare

    a, b = _results(args.a, args.store), _results(args.b, args.store)
    diff = compare(a, b)
    table = Table(title=f"A = {literal(a.name)}, B = {literal(b.name)}: primary metric, mean (std, n) over seeds",
                  title_justify="left")
    for column in ("model", "strategy", "task", "A", "B", "B - A"):
        table.add_column(column, justify="right" if column in ("A", "B", "B - A") else "left")
    for row in diff.itertuples():
        table.add_row(literal(row.model), literal(row.strategy), literal(row.task), _mean(row.mean_a, row.std_a, row.n_a),
                      _mean(row.mean_b, row.std_b, row.n_b), "—" if row.delta != row.delta else f"{row.delta:+.2f}")
    console.print(table)
    differing = diff[diff.environment != ""]
    if len(differing):
        console.print(f"[yellow]environments differ[/] (A / B) in {len(differing)} of {len(diff)} cells:")
        for row in differing.itertuples():
            console.print(Text(shown(f"  {row.model} · {row.strategy} · {row.task}: {row.environment}")), soft_wrap=True)
    return 0


def _mean(mean, std, n) -> str:
    if mean != mean:
        return "missing"
    return f"{mean:.2f}" + (f" ({std:.2f}, {int(n)})" if std == std else f" (n={int(n)})")


def cmd_check(args) -> int:
    from harness.report import compare

    candidate_ref = args.candidate or args.suite
    if not candidate_ref:
        raise HarnessError("check: name the candidate (a suite, or --candidate)")
    if not args.baseline and not args.targets:
        raise HarnessError("check: give --baseline, --targets, or both")
    candidate = _results(candidate_ref, args.store)
    reports = []
    if args.baseline:
        reports.append(compare.check(_results(args.baseline, args.store), candidate, args.floor, args.k))
    if args.targets:
        reports.append(compare.check_targets(Path(args.targets), candidate))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_output(out / "check.md", "\n".join(compare.markdown(r) for r in reports))
    write_output(out / "check.xml", compare.junit(reports))
    failed = 0
    for report in reports:
        console.print(f"[bold]{literal(report.title)}[/]")
        for v in report.verdicts:
            mark = "[red]✗[/]" if v.failed else "[green]✓[/]"
            detail = f"{v.candidate:.2f} vs {v.baseline:.2f}" if v.candidate == v.candidate else f"baseline {v.baseline:.2f}"
            console.print(f"{mark} {literal(v.name)}: {v.status} ({detail}){': ' + literal(v.reason) if v.reason else ''}")
        failed += len(report.failed)
    console.print(Text(shown(f"{failed} failing cell(s); wrote {out / 'check.md'}, {out / 'check.xml'}")))
    return 1 if failed else 0


def cmd_export(args) -> int:
    from harness.report.results import Results

    loaded, grid, store = _suite(args)
    results = Results.from_suite(loaded, grid.reported, store, grid.trials)
    path = Path(args.out) if args.out else store.path.parent / loaded.name / "results.json"
    results.to_json(path, predictions=not args.no_predictions)
    console.print(Text(shown(f"wrote {len(results.runs)} runs to {path}")))
    _say_unsaved(store)
    return 0


def cmd_list(args) -> int:
    from harness.config.registry import METRICS, PARTS, STRATEGIES, TaskCatalogue
    from harness.run.backbones import TINY

    if args.what == "tasks":
        catalogue = TaskCatalogue()
        for name in catalogue.names():
            console.print(f"{name:24} {catalogue.paths[name]}")
    elif args.what == "strategies":  # methods, then the parts a recipe adds (each alone: with full fine-tuning)
        for table in (STRATEGIES, PARTS):
            for name in table.names():
                doc = (table.get(name).__doc__ or "").strip().splitlines()
                console.print(f"{name:20} {'part: ' if table is PARTS else ''}{doc[0] if doc else ''}")
    else:
        names = {"metrics": METRICS.names() + METRICS.families(), "tiny": sorted(TINY)}[args.what]
        console.print("\n".join(names))
    return 0


COMMANDS = {"run": cmd_run, "plan": cmd_plan, "leaderboard": cmd_leaderboard, "report": cmd_report, "compare": cmd_compare,
            "check": cmd_check, "export": cmd_export, "list": cmd_list, "check-catalogue": lambda args: cmd_check_catalogue(args, console),
            "lock": lambda args: cmd_lock(args, console, _suite_path(args.suite)),
            "measure": lambda a: cmd_measure(console, *_suite(a)), "examples": lambda a: cmd_examples(a, console, *_suite(a))}

if __name__ == "__main__":
    sys.exit(main())
