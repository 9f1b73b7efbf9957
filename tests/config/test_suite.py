"""A suite with one thing broken is refused before anything runs: one line naming the file and
the key, a non-zero exit, nothing in the store. Each variant is the quickstart with one change."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.cli.commands import main
from harness.store.database import Store

QUICKSTART = Path(__file__).resolve().parents[2] / "suites" / "quickstart.yaml"


def variant(tmp_path: Path, change=None, text=None) -> Path:
    suite = yaml.safe_load(QUICKSTART.read_text(encoding="utf-8"))
    suite["store"] = str(tmp_path / "store.sqlite")
    if change:
        change(suite)
    path = tmp_path / "broken.yaml"
    if text is None:
        path.write_text(yaml.safe_dump(suite, sort_keys=False), encoding="utf-8")
    else:
        path.write_bytes(text(yaml.safe_dump(suite, sort_keys=False)))
    return path


def refused(path: Path, capsys, *expected: str, lines: int = 1) -> str:
    assert main(["run", str(path)]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("error: ") and str(path) in out[-1], out
    assert len(out) <= lines, out
    for text in expected:
        assert text in " ".join(out), out
    store = path.parent / "store.sqlite"
    assert not store.exists() or Store(store).statuses() == {}  # nothing ran, nothing was recorded
    return out[-1]


def test_bytes_that_are_not_utf8(tmp_path, capsys):
    path = variant(tmp_path, text=lambda t: t.replace("name: quickstart", "name: quickstart  # caf\xe9").encode("latin-1"))
    assert "not UTF-8 text (byte 0xe9" in refused(path, capsys, ":1: ")


def test_a_top_level_key_given_twice(tmp_path, capsys):
    path = variant(tmp_path, text=lambda t: (t + "name: other\n").encode())
    refused(path, capsys, "key 'name' is given twice (first on line 1)")
    assert not (tmp_path / "store.sqlite").exists()


def test_a_nested_key_given_twice(tmp_path, capsys):
    path = variant(tmp_path, text=lambda t: t.replace("train:\n", "train:\n  epochs: 1\n", 1).encode())
    refused(path, capsys, "key 'epochs' is given twice")


@pytest.mark.parametrize("key,value,why", [
    ("batch_size", 1.0e12, "train.batch_size: Input should be a valid integer"),
    ("max_length", 64.0, "train.max_length: Input should be a valid integer"),
    ("epochs", 1.0e12, "train.epochs: Input should be less than or equal to 1000"),
    ("epochs", float("inf"), "train.epochs: Input should be a finite number"),
])
def test_integers_as_floats_and_absurd_epochs(tmp_path, capsys, key, value, why):
    path = variant(tmp_path, lambda s: s["train"].__setitem__(key, value))
    refused(path, capsys, why)


def test_seeds_given_as_floats(tmp_path, capsys):
    refused(variant(tmp_path, lambda s: s.__setitem__("seeds", [0.0, 1.0])), capsys, "seeds.0: Input should be a valid integer")


def test_a_batch_no_memory_holds_refuses_the_run_in_a_short_summary(tmp_path, capsys):
    def everywhere(suite):  # the suite's batch size, and each override's that sets one
        for train in [suite["train"], *(o["train"] for o in suite.get("overrides", []))]:
            train["batch_size"] = 10**12
    path = variant(tmp_path, everywhere)
    refused(path, capsys, "no cell can run (40 refused", "more than the", "lower train.batch_size", lines=6)


def test_a_max_length_beyond_the_backbones_positions(tmp_path, capsys):
    path = variant(tmp_path, lambda s: s["train"].__setitem__("max_length", 10**12))
    refused(path, capsys, "no cell can run (40 refused", "holds 512 positions, and train.max_length", lines=6)


def test_a_target_length_beyond_the_decoders_positions_refuses_its_generation_cells(tmp_path, capsys):
    path = variant(tmp_path, lambda s: s["train"].__setitem__("max_target_length", 10**12))
    assert main(["plan", str(path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "32 to do, 8 cannot run" in out  # the 8 summarization and translation cells; the rest read no target
    assert "model 'tiny-llama' holds 512 positions" in out


def test_only_the_backbone_that_cannot_hold_the_length_is_refused(small_suite):
    from harness.config.suite import expand, load_suite
    from harness.plan.plan import preflight

    loaded = load_suite(small_suite(models={"bert": "tiny:bert", "t5": "tiny:t5"}, train={"max_length": 600}))
    specs = expand(loaded)
    reasons = preflight(loaded, specs)
    assert [s.model for s in specs if s.id in reasons] == ["bert"]  # T5's positions are relative: no limit
    assert list(reasons.values()) == ["model 'bert' holds 512 positions, and train.max_length at these settings "
                                      "needs 600 on task 'small_sentiment'; lower them to fit"]


def test_refusals_that_differ_only_in_names_and_figures_are_one_line():
    from harness.base.errors import refusal_summary

    memory = [f"strategy 'full' on 'm{i}', task 't': needs about {i}.5 GiB at batch 32" for i in range(30)]
    others = [f"reason number {'abcdef'[i]} of its own kind" for i in range(6)]
    lines = refusal_summary(memory + others[:1], "s.yaml")
    assert lines == [f"(30 cells, such as): {memory[0]}", f"(1 cell): {others[0]}"]
    lines = refusal_summary(memory + [f"{o} {'x' * i}" for i, o in enumerate(others)], "s.yaml")
    assert len(lines) == 5 and lines[-1] == "(3 more cells, for 3 other reasons): `harness plan s.yaml --all` lists them"
