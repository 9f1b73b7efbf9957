"""Leaderboards: figures equal a computation by hand from the store; significance marks on cases
whose answer is known; golden Markdown / LaTeX / CSV for a fixed store."""

from __future__ import annotations

import os
import statistics
from pathlib import Path

import pandas as pd
import pytest

from harness.cli.commands import main
from harness.config.suite import expand, load_suite
from harness.report import export
from harness.report.leaderboard import VIEWS, boards
from harness.report.results import Results
from harness.store.database import RunRecord, Store
from harness.testing import fake_record, write_yaml

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
@pytest.fixture
def two_task_suite(small_suite, tmp_path):
    write_yaml(tmp_path / "tasks" / "other.yaml", {
        "name": "other", "type": "classification", "source": {"generate": "sentiment", "seed": 5},
        "inputs": ["sentence"], "labels": ["negative", "positive"], "metrics": ["accuracy", "mcc"],
        "primary": "accuracy", "average": ["accuracy", "mcc"],
    })
    path = small_suite(tasks=[str(tmp_path / "tasks" / "small_sentiment.yaml"), str(tmp_path / "tasks" / "other.yaml")],
                       strategies={"full": {}, "bitfit": {}, "lora": {}}, seeds=[0, 1, 2])
    loaded = load_suite(path)
    return path, loaded, expand(loaded)


# full is far ahead; lora is one example behind full (not significantly different); bitfit is far behind
CORRECT = {"full": 180, "lora": 179, "bitfit": 120}


def fill(loaded, specs, skip=()):
    with Store(loaded.store_path) as store:
        for spec in specs:
            if (spec.strategy, spec.task, spec.seed) in skip:
                continue
            correct = CORRECT[spec.strategy] + spec.seed - (5 if spec.task == "other" else 0)
            store.write(fake_record(spec, correct, trainable={"full": 1000, "lora": 20, "bitfit": 5}[spec.strategy]))


def test_figures_equal_a_computation_by_hand(two_task_suite):
    _, loaded, specs = two_task_suite
    fill(loaded, specs, skip={("bitfit", "other", 2)})
    with Store(loaded.store_path) as store:
        board = boards(Results.from_suite(loaded, specs, store))[0]
        rows = store.db.execute("SELECT strategy, task, json_extract(metrics, '$.accuracy'), "
                                "json_extract(metrics, '$.mcc') FROM runs").fetchall()
    primary, combined = {}, {}
    for strategy, task, acc, mcc in rows:
        primary.setdefault((strategy, task), []).append(acc)
        combined.setdefault((strategy, task), []).append(acc if task == "small_sentiment" else (acc + mcc) / 2)
    for i, (model, strategy) in enumerate(board.rows):
        for task in ("small_sentiment", "other"):
            cell = board.column(task).cells[i]
            values = primary[(strategy, task)]
            assert cell.mean == pytest.approx(statistics.mean(values), rel=1e-12)
            assert cell.std == pytest.approx(statistics.stdev(values), rel=1e-12)
            assert cell.n == len(values)
            assert cell.low <= cell.mean <= cell.high
        # the average over tasks uses each task's combined score (accuracy and MCC for 'other')
        expected = statistics.mean(statistics.mean(combined[(strategy, t)]) for t in ("small_sentiment", "other"))
        assert board.column("average").cells[i].mean == pytest.approx(expected, rel=1e-12)
    assert board.column("other").cells[board.rows.index(("tiny", "bitfit"))].n == 2
    ranks = {row[1]: board.column("rank").cells[i].mean for i, row in enumerate(board.rows)}
    assert ranks == {"full": 1.0, "lora": 2.0, "bitfit": 3.0}
    rates = {row[1]: board.column("win_rate").cells[i].mean for i, row in enumerate(board.rows)}
    assert rates == {"full": 1.0, "lora": 0.5, "bitfit": 0.0}


def test_significance_marks_where_the_answer_is_known(two_task_suite):
    _, loaded, specs = two_task_suite
    fill(loaded, specs)
    with Store(loaded.store_path) as store:
        board = boards(Results.from_suite(loaded, specs, store))[0]
    column = board.column("small_sentiment")
    by = {row[1]: column.cells[i] for i, row in enumerate(board.rows)}
    assert by["full"].place == 1 and by["lora"].place == 2
    assert by["lora"].tied and by["lora"].p_value > 0.1  # one example apart in each seed
    assert not by["bitfit"].tied and by["bitfit"].p_value < 0.01  # 60 examples apart on 200
    assert any("†" in note for note in board.notes)


