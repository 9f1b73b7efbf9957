"""The command line: the parser, the commands and the hub commands. Commands display what lower floors decide."""

from __future__ import annotations

import sys


def entry(argv: list[str] | None = None) -> int:
    """The `harness` command: its libraries take seconds to import, and Ctrl-C meanwhile ends it
    with one line, not a traceback (nothing has run or been written yet)."""
    try:
        from harness.cli.commands import main
    except KeyboardInterrupt:
        print("interrupted while starting: nothing ran and nothing was written", file=sys.stderr)
        return 130
    return main(argv)
