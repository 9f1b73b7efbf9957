"""Every table entry imports; the task catalogue matches the files; every suite in suites/ loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.plan import preflight
from harness.registry import (
    ADAPTERS,
    CATALOGUE_DIR,
    GENERATORS,
    METRICS,
    STRATEGIES,
    Registry,
    TaskCatalogue,
)
from harness.suite import expand, load_suite

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("table", [ADAPTERS, STRATEGIES, METRICS, GENERATORS], ids=lambda t: t.kind)
def test_every_entry_imports(table):
    for name in table:
        assert table.get(name) is not None


def test_unknown_name_suggests():
    with pytest.raises(HarnessError, match="unknown strategy 'bitfti' \\(did you mean 'bitfit'"):
        STRATEGIES.get("bitfti")


def test_strategy_table_names_match_classes():
    for name in STRATEGIES:
        assert STRATEGIES.get(name).name == name


def test_catalogue_matches_the_files_on_disk():
    catalogue = TaskCatalogue()
    on_disk = sorted(p.stem for p in CATALOGUE_DIR.rglob("*.yaml"))
    assert catalogue.names() == on_disk
    for name in catalogue.names():
        card = catalogue.get(name)  # each card parses and passes its adapter's checks
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


SUITES = sorted((ROOT / "suites").glob("*.yaml"))  # suites/samples/ holds task cards, not suites


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.name)
def test_every_suite_loads_expands_and_preflights(path):
    loaded = load_suite(path)
    specs = expand(loaded)
    cells = [(m, t, s) for m in loaded.suite.models for t in loaded.cards for s in loaded.strategies
             if not loaded.suite.excluded(m, t, s)]
    assert len(specs) == len(cells) * len(loaded.suite.seeds) * len(loaded.suite.shots)
    refused = preflight(loaded, specs)
    # a tiny backbone always builds: a tiny cell is refused only because a strategy or the task type cannot apply
    for spec in specs:
        if spec.model_spec.source.startswith("tiny:") and spec.id in refused:
            assert refused[spec.id].startswith((f"strategy {spec.strategy_key!r} ", "task type ")), refused[spec.id]


def test_suites_folder_is_not_empty():
    assert any(p.name == "quickstart.yaml" for p in SUITES)
