"""Every table entry imports; the task catalogue matches the files; every suite in suites/ loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.base.errors import HarnessError
from harness.config.registry import (
    CATALOGUE_DIR,
    GENERATORS,
    METRICS,
    STRATEGIES,
    TASK_TYPES,
    Registry,
    TaskCatalogue,
)
from harness.config.suite import expand, load_suite
from harness.config.yamlfile import read_yaml
from harness.metrics import Metric
from harness.plan.plan import preflight
from harness.strategies import Strategy
from harness.sweep.space import merged, points
from harness.tasks.types import TaskType

ROOT = Path(__file__).resolve().parents[2]


def test_every_entry_imports_as_what_its_table_holds():
    """Each name gives the kind of thing its table promises, under its own name."""
    assert TASK_TYPES.names() and STRATEGIES.names() and METRICS.names() and GENERATORS.names()
    for name in TASK_TYPES:
        task_type = TASK_TYPES.get(name)
        assert issubclass(task_type, TaskType) and task_type.type == name, name
    for name in STRATEGIES:
        strategy = STRATEGIES.get(name)
        assert issubclass(strategy, Strategy) and strategy.name == name, name
    for name in METRICS:
        metric = METRICS.get(name)
        assert isinstance(metric, Metric) and metric.name == name and callable(metric.compute), name
    for name in GENERATORS:
        rows = GENERATORS.get(name)(seed=0)  # a generator makes rows from a seed alone
        assert len(rows["train"]) > 0, name


def test_unknown_name_suggests():
    with pytest.raises(HarnessError, match="unknown strategy 'bitfti' \\(did you mean 'bitfit'"):
        STRATEGIES.get("bitfti")


def test_catalogue_matches_the_files_on_disk():
    catalogue = TaskCatalogue()
    on_disk = sorted(p.stem for p in CATALOGUE_DIR.rglob("*.yaml"))
    assert catalogue.names() == on_disk
    for name in catalogue.names():
        card = catalogue.get(name)  # each card parses and passes its task type's checks
        assert card.name == name


def test_duplicate_task_names_are_refused(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "same.yaml").write_text("name: same\n")
    with pytest.raises(HarnessError, match="already defined"):
        TaskCatalogue(tmp_path).names()


def test_registry_lists_without_importing():
    table = Registry("thing", {"x": "no_such_module_anywhere:X"})
    assert table.names() == ["x"] and "x" in table


YAML = sorted((ROOT / "suites").rglob("*.yaml"))
SUITES = [p for p in YAML if "models" in read_yaml(p)]  # the rest are task cards (suites/samples/)


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.name)
def test_every_suite_loads_expands_and_preflights(path):
    loaded = load_suite(path)
    specs = expand(loaded)
    cells = [(m, t, s) for m in loaded.suite.models for t in loaded.cards for s in loaded.strategies
             if not loaded.suite.excluded(m, t, s)]
    suite = loaded.suite

    def runs(cell) -> int:  # a swept cell runs each point of its space on the sweep's seeds first
        space = merged(suite.sweep, *cell) if suite.sweep else None
        if space is None:
            return len(suite.seeds)
        return len(points(space, suite.sweep.search, suite.sweep.budget, suite.sweep.seed)) * len(suite.sweep.seeds)
    assert len(specs) == sum(runs(cell) for cell in cells) * len(suite.shots)
    refused = preflight(loaded, specs)
    # a tiny backbone always builds: a tiny cell is refused only because a strategy or the task type cannot apply
    for spec in specs:
        if spec.model_spec.source.startswith("tiny:") and spec.id in refused:
            assert refused[spec.id].startswith((f"strategy {spec.strategy_key!r} ", "task type ")), refused[spec.id]


def test_suites_folder_holds_suites_and_task_cards_only():
    assert {"quickstart.yaml", "strategies.yaml", "glue_like.yaml"} <= {p.name for p in SUITES}
    cards = [p for p in YAML if p not in SUITES]
    assert cards, "suites/samples/ should hold the real-data sample cards"
    catalogue = TaskCatalogue()
    for path in cards:  # each parses as a task card and passes its task type's checks (no data read)
        assert catalogue.get(str(path)).name == path.stem
