"""Reading the YAML files a user writes (suites, task cards, targets, locks): strict about what YAML
lets a loader refuse, bounded in what a shared file can make it build, and every problem one line
naming the file and the line.

Suites and cards are shared files, so a file is hostile until parsed: it is read only up to
MAX_BYTES, composed into YAML's node graph by libyaml's parser where it is installed, and that
graph is measured before any Python object is built from it: a file whose aliases expand to more
than MAX_NODES values (the "billion laughs"), that nests deeper than MAX_DEPTH, or that refers to
itself is refused, in a fraction of a second and without building it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.base.errors import ConfigError

MAX_BYTES = 1 << 20  # a suite or card is a few kB; a shared file of megabytes is a mistake or an attack
MAX_NODES = 100_000  # values after expanding aliases: glue_like.yaml has a few hundred
MAX_DEPTH = 64  # nesting of mappings and lists: the deepest suite key is about 6 levels down

# libyaml's parser (C) where PyYAML was built with it; the constructor (Python) is the same in both.
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Refused(yaml.YAMLError):
    def __init__(self, problem: str, mark):
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


class _StrictLoader(_Base):
    """PyYAML's safe loader, except that a mapping with the same key twice is an error (YAML lets a
    loader refuse it, and silently keeping the last value would run a suite the user did not write),
    and so is a key that is not a plain value (a list or mapping as a key)."""

    def construct_mapping(self, node, deep=False):
        self.flatten_mapping(node)  # `<<: *base` merges first: a key it brings in is not a duplicate
        seen: dict = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Refused("a key must be a plain value, not a list or a mapping", key_node.start_mark)
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise _Refused(f"key {key!r} is given twice (first on line {seen[key]}); keep one",
                               key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def measure(root: yaml.Node) -> None:
    """Raise _Refused when the value `root` stands for would hold more than MAX_NODES values once
    its aliases are expanded, nest deeper than MAX_DEPTH, or contain itself. Each distinct node is
    visited once (shared ones by their expanded size), so a bomb costs what its text costs."""
    expanded: dict[int, int] = {}  # id(node) -> values it stands for, aliases expanded
    depth_of: dict[int, int] = {}  # id(node) -> its deepest nesting below it
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:  # depth first without recursion: a hostile depth cannot exhaust Python's stack
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_.discard(key)
            kids = _children(node)
            expanded[key] = 1 + sum(expanded[id(k)] for k in kids)
            depth_of[key] = 1 + max((depth_of[id(k)] for k in kids), default=0)
            if expanded[key] > MAX_NODES:
                raise _Refused(f"holds more than {MAX_NODES:,} values (an alias counts as the value it repeats); "
                               f"a suite or card needs far fewer", node.start_mark)
            if depth_of[key] > MAX_DEPTH:
                raise _Refused(f"nests deeper than {MAX_DEPTH} levels", node.start_mark)
            continue
        if key in expanded:
            continue
        if key in open_:
            raise _Refused("an alias refers to a value that contains it (a recursive anchor)", node.start_mark)
        open_.add(key)
        if len(open_) > MAX_DEPTH:
            raise _Refused(f"nests deeper than {MAX_DEPTH} levels", node.start_mark)
        stack.append((node, True))
        stack += [(k, False) for k in _children(node)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def load_text(text: str) -> Any:
    """The value of a YAML document, bounded as `measure` says; yaml.YAMLError when refused."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        measure(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML file's top-level mapping; any problem is a one-line ConfigError naming the file."""
    path = Path(path)
    try:
        if path.is_dir():
            raise ConfigError(f"{path}: is a folder, not a YAML file")
        if path.exists() and not path.is_file():
            raise ConfigError(f"{path}: is not a regular file (a device, pipe or socket); give a YAML file")
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except PermissionError:
        raise ConfigError(f"{path}: cannot be read (permission denied)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_BYTES >> 20} MiB; a suite or task card is a few kB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                          f"save the file as UTF-8") from None
    try:
        data = load_text(text)
    except _Refused as exc:
        raise ConfigError(f"{path}:{exc.problem_mark.line + 1}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{where}: not valid YAML: {' '.join(str(problem).split())}") from None
    except RecursionError:  # a parser without libyaml's own nesting limit
        raise ConfigError(f"{path}: nests deeper than {MAX_DEPTH} levels") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}")
    return data
