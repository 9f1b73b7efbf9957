"""The command line's hub commands: `harness lock` and `harness check-catalogue` (harness.cli.commands
dispatches to them; they print with its console)."""

from __future__ import annotations

from pathlib import Path


def cmd_lock(args, console, path: Path) -> int:
    """`harness lock SUITE`: see harness.hub.lock."""
    from harness.config.suite import load_suite
    from harness.hub import reach as hub
    from harness.hub.lock import lock_path, unpinned, write_lock

    loaded = load_suite(path, locked=False)
    models = {a: (b.kind, b.spec) for a, b in loaded.backbones.items() if not isinstance(b, str)}
    wanted = unpinned(models, loaded.cards)
    target = lock_path(path)
    if not wanted:
        console.print(f"every hub model and dataset of {path} is pinned to a commit already: nothing to lock")
        return 0
    reason = hub.unreachable()
    if reason:
        console.print(f"[red]cannot lock {len(wanted)} hub sources:[/] the Hugging Face Hub cannot be reached ({reason})")
        return hub.UNREACHABLE_EXIT
    with console.status(f"resolving {len(wanted)} hub sources"):
        commits = write_lock(target, wanted)
    for (kind, repo, revision), commit in commits.items():
        console.print(f"{kind:8} {repo} @ {revision} -> {commit}")
    console.print(f"wrote {target}: runs of this suite now read these commits (their run ids change once)")
    return 0


def cmd_check_catalogue(args, console) -> int:
    """`harness check-catalogue`: see harness.hub.card_check."""
    from harness.config.registry import TaskCatalogue, load_card
    from harness.hub import reach as hub
    from harness.hub.card_check import check_card, hub_cards

    paths = []
    for target in args.cards or [None]:
        folder = Path(target) if target else None
        if folder is None or folder.is_dir():
            paths += list(TaskCatalogue(*([folder] if folder else [])).paths.values())
        else:
            paths.append(folder)
    cards = [load_card(p) for p in paths]
    checked = hub_cards(cards)
    if not args.mirror and checked:
        reason = hub.unreachable()
        if reason:
            console.print(f"[red]cannot check {len(checked)} hub cards:[/] the Hugging Face Hub cannot be reached ({reason})")
            return hub.UNREACHABLE_EXIT
    failed = 0
    with console.status(f"resolving the sources of {len(checked)} hub cards"):
        results = [check_card(card, Path(args.mirror) if args.mirror else None) for card in checked]
    for result in results:
        where = _shown_path(result.card.path)
        if result.ok:
            console.print(f"[green]ok[/]   {result.card.name:18} {result.source}")
        failed += not result.ok
        for line in result.problems:
            console.print(f"[red]{where}[/]: {line}", soft_wrap=True)
        for line in result.notes:
            console.print(f"[yellow]{where}[/]: {line}", soft_wrap=True)
    others = len(cards) - len(checked)
    console.print(f"{len(checked) - failed} of {len(checked)} hub cards match their sources"
                  + (f"; {others} read local files or generate their data (not checked)" if others else ""))
    return 1 if failed else 0


def _shown_path(path: Path | None) -> str:
    if path is None:
        return "?"
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
