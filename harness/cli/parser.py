"""The command line's arguments: what each subcommand takes (harness.cli.commands runs them)."""

from __future__ import annotations

import argparse
import math

from harness.report.leaderboard import VIEWS


class Parser(argparse.ArgumentParser):
    """argparse's parser, except that a wrong argument is one line (not the whole usage block)."""

    def error(self, message: str):
        from harness.base.errors import shown

        self.exit(2, f"{self.prog}: error: {shown(message)} (see {self.prog} --help)\n")


def parser(description: str) -> argparse.ArgumentParser:
    """The arguments of every subcommand."""
    top = Parser(prog="harness", description=description)
    sub = top.add_subparsers(dest="command", required=True)
    _running(sub)
    _reporting(sub)
    _checking(sub)
    return top


def number(kind: type, least: float, above: bool = False):
    """An argparse type: a finite `kind` (int or float) of at least `least` (above it, with `above`)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}") from None
        if not math.isfinite(value) or value < least or (above and value == least):
            bound = f"{'above' if above else 'at least'} {least:g}"
            raise argparse.ArgumentTypeError(f"{text!r} must be {bound}" if kind is int else
                                             f"{text!r} must be a finite number {bound}")
        return value

    parse.__name__ = kind.__name__  # what argparse names in "invalid <type> value"
    return parse


ON_HELP = ("where the cells train, in their run ids: cpu, cuda, cuda:fp16 (what precision auto means there), "
           "cuda:bf16x4 (devices a cell); default: {}")


def _with_suite(sub, name: str, help: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help)
    p.add_argument("suite", help="suite file, or the name of one in suites/")
    p.add_argument("--store", help="SQLite store (default: the suite's `store`, else results/harness.sqlite)")
    _trust(p)
    return p


def _trust(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trust-code", action="store_true",
                   help="allow the Python code the suite or its task cards name to run: models with "
                        "trust_remote_code, evaluate: metric scripts (`harness plan` lists them; read them first)")


def _running(sub) -> None:
    """run and plan."""
    runner = _with_suite(sub, "run", "run every cell of a suite that is not done yet")
    runner.add_argument("--executor", choices=["local", "ray"], default="local",
                        help="local (default): cells one after another in this process; ray: cells as Ray tasks")
    runner.add_argument("--address", help="with --executor ray: the cluster's address (default: start a local Ray)")
    runner.add_argument("--max-retries", type=number(int, 0), default=2,
                        help="with --executor ray: reruns of a cell whose worker died (default 2)")
    runner.add_argument("--gpus-per-cell", type=number(float, 0),
                        help="with --executor ray: GPUs per cell, fractions allowed (default: by backbone size)")
    runner.add_argument("--cpus-per-cell", type=number(float, 0, above=True), default=1.0, help="with --executor ray: CPUs per cell (default 1)")
    runner.add_argument("--workers", type=number(int, 1),
                        help="local: cells run this many at a time, each in a worker process with its share of "
                             "the torch threads (default 1: one after another in this process; on a CPU, small "
                             "backbones finish sooner with one per 1-2 cores); with --executor ray and no "
                             "--address: CPUs of the local Ray (default: all)")
    runner.add_argument("--memory", type=number(float, 0, above=True), metavar="GIB",
                        help="memory a cell may use, in GiB; cells estimated to need more cannot run (default: the "
                             "free memory of this machine's GPU, else its available RAM, shared out among --workers; with "
                             "--executor ray: no limit)")
    planner = _with_suite(sub, "plan", "show the grid: which cells are done, to do, or cannot run and why, "
                                 "and the peak memory each cell is estimated to need")
    planner.add_argument("--memory", type=number(float, 0, above=True), metavar="GIB",
                         help="memory a cell may use, in GiB (default: the free memory of this machine's GPU, "
                              "else its available RAM)")
    planner.add_argument("--on", help=ON_HELP.format("this machine"))
    planner.add_argument("--all", action="store_true",
                         help="list every cell that cannot run (by default, when more than a screenful cannot, "
                              "they are summed up by reason)")
    planner.add_argument("--time", action="store_true",
                         help="estimate each cell's time from a short probe of it (a few optimizer steps) on this "
                              "machine, and the grid's")


MEASURED_ON_HELP = ("latency as measured on DEVICE by `harness measure` (a device name as the cost view shows it, or "
                    "a part naming one, such as 'cpu'), instead of where each run trained")


def _reporting(sub) -> None:
    """leaderboard, report, export, compare."""
    board = _with_suite(sub, "leaderboard", "print a leaderboard view and write it as Markdown, CSV, JSON and LaTeX")
    board.add_argument("--view", default="overall", choices=list(VIEWS),
                       help="; ".join(f"{v.name}{' (default)' if v.name == 'overall' else ''}: {v.shows}"
                                      for v in VIEWS.values()))
    board.add_argument("--task", help="with --view task: only this task")
    board.add_argument("--on", help=ON_HELP.format("where most of the suite's stored runs trained"))
    board.add_argument("--out", help="output folder (default: results/<suite name>/)")
    board.add_argument("--measured-on", metavar="DEVICE", help=MEASURED_ON_HELP)
    reporter = _with_suite(sub, "report", "every leaderboard view in every format, the plots, and one HTML report")
    reporter.add_argument("--out", help="output folder (default: results/<suite name>/)")
    reporter.add_argument("--on", help=ON_HELP.format("where most of the suite's stored runs trained"))
    reporter.add_argument("--measured-on", metavar="DEVICE", help=MEASURED_ON_HELP)
    examples = _with_suite(sub, "examples", "which eval examples two rows disagree on in every seed, which every row "
                                            "gets wrong, the rows' confusion matrices; or the eval examples that "
                                            "overlap training rows (--overlap); with their text")
    examples.add_argument("--task", help="the task (needed when the suite has several)")
    examples.add_argument("--rows", nargs=2, metavar=("A", "B"), help="two rows of the board: model:strategy, or a "
                                                                     "strategy (or model) that names one row")
    examples.add_argument("--overlap", action="store_true", help="list the eval examples that overlap training rows")
    examples.add_argument("--limit", type=number(int, 1), default=20, help="examples listed per list (default 20)")
    _with_suite(sub, "measure", "measure the serving latency of the suite's kept runs (train.save_model) again on "
                                "this machine, and keep it beside their records (report with --measured-on)")
    comparer = sub.add_parser("compare", help="diff two result sets: suites, stores (.sqlite) or exports (.json)")
    comparer.add_argument("a")
    comparer.add_argument("b")
    comparer.add_argument("--store", help="store for suites given by name or file (default: the suite's own)")
    _trust(comparer)
    exporter = _with_suite(sub, "export", "write a suite's results (and per-example predictions) to one JSON file")
    exporter.add_argument("--out", help="file (default: results/<suite>/results.json)")
    exporter.add_argument("--no-predictions", action="store_true", help="leave the per-example predictions out")
    exporter.add_argument("--on", help=ON_HELP.format("where most of the suite's stored runs trained"))


def _checking(sub) -> None:
    """check, lock, check-catalogue, list."""
    checker = sub.add_parser("check", help="fail (exit 1) when a candidate regresses from a baseline or misses published targets")
    checker.add_argument("suite", nargs="?", help="the candidate suite (or use --candidate)")
    checker.add_argument("--baseline", help="suite, store (.sqlite) or export (.json) to hold the candidate against")
    checker.add_argument("--candidate", help="suite, store or export (default: SUITE)")
    checker.add_argument("--targets", help="a file of published numbers with tolerance bands (see targets/)")
    checker.add_argument("--floor", type=float, default=0.5, help="smallest tolerated drop, in points (default 0.5)")
    checker.add_argument("--k", type=float, default=2.0, help="tolerated drop in seed standard deviations (default 2)")
    checker.add_argument("--store", help="store for suites (default: the suite's own)")
    checker.add_argument("--out", default="results/check", help="folder for check.md and check.xml (JUnit)")
    _trust(checker)
    locker = sub.add_parser("lock", help="resolve the suite's hub models and datasets not pinned to a commit to the "
                            "commits they point at now and write them beside the suite (<suite>.lock.yaml), which "
                            "later runs then read (exit 3 when the hub cannot be reached)")
    locker.add_argument("suite", help="suite file, or the name of one in suites/")
    _trust(locker)
    cataloguer = sub.add_parser("check-catalogue", help="resolve each hub task card's source and report, one line "
                                "each, where its splits, columns or label names differ from the card (exit 1; "
                                "exit 3 when the hub cannot be reached)")
    cataloguer.add_argument("cards", nargs="*", help="task cards or folders of them (default: the whole catalogue)")
    cataloguer.add_argument("--mirror", help="a folder of local copies laid out as the hub lays out dataset "
                                             "repositories (<mirror>/<owner>/<name>/), checked instead of the hub")
    lister = sub.add_parser("list", help="list known tasks, strategies, metrics or tiny backbone families")
    lister.add_argument("what", choices=["tasks", "strategies", "metrics", "tiny"])
