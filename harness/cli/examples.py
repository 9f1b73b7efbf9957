"""`harness examples SUITE`: which eval examples two rows of the board disagree on, which every row
gets wrong, each of the two rows' confusion matrices (classification), or (--overlap) the eval
examples that overlap training rows; every example shown with its text, printed literally."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from harness.base.errors import HarnessError, shown, unknown


def cmd_examples(args, console: Console, loaded, grid, store) -> int:
    from harness.config.registry import task_type_of
    from harness.report.results import Results
    from harness.tasks.data import load_splits

    task = _task(args.task, loaded)
    card = loaded.cards[task]
    task_type, data = task_type_of(card), load_splits(card)

    def say(line: str, style: str | None = None) -> None:
        console.print(Text(shown(line), style=style or ""), soft_wrap=True)

    if args.overlap:
        from harness.tasks.overlap import overlap

        train, evaluation = task_type.row_texts(data.train), task_type.row_texts(data.eval)
        found = overlap(train, evaluation)
        say(f"{task}: {len(found.found)} of {found.rows} eval examples overlap train (a shared 13-gram, or the whole "
            f"normalised text under 13 words)", "bold")
        for j, i in list(found.found.items())[:args.limit]:
            say(f"eval #{j}: {_cut(evaluation[j])}")
            say(f"    train #{i}: {_cut(train[i])}", "dim")
        if len(found.found) > args.limit:
            say(f"... and {len(found.found) - args.limit} more (--limit)", "dim")
        return 0
    if not args.rows:
        raise HarnessError("harness examples: give --rows A B (two rows of the board) or --overlap")
    results = Results.from_suite(loaded, grid.reported, store)
    a, b = (_row(name, results.pairs()) for name in args.rows)
    texts = task_type.row_texts(data.eval)
    try:
        found = _flips(results, a, b, task, task_type.right)
    except NotImplementedError as exc:
        raise HarnessError(f"{task}: {exc}") from None
    for title, listed in ((f"right in every seed of {' · '.join(a)}, wrong in every seed of {' · '.join(b)}",
                           found.a_not_b),
                          (f"right in every seed of {' · '.join(b)}, wrong in every seed of {' · '.join(a)}",
                           found.b_not_a),
                          ("wrong in every seed of every row", found.all_wrong)):
        say(f"{task}: {len(listed)} of {found.examples} eval examples {title}", "bold")
        for j in listed[:args.limit]:
            say(f"eval #{j}: {_cut(texts[j]) if j < len(texts) else '(text not found)'}")
        if len(listed) > args.limit:
            say(f"... and {len(listed) - args.limit} more (--limit)", "dim")
        console.print()
    if labels := getattr(task_type, "confusion_labels", None):
        _confusions(results, (a, b), task, labels(), console)
    return 0


def _flips(results, a, b, task, right):
    from harness.report.examples import flips

    return flips(results, a, b, task, right)


def _confusions(results, rows, task, labels: list[str], console) -> None:
    from harness.report.examples import confusion_board
    from harness.report.export import rich_table

    for row in rows:
        board = confusion_board(results, task, row, labels)
        if any(cell.mean for column in board.columns for cell in column.cells):
            console.print(rich_table(board))


def _task(name: str | None, loaded) -> str:
    if name is None:
        if len(loaded.cards) == 1:
            return next(iter(loaded.cards))
        raise HarnessError(f"harness examples: give --task (one of {', '.join(loaded.cards)})")
    if name not in loaded.cards:
        raise HarnessError(unknown("task", name, loaded.cards))
    return name


def _row(name: str, rows: list[tuple[str, str]]) -> tuple[str, str]:
    """A board row named 'model:strategy', or by its strategy (or model) where that names one row."""
    model, _, strategy = name.rpartition(":")
    matches = [r for r in rows if r == (model, strategy)] or [r for r in rows if name in r]
    if len(matches) != 1:
        named = ", ".join(f"{m}:{s}" for m, s in rows)
        raise HarnessError(f"--rows {name!r} {'names more than one row' if matches else 'is not a row'} of the board "
                           f"({named}); write model:strategy")
    return matches[0]


def _cut(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"
