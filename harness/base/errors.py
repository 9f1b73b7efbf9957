"""Errors a user can cause, and the one-line messages they get.

Everything a user can get wrong (a suite file, a task card, a name, a data row) raises a
`HarnessError` whose text is one line naming the file, key or row; the CLI prints it and exits
non-zero without a traceback. Bugs in harness itself stay ordinary exceptions.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable


class HarnessError(Exception):
    """A problem the user can fix; its message is one line."""


class ConfigError(HarnessError):
    """A suite file or task card is invalid."""


class DataError(HarnessError):
    """A dataset row or data source is unusable."""


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line, or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest known names, or ' (known: a, b, c)' if none is close."""
    known = sorted(set(known))
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.6)
    close += [k for k in known if k not in close and _initials(k) == str(name).lower()]
    # 'rank' for 'r', 'pattern' for 'rank_pattern': one name is the start of the other
    close += [k for k in known if k not in close and (str(name).startswith(k) or k.startswith(str(name)))]
    close = close[:3]
    if close:
        return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"
    if not known:
        return ""
    shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
    return f" (known: {shown})"


def unknown(kind: str, name: str, known: Iterable[str]) -> str:
    return f"unknown {kind} {name!r}{did_you_mean(name, known)}"


def _initials(name: str) -> str:
    """'learning_rate' -> 'lr', so that common abbreviations find their key."""
    parts = [p for p in name.replace("-", "_").split("_") if p]
    return "".join(p[0] for p in parts).lower() if len(parts) > 1 else ""


def refusal_summary(reasons: list[str], suite: str, kinds: int = 4) -> list[str]:
    """A few lines for many refused cells: reasons that differ only in their names and figures
    (which model, the memory one cell needs) count as one kind, shown once with how many cells
    it stops; the commonest kinds first, then how many more kinds `harness plan` would show."""
    groups: dict[str, list[str]] = {}
    for reason in reasons:
        groups.setdefault(re.sub(r"'[^']*'|\d+(\.\d+)?", "#", reason), []).append(reason)
    ranked = sorted(groups.values(), key=len, reverse=True)
    lines = [f"({len(g)} cells, such as): {g[0]}" if len(g) > 1 else f"(1 cell): {g[0]}" for g in ranked[:kinds]]
    if len(ranked) > kinds:
        rest = sum(len(g) for g in ranked[kinds:])
        lines.append(f"({rest} more cells, for {len(ranked) - kinds} other reasons): `harness plan {suite} --all` "
                     f"lists them")
    return lines


_CONTROL = {c: repr(chr(c))[1:-1] for c in [*range(0x20), *range(0x7f, 0xa0)] if c != 0x09}


def shown(text: object) -> str:
    """`text` as it may reach a terminal or a one-line message: control characters (escape
    sequences, carriage returns, newlines inside a name) written out as \\x1b, \\r, \\n, so a name
    can neither move the cursor nor split a line."""
    return str(text).translate(_CONTROL)


def literal(text: object) -> str:
    """`text` for a rich console line that has markup of its own: shown, with its brackets escaped,
    so that a name such as 'lora[r=4]' or '[/]' prints as written."""
    from rich.markup import escape

    return escape(shown(text))
