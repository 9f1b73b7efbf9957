"""Hostile and unlucky inputs (#23): a shared suite or card, a full disk, a hostile name, a
diverged run. Each case is refused in one line or handled, and nothing is lost or run unasked."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
import yaml

from harness.testing import SENTIMENT_CARD, command, refused, write_suite, write_yaml

FAST = {"epochs": 1, "max_steps": 2, "learning_rate": 1.0e-3, "batch_size": 16, "max_length": 24}


def _card(folder: Path, **changes) -> Path:
    return write_yaml(folder / "tasks" / "small_sentiment.yaml", {**SENTIMENT_CARD, **changes})


# --------------------------------------------------------------------------- code runs only when asked

EVIL_METRIC = '''
from pathlib import Path

import datasets
import evaluate

Path(MARKER).write_text("the metric script ran")

class evil(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(description="", citation="", inputs_description="",
                                   features=datasets.Features({"predictions": datasets.Value("int64"),
                                                               "references": datasets.Value("int64")}))

    def _compute(self, predictions, references):
        return {"share": sum(p == r for p, r in zip(predictions, references)) / len(references)}
'''


def test_an_evaluate_metric_in_a_card_runs_only_with_trust_code(tmp_path):
    pytest.importorskip("evaluate")
    script = tmp_path / "evil" / "evil.py"
    script.parent.mkdir()
    script.write_text(EVIL_METRIC.replace("MARKER", repr(str(script.parent / "RAN"))), encoding="utf-8")
    card = _card(tmp_path, metrics=["accuracy", f"evaluate:{script.parent}#share"])
    suite = write_suite(tmp_path, train=FAST)
    out = refused(command(["plan", str(suite)], [tmp_path]), most=2,
                  mentions=(str(card), "metrics.1", "evaluate:", "--trust-code"))
    assert not (script.parent / "RAN").exists(), "the script ran without consent"
    assert out.lines[0].startswith("error: ")
    for reporting in (["leaderboard", str(suite)], ["run", str(suite)]):
        refused(command(reporting, [tmp_path]), most=2, mentions=("--trust-code",))
        assert not (script.parent / "RAN").exists()

    allowed = command(["plan", str(suite), "--trust-code"])
    assert allowed.escaped is None and allowed.code == 0, allowed.text
    assert "runs code (--trust-code)" in allowed.text and "metrics.1" in allowed.text
    assert (script.parent / "RAN").exists()  # the flag is what lets it run


def test_trust_remote_code_on_a_model_runs_nothing_without_the_flag(tmp_path):
    import transformers

    folder = tmp_path / "remote"
    transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=32).save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "configuration_evil.py").write_text(
        "from pathlib import Path\nPath(__file__).with_name('RAN').write_text('ran')\n"
        "from transformers import BertConfig\nclass EvilConfig(BertConfig):\n    pass\n")
    suite = write_suite(tmp_path, models={"remote": {"source": str(folder), "trust_remote_code": True}}, train=FAST)
    refused(command(["plan", str(suite)], [tmp_path]), most=2, mentions=("models.remote", "trust_remote_code"))
    assert not (folder / "RAN").exists()
    # the same check where the code would load: a spec from elsewhere (a worker, a stored run) is refused too
    from harness.config.consent import UntrustedCode
    from harness.config.schemas import ModelSpec
    from harness.run.backbones import resolve

    with pytest.raises(UntrustedCode):
        resolve("remote", ModelSpec(source=str(folder), trust_remote_code=True)).config()
    assert not (folder / "RAN").exists()


def test_a_package_model_is_found_without_importing_anything(tmp_path):
    suite = write_suite(tmp_path, models={"zen": "package:this.x"}, train=FAST)
    out = command(["plan", str(suite)])
    assert out.escaped is None and "Beautiful is better than ugly" not in out.text
    assert "'this.x' is not installed" in out.text


# --------------------------------------------------------------------------- bounded YAML

BOMB = "".join(f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}" if i else "x"] * 9) + "]\n"
               for i in range(9))


@pytest.mark.parametrize("body,problem", [
    ("sweep:\n  budget: 1\n  spaces:\n  - space:\n      learning_rate: *i\n", "values"),  # a billion laughs
    ("deep: " + "[" * 500 + "]" * 500 + "\n", "deeper"),
    ("deep:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(200)) + "  " * 201 + "x: 1\n", "deeper"),
    ("? [a, b]\n: 1\n", "plain value"),
    ("loop: &l [*l]\n", "recursive"),
    ("exclude:\n" + "- {model: a}\n" * 120_000, "larger than"),
])
def test_hostile_yaml_is_refused_in_one_line(tmp_path, body, problem):
    path = tmp_path / "hostile.yaml"
    prefix = BOMB if "*i" in body else ""
    path.write_text(prefix + body, encoding="utf-8")
    refused(command(["plan", str(path)], [tmp_path]), most=1, mentions=(str(path), problem))


def test_yaml_is_parsed_by_libyaml_where_installed_and_keeps_the_duplicate_key_check(tmp_path):
    from harness.config import yamlfile

    if yaml.__with_libyaml__:
        assert issubclass(yamlfile._StrictLoader, yaml.CSafeLoader)
    path = tmp_path / "twice.yaml"
    path.write_text("name: a\nname: b\n", encoding="utf-8")
    refused(command(["plan", str(path)]), most=1, mentions=("twice.yaml:2", "given twice"))
    merged = tmp_path / "merge.yaml"
    merged.write_text("base: &b {x: 1}\nother: {<<: *b, y: 2}\n", encoding="utf-8")
    assert yamlfile.read_yaml(merged)["other"] == {"x": 1, "y": 2}


@pytest.mark.parametrize("target", ["/dev/zero", "folder"])
def test_a_data_file_that_is_a_device_or_a_folder_is_refused(tmp_path, target):
    path = "/dev/zero" if target == "/dev/zero" else str(tmp_path)
    if target == "/dev/zero" and not Path(path).exists():
        pytest.skip("no /dev/zero")
    write_yaml(tmp_path / "tasks" / "small_sentiment.yaml",
               {**{k: v for k, v in SENTIMENT_CARD.items() if k != "source"},
                "source": {"files": {"train": path}, "format": "csv"}, "splits": {"eval": None}})
    suite = write_suite(tmp_path, train=FAST)
    refused(command(["plan", str(suite)]), most=1, mentions=("source.files.train", "name a data file"))


# --------------------------------------------------------------------------- what is written, and where


def test_a_private_data_file_is_cached_privately(tmp_path):
    from harness.base.digest import cache_folder
    from harness.config.registry import load_card
    from harness.tasks.data import load_splits

    rows = "sentence,label\n" + "".join(f"text {i},{['negative', 'positive'][i % 2]}\n" for i in range(40))
    data = tmp_path / "secret.csv"
    data.write_text(rows, encoding="utf-8")
    data.chmod(0o600)
    card = write_yaml(tmp_path / "secret_task.yaml",
                      {**{k: v for k, v in SENTIMENT_CARD.items() if k not in ("source", "name")},
                       "name": "secret_task", "source": {"files": {"train": str(data)}}, "splits": {"eval": None}})
    load_splits(load_card(card))
    folder = cache_folder() / "datasets"
    assert folder.is_dir() and any(folder.rglob("*.arrow"))  # the Arrow copy is in harness's own cache
    assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0  # which no one else can read


def test_a_damaged_estimate_cache_entry_is_measured_again_and_a_full_disk_is_not_fatal(tmp_path, monkeypatch):
    suite = write_suite(tmp_path, train=FAST)
    assert command(["plan", str(suite)]).code == 0
    entries = list((tmp_path / "results" / "cache" / "estimates").glob("*.json"))
    assert entries
    for entry in entries:
        entry.write_text("")  # what write_text left on a full disk
    again = command(["plan", str(suite)])
    assert again.code == 0 and again.escaped is None, again.text
    assert all(json.loads(e.read_text()) for e in entries)  # measured and written whole again

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    for entry in entries:
        entry.unlink()
    monkeypatch.setattr(os, "replace", full)
    out = command(["plan", str(suite)])
    assert out.code == 0 and out.escaped is None, out.text
    assert not list((tmp_path / "results" / "cache" / "estimates").glob("*"))  # no half file, no temporary


def test_an_export_on_a_full_disk_is_one_line_and_the_previous_file_stays(tmp_path, monkeypatch):
    from harness.base.errors import HarnessError
    from harness.base.files import write_output

    path = tmp_path / "board.md"
    path.write_text("the previous board")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(HarnessError, match="board.md: cannot write it .No space left on device"):
        write_output(path, "a new board")
    assert path.read_text() == "the previous board" and [p.name for p in tmp_path.iterdir()] == ["board.md"]


def test_a_full_disk_when_a_record_is_written_ends_the_run_in_one_line_and_keeps_the_store(tmp_path, monkeypatch):
    from harness.store.database import Store

    suite = write_suite(tmp_path, train=FAST, seeds=[0, 1])
    write = Store.write
    calls = []

    def fill_then_write(self, record):
        calls.append(record.id)
        if len(calls) == 2:  # the database may not grow by a page more: SQLite's own "disk is full"
            pages = self.db.execute("PRAGMA page_count").fetchone()[0]
            self.db.execute(f"PRAGMA max_page_count = {pages}")
        return write(self, record)

    monkeypatch.setattr(Store, "write", fill_then_write)
    out = refused(command(["run", str(suite)]), most=4, mentions=("cannot write the record", "full"))
    assert out.lines[-1].startswith("error: ")
    db = sqlite3.connect(tmp_path / "results" / "store.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT id, status FROM runs").fetchall() == [(calls[0], "done")]  # the first is kept


def test_a_suite_name_cannot_leave_the_store_folder(tmp_path):
    for name in ("..", ".", "-rf", "../x"):
        suite = write_suite(tmp_path, name=name, train=FAST)
        refused(command(["plan", str(suite)]), most=1, mentions=("name",))


def _trained(tmp_path, **changes) -> Path:
    suite = write_suite(tmp_path, train=FAST, **changes)
    out = command(["run", str(suite)])
    assert out.code == 0, out.text
    return suite


def _digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_store_this_process_cannot_write_is_reported_from_and_left_as_it_was(tmp_path, monkeypatch):
    suite = _trained(tmp_path)
    card = tmp_path / "tasks" / "small_sentiment.yaml"
    write_yaml(card, {**SENTIMENT_CARD, "metrics": ["accuracy", "f1_macro", "mcc"]})  # mcc: computed at report time
    folder = tmp_path / "results"
    sqlite3.connect(folder / "store.sqlite").execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    before = _digest(folder)
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if mode == os.W_OK and
                        Path(path).resolve().is_relative_to(folder.resolve()) else real(path, mode, **kw))
    for argv in (["leaderboard", str(suite), "--out", str(tmp_path / "out")], ["export", str(suite), "--out",
                 str(tmp_path / "out" / "r.json")], ["report", str(suite), "--out", str(tmp_path / "out")]):
        out = command(argv)
        assert out.code == 0 and out.escaped is None, out.text
        assert "opened read-only" in out.text and "were not kept in it" in out.text
    assert _digest(folder) == before  # not a byte written, no -wal or -shm file made
    assert "mcc" in (tmp_path / "out" / "leaderboard.md").read_text()


def test_a_store_from_a_newer_harness_is_left_byte_for_byte(tmp_path):
    from harness.store.database import SCHEMA_VERSION

    path = tmp_path / "new.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE runs (id TEXT)")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    before = _digest(tmp_path)
    suite = write_suite(tmp_path / "s", train=FAST)
    refused(command(["plan", str(suite), "--store", str(path)]), most=1, mentions=("newer harness",))
    refused(command(["leaderboard", str(suite), "--store", str(path)]), most=1, mentions=("newer harness",))
    assert _digest(tmp_path) == before


@pytest.mark.parametrize("kind", ["text", "bytes", "folder"])
def test_a_store_path_that_is_not_a_store_is_one_line(tmp_path, kind):
    path = tmp_path / "store.sqlite"
    if kind == "folder":
        path.mkdir()
    else:
        path.write_bytes(b"not a database\n" if kind == "text" else os.urandom(4096))
    suite = write_suite(tmp_path / "s", train=FAST)
    for argv in (["plan", str(suite), "--store", str(path)], ["leaderboard", str(suite), "--store", str(path)],
                 ["compare", str(path), str(path)]):
        refused(command(argv, [tmp_path]), most=1, mentions=(str(path),))


# --------------------------------------------------------------------------- names are data


def test_names_print_literally_everywhere(tmp_path):
    """Markup, brackets and escape sequences in names reach the terminal and the files as written."""
    # two backbones (one alias of one backbone is one run: the id ignores display names)
    names = {"[/]": "tiny:bert", "esc\x1b[2J $\\frac{": {"source": "tiny:bert", "size": {"hidden_size": 64}}}
    suite = write_suite(tmp_path, models=names, train=FAST,
                        strategies={"lora[r=4]": {"use": "lora", "r": 4}, "lora[r=8]": {"use": "lora", "r": 8},
                                    "=cmd|' /C calc'!A0": {"use": "bitfit"}})
    for argv in (["run", str(suite)], ["plan", str(suite)], ["leaderboard", str(suite)], ["report", str(suite)]):
        out = command(argv)
        assert out.code == 0 and out.escaped is None, (argv, out.text)
        assert "\x1b" not in out.text  # no raw escape sequence reaches the terminal
        assert "esc\\x1b[2J $\\frac{" in out.text
        for label in ("lora[r=4]", "lora[r=8]"):
            assert label in out.text, (argv, label)
    assert "[/]" in out.text
    board = tmp_path / "results" / "small"
    assert (board / "report.html").exists()
    markdown = (board / "leaderboard.md").read_text()
    assert "lora\\[r=4\\]" in markdown and "\x1b" not in markdown
    csv = (board / "leaderboard.csv").read_text()
    assert "'=cmd" in csv and ",=cmd" not in csv  # a formula no spreadsheet runs


def test_markdown_escapes_html_and_newlines():
    from harness.report.board import Board, Cell, Column
    from harness.report.export import csv_safe, markdown

    board = Board("t<script>", ["model"], [("a\nb|<img src=x onerror=alert(1)>",)],
                  [Column("acc", "accuracy", "score", [Cell(mean=1.0, n=1)])])
    text = markdown([board])
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert len(rows) == 3  # header, rule, one row: the newline did not split it
    assert "<img" not in text and "&lt;img" in text and "<script>" not in text
    assert [csv_safe(v) for v in ("=1+1", "+1", "-x", "@a", "plain", 3.0)] == ["'=1+1", "'+1", "'-x", "'@a", "plain", 3.0]


# --------------------------------------------------------------------------- runs that are not results


def test_non_finite_settings_are_refused_at_load(tmp_path):
    for key, value in (("learning_rate", ".inf"), ("weight_decay", ".nan"), ("warmup_ratio", "-.inf")):
        suite = tmp_path / f"{key}.yaml"
        text = write_suite(tmp_path, train=FAST).read_text().replace("learning_rate: 0.001",
                                                                     f"learning_rate: 0.001\n  {key}: {value}", 1)
        if key == "learning_rate":
            text = text.replace("learning_rate: 0.001\n", "", 1)
        suite.write_text(text)
        refused(command(["plan", str(suite)]), most=1, mentions=(key, "finite"))


def test_a_diverged_run_is_recorded_as_such_and_left_out_of_every_mean(tmp_path):
    """A finite rate too high for the model: its loss becomes NaN. The run is recorded with the step
    it diverged at, every view says so, and the mean is over the seeds that trained."""
    from harness.report.leaderboard import VIEWS
    from harness.store.database import Store

    suite = write_suite(tmp_path, seeds=[0, 1], train={**FAST, "max_steps": 6},
                        overrides=[{"when": {"model": "tiny"}, "train": {"learning_rate": 1.0e30}}])
    out = command(["run", str(suite)])
    assert out.code == 0 and out.escaped is None, out.text
    assert "diverged at step" in out.text
    frame = Store(tmp_path / "results" / "store.sqlite").frame()
    assert len(frame) == 2
    for info in frame["info"]:
        assert info["diverged"]["step"] >= 1 and info["diverged"]["signal"] in ("loss", "grad_norm", "weights")
    for view in VIEWS:
        if view in ("tuning", "calibration", "robustness", "forgetting"):  # no sweep; no run left that kept class
            continue  # probabilities; the suite sets neither robustness nor retention
        board = command(["leaderboard", str(suite), "--view", view])
        assert board.code == 0, board.text
        assert "2 run(s) diverged" in " ".join(board.text.split()), (view, board.text)
    table = (tmp_path / "results" / "small" / "leaderboard.md").read_text()
    assert "small_sentiment (accuracy) |" in table and "| — |" in table  # no mean of diverged seeds


def test_a_diverged_trial_is_a_failed_trial_of_the_sweep(tmp_path):
    suite = write_suite(tmp_path, train=FAST, sweep={"budget": 2, "spaces": [
        {"space": {"learning_rate": [1.0e-3, 1.0e30]}}]})
    out = command(["run", str(suite)])
    assert out.code == 0 and out.escaped is None, out.text
    tuning = command(["leaderboard", str(suite), "--view", "tuning"])
    text = " ".join(tuning.text.split())
    assert "learning_rate=0.001" in text  # the setting that trained is chosen
    assert "1 trial(s) diverged" in text and "1e+30" in text


def test_dev_rows_are_checked_like_train_and_eval_rows(tmp_path):
    rows = lambda n, bad=False: "sentence,label\n" + "".join(  # noqa: E731
        f"text {i},{'neutral' if bad and i == 3 else ['negative', 'positive'][i % 2]}\n" for i in range(n))
    for split, n, bad in (("train", 60, False), ("validation", 20, False), ("dev", 20, True)):
        (tmp_path / f"{split}.csv").write_text(rows(n, bad))
    _card(tmp_path, source={"files": {s: str(tmp_path / f"{s}.csv") for s in ("train", "validation", "dev")}},
          splits={"dev": "dev"})
    suite = write_suite(tmp_path, train=FAST)
    out = command(["run", str(suite)])
    assert out.code == 1, out.text
    assert "'neutral' is not one of" in out.text and "dev" in out.text


# --------------------------------------------------------------------------- the id of a model folder


def _model_folder(path: Path) -> Path:
    import transformers

    config = transformers.BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32)
    transformers.set_seed(0)
    transformers.BertModel(config).save_pretrained(path)
    return path


def test_a_model_folder_keeps_its_run_ids_when_renamed_or_copied(tmp_path):
    import shutil

    from harness.config.suite import expand, load_suite

    first = _model_folder(tmp_path / "m1")
    ids = lambda folder: {s.label: s.id for s in expand(load_suite(  # noqa: E731
        write_suite(tmp_path, models={"m": str(folder)}, train=FAST)))}
    before = ids(first)
    renamed = first.rename(tmp_path / "m2")
    assert ids(renamed) == before
    copied = shutil.copytree(renamed, tmp_path / "elsewhere" / "copy")
    assert ids(copied) == before
    (copied / "config.json").write_text((copied / "config.json").read_text().replace('"hidden_act"', '"x": 1, "hidden_act"'))
    assert ids(copied) != before  # the content, not the name, is the identity


def test_a_version_2_store_moves_each_record_to_its_current_id():
    """Version 3 took a model folder's path out of run ids: a store the previous harness wrote (ids in
    tests/golden/run_ids_v2.json) opens with every record under its current id."""
    import tempfile

    from harness.config.suite import expand, load_suite
    from harness.store.database import RunRecord, Store

    root = Path(__file__).resolve().parents[1]
    before = json.loads((root / "tests" / "golden" / "run_ids_v2.json").read_text(encoding="utf-8"))["quickstart"]
    specs = expand(load_suite(root / "tests" / "golden" / "quickstart.yaml"))  # as the goldens knew it
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "v2.sqlite"
        with Store(path) as store:
            for i, spec in enumerate(specs):
                written = {k: v for k, v in spec.model_dump(mode="json").items() if k != "model_kind"}  # as v2 wrote it
                store.write(RunRecord(id=before[spec.label], spec=written, status="done", metrics={"accuracy": float(i)},
                                      predictions=[i], references=[1]))
        sqlite3.connect(path).execute("PRAGMA user_version = 2").connection.commit()
        with Store(path) as store:
            assert store.done([s.id for s in specs]) == {s.id for s in specs}
            assert {s.id: store.predictions(s.id) for s in specs} == {s.id: ([i], [1]) for i, s in enumerate(specs)}
        # version 3 moved the packaged folder's 16 cells (the carving rules of #24 moved every carved cell since)
        third = json.loads((root / "tests" / "golden" / "run_ids_v3.json").read_text(encoding="utf-8"))["quickstart"]
        moved = [s.label for s in specs if before[s.label] != third[s.label]]
        assert len(moved) == 16 and all(label.startswith("minilm") for label in moved)


# --------------------------------------------------------------------------- the command line


@pytest.mark.parametrize("argv,mentions", [
    (["--workers", "0"], "--workers"), (["--workers", "100000"], "--workers 100000"),
    (["--memory", "-1"], "--memory"), (["--memory", "nan"], "--memory"),
    (["--memory", "inf"], "--memory"), (["--max-retries", "-1"], "--max-retries"),
    (["--executor", "ray", "--address", "127.0.0.1:1"], "nothing answers"),
])
def test_bad_command_line_values_are_one_line(tmp_path, argv, mentions):
    suite = write_suite(tmp_path, train=FAST)
    refused(command(["run", str(suite), *argv], [tmp_path / "results"]), most=1, mentions=(mentions,))


def test_ctrl_c_while_the_command_starts_is_one_line(monkeypatch, capsys):
    """Ctrl-C during the seconds the libraries take to import: one line and 130, no traceback."""
    import sys

    from harness.cli import entry

    class Interrupted:  # Ctrl-C arriving while the commands' module is imported
        def find_spec(self, name, path=None, target=None):
            if name == "harness.cli.commands":
                raise KeyboardInterrupt

    monkeypatch.delitem(sys.modules, "harness.cli.commands")
    monkeypatch.setattr(sys, "meta_path", [Interrupted(), *sys.meta_path])
    assert entry(["--help"]) == 130
    err = capsys.readouterr().err
    assert err == "interrupted while starting: nothing ran and nothing was written\n"


def test_plan_sums_up_a_grid_that_cannot_run(tmp_path):
    suite = write_suite(tmp_path, train={**FAST, "batch_size": 1_000_000_000}, seeds=list(range(30)))
    out = command(["plan", str(suite)])
    assert out.escaped is None and out.code == 0, out.text
    assert len(out.lines) <= 8 and "30 cells cannot run" in out.text, out.text
    every = command(["plan", str(suite), "--all"])
    assert len(every.lines) > 30


# --------------------------------------------------------------------------- a fuzz run

HOSTILE_NAMES = ["[/]", "[link=http://x]x[/link]", "\x1b[2J", "a\nb", "..", "=1+1", "<b>x</b>", "\u202eevil",
                 "x" * 5000, "lora[r=4]", "\r", "name with spaces", "-rf"]
HOSTILE_VALUES = [10 ** 100, -(10 ** 100), 1.0e308, -1, 0, "", None, [], {}, "/dev/zero", "/", "x" * 100_000,
                  float("inf"), float("nan"), True, [[[[[]]]]]]
KEYS = [("models",), ("strategies",), ("tasks",), ("seeds",), ("train", "learning_rate"), ("train", "max_length"),
        ("train", "batch_size"), ("train", "epochs"), ("exclude",), ("name",), ("store",), ("shots",)]


def _fuzz_cases(n: int = 60) -> list[tuple[str, dict]]:
    import random

    rng = random.Random(23)
    cases = []
    for i in range(n):
        kind = rng.choice(["name_key", "name_value", "value", "value"])
        if kind == "name_key":
            name = rng.choice(HOSTILE_NAMES)
            where = rng.choice(["models", "strategies"])
            change = {"models": {name: "tiny:bert"}} if where == "models" else {"strategies": {name: {"use": "full"}}}
        elif kind == "name_value":
            change = {"tasks": [rng.choice(HOSTILE_NAMES)]}
        else:
            path, value = rng.choice(KEYS), rng.choice(HOSTILE_VALUES)
            change = {path[0]: value} if len(path) == 1 else {"train": {**FAST, path[1]: value}}
        cases.append((f"{i}-{kind}", change))
    return cases


@pytest.mark.parametrize("case", _fuzz_cases(), ids=lambda c: c[0])
def test_fuzz_hostile_suites_are_refused_cleanly_or_planned(tmp_path, case):
    _, change = case
    changes = {"train": FAST, **change}
    try:
        suite = write_suite(tmp_path, **changes)
    except (ValueError, yaml.YAMLError):  # PyYAML cannot even write it (nan keys ...): nothing to try
        pytest.skip("not writable as YAML")
    out = command(["plan", str(suite)])
    assert out.escaped is None, f"{type(out.escaped).__name__}: {out.escaped}"
    assert out.code in (0, 1, 2), out.text
    assert "\x1b" not in out.text and "\r" not in out.text and "Traceback" not in out.text
    if out.code == 2:
        assert len(out.lines) <= 2, out.text