def test_views(two_task_suite):
    _, loaded, specs = two_task_suite
    fill(loaded, specs)
    with Store(loaded.store_path) as store:
        results = Results.from_suite(loaded, specs, store)
        assert [b.title for b in boards(results, "strategies")] == ["small · tiny"]
        assert [b.rows for b in boards(results, "backbones")] == [[("tiny",)]] * 3
        task = boards(results, "task", "other")[0]
        cost = boards(results, "cost")[0]
    assert [c.key for c in task.columns] == ["accuracy", "mcc"]
    assert [c.key for c in cost.columns] == ["average", "trainable_params", "trainable_share", "peak_memory_mb", "train_seconds",
                                            "train_flops", "train_kwh", "kwh", "co2e_grams", "latency_ms", "merged_latency_ms", "shipped_bytes"]
    assert all(not cell.n for cell in cost.column("latency_ms").cells)  # records from before serving was measured: "—"
    assert cost.column("trainable_params").cells[0].mean == 1000


def test_every_view_of_the_table_is_offered_printed_and_written(two_task_suite, tmp_path, capsys):
    """The CLI's --view choices and help, and the files written, come from VIEWS."""
    path, loaded, specs = two_task_suite
    fill(loaded, specs)
    with pytest.raises(SystemExit):
        main(["leaderboard", str(path), "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert set(VIEWS) == {"overall", "strategies", "backbones", "task", "cost", "calibration", "forgetting",
                          "robustness", "tuning"}
    for view in VIEWS.values():
        assert f"{view.name}{' (default)' if view.name == 'overall' else ''}: {view.shows}" in shown
        if view.name in ("tuning", "calibration", "forgetting", "robustness"):  # this suite has no sweep (tests/sweep/test_sweep.py
            # has), its fake records keep no class probabilities (tests/report/test_calibration.py's cells do) and
            # measure no forgetting (tests/run/test_retention.py's do) and have no more eval sets (test_robustness.py)
            assert main(["leaderboard", str(path), "--view", view.name]) == 2
            assert f"nothing to show in the {view.name} view" in capsys.readouterr().out
            continue
        assert main(["leaderboard", str(path), "--view", view.name, "--out", str(tmp_path / "out")]) == 0
        assert (tmp_path / "out" / f"{view.stem}.md").stat().st_size > 0
    with pytest.raises(SystemExit):
        main(["leaderboard", str(path), "--view", "nonsense"])


def test_split_hygiene_is_flagged(two_task_suite):
    _, loaded, specs = two_task_suite
    with Store(loaded.store_path) as store:
        store.write(fake_record(specs[0], 150, selected_on="validation", reported_on="validation"))
        store.write(fake_record(specs[1], 150, selected_on=None, reported_on="validation"))
        board = boards(Results.from_suite(loaded, specs, store))[0]
    assert any("1 of 2 runs chose their checkpoint on the split they report (validation)" in n for n in board.notes)


def test_golden_outputs_for_a_fixed_store(two_task_suite, tmp_path):
    path, loaded, specs = two_task_suite
    fill(loaded, specs)
    out = tmp_path / "out"
    assert main(["leaderboard", str(path), "--out", str(out)]) == 0
    for name in ("leaderboard.md", "leaderboard.tex", "leaderboard.csv"):
        produced = (out / name).read_text()
        golden = GOLDEN / name
        if os.environ.get("HARNESS_UPDATE_GOLDEN"):
            golden.parent.mkdir(exist_ok=True)
            golden.write_text(produced)
        assert produced == golden.read_text(), f"{name} differs from tests/golden (HARNESS_UPDATE_GOLDEN=1 rewrites)"
    frame = pd.read_csv(out / "leaderboard.csv")
    assert list(frame.strategy) == ["full", "bitfit", "lora"]


def test_failed_runs_are_not_scored(small_suite):
    loaded = load_suite(small_suite(seeds=[0, 1]))
    specs = expand(loaded)
    with Store(loaded.store_path) as store:
        store.write(fake_record(specs[0], 140))
        store.write(RunRecord(id=specs[1].id, spec=specs[1].model_dump(mode="json"), status="failed", error="boom"))
        board = boards(Results.from_suite(loaded, specs, store))[0]
    cell = board.column("small_sentiment").cells[0]
    assert cell.mean == 70.0 and cell.n == 1
    assert export.text(cell, "score") == "70.0"


def test_latex_escapes_names():
    assert export.latex_escape("a_b & 50% #1") == r"a\_b \& 50\% \#1"


def regression_board(small_suite, tmp_path, write_nan: bool):
    """A regression column (pearson) of four rows x 3 seeds: rows a, b, c equally good, d worse.
    Row a's seed 2 predicts a constant (pearson NaN) when `write_nan`, and is absent otherwise."""
    import numpy as np

    card = write_yaml(tmp_path / "tasks" / "similar.yaml", {
        "name": "similar", "type": "classification", "source": {"generate": "similarity", "seed": 0},
        "inputs": ["sentence1", "sentence2"], "label": "score", "metrics": ["pearson"], "primary": "pearson"})
    loaded = load_suite(small_suite(tasks=[str(card)], seeds=[0, 1, 2],
                                    strategies={k: {"use": "lora", "r": r} for r, k in enumerate("abcd", 1)}))
    specs = expand(loaded)
    rng = np.random.default_rng(0)
    refs = [float(x) for x in rng.uniform(0, 5, 300)]
    truth = np.array(refs)
    with Store(loaded.store_path) as store:
        for spec in specs:
            key, seed = spec.strategy_key, spec.seed
            if key == "a" and seed == 2:
                if write_nan:
                    store.write(RunRecord(id=spec.id, spec=spec.model_dump(mode="json"), status="done",
                                          metrics={"pearson": float("nan")}, predictions=[2.5] * 300, references=refs))
                continue
            noise = np.random.default_rng(10 * "abcd".index(key) + seed).normal(0, 2.5 if key == "d" else 1.2, 300)
            preds = [float(x) for x in truth + noise]
            pearson = 100 * float(np.corrcoef(preds, refs)[0, 1])
            store.write(RunRecord(id=spec.id, spec=spec.model_dump(mode="json"), status="done",
                                  metrics={"pearson": pearson}, predictions=preds, references=refs))
        return boards(Results.from_suite(loaded, specs, store))[0]


def test_a_nan_seed_is_left_out_of_every_statistic_and_changes_no_other_mark(small_suite, tmp_path):
    """The issue's case: a NaN seed in the best row made its tests NaN, counted as "different", so an
    equally good row lost its †. Now the NaN run is dropped and counted by every statistic: the marks
    are those of the board without that run."""
    with_nan = regression_board(small_suite, tmp_path, write_nan=True)
    without = regression_board(small_suite, tmp_path / "clean", write_nan=False)
    a, b = with_nan.column("similar"), without.column("similar")
    assert [c.best_set for c in a.cells] == [c.best_set for c in b.cells]
    assert [c.p_value for c in a.cells] == pytest.approx([c.p_value for c in b.cells])
    assert [c.mean for c in a.cells] == pytest.approx([c.mean for c in b.cells])
    assert a.noise == b.noise and a.noise.dof == 7
    rows = {row[1]: i for i, row in enumerate(with_nan.rows)}
    assert a.cells[rows["a"]].dropped == 1 and a.cells[rows["a"]].n == 2
    assert sum(c.best_set for c in a.cells) == 3 and not a.cells[rows["d"]].best_set  # d is far behind
    assert any("⚠ runs with no score (NaN)" in note and "a · similar (1)" in note for note in with_nan.notes)


def test_a_seed_far_from_its_rows_others_is_marked(two_task_suite, tmp_path):
    """A collapsed seed (20 points below its row's two others) is marked ‡ on the board and named
    in the CSV; the other rows' seeds are not."""
    _, loaded, specs = two_task_suite
    with Store(loaded.store_path) as store:
        for spec in specs:
            correct = CORRECT[spec.strategy] + spec.seed
            if spec.strategy == "lora" and spec.seed == 1:
                correct -= 40  # 20 points on 200 examples
            store.write(fake_record(spec, correct))
        board = boards(Results.from_suite(loaded, specs, store))[0]
    column = board.column("small_sentiment")
    by = {row[1]: column.cells[i] for i, row in enumerate(board.rows)}
    assert by["lora"].outliers == [1] and by["full"].outliers == [] and by["bitfit"].outliers == []
    assert any(note.startswith("‡") and "lora · small_sentiment (seed 1)" in note for note in board.notes)
    assert export.text(by["lora"], "score").endswith("‡") and "‡" not in export.text(by["full"], "score")
    export.write([board], tmp_path / "out", "leaderboard", ("csv",))
    table = pd.read_csv(tmp_path / "out" / "leaderboard.csv", dtype=str)
    assert table.set_index("strategy").loc["lora", "small_sentiment_outlier_seeds"] == "1"
