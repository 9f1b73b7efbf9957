"""The Pareto frontier of score against a cost: computed as by hand, and marked in every export."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from harness.cli.commands import main
from harness.config.suite import expand, load_suite
from harness.report.pareto import frontier, pareto
from harness.store.database import Store
from harness.testing import fake_record

NAN = math.nan


def test_the_frontier_is_what_a_hand_computation_gives():
    points = [(10, 50), (100, 80), (50, 40), (1000, 79), (5, 30), (10, 50), (NAN, 99), (100, 70), (5, 29), (2000, 80)]
    # by hand: (5, 30) is cheapest; (10, 50) twice (the same cost and score: neither beats the other);
    # (100, 80) the best score at its cost. (50, 40) loses to (10, 50); (1000, 79), (100, 70) and
    # (2000, 80) to (100, 80); (5, 29) to (5, 30); a missing cost is on no frontier.
    assert frontier(points) == [True, True, False, False, True, True, False, False, False, False]
    pts = [{"x": x, "y": y} for x, y in points if not math.isnan(x)]
    assert [(p["x"], p["y"]) for p in pareto(pts)] == [(5, 30), (10, 50), (10, 50), (100, 80)]


def test_the_frontier_of_random_boards_is_never_beaten_and_beats_the_rest():
    rng = __import__("numpy").random.default_rng(0)
    for _ in range(200):
        points = [tuple(v) for v in rng.integers(0, 6, size=(int(rng.integers(1, 12)), 2)).astype(float)]
        on = frontier(points)
        for p, marked in zip(points, on):
            beaten = any(q[0] <= p[0] and q[1] >= p[1] and q != p for q in points)
            assert marked == (not beaten)


ENERGY = {("tiny", "full"): 4e-3, ("tiny", "lora"): 1e-3, ("evil", "full"): 2e-3, ("evil", "lora"): 1.5e-3}


def test_the_cost_view_marks_its_frontier_rows_in_every_export(small_suite, tmp_path):
    path = small_suite(models={"tiny": "tiny:bert", "evil": {"source": "tiny:bert", "size": {"hidden_size": 32}}},
                       strategies={"full": {}, "lora": {}}, seeds=[0, 1], carbon_intensity=100)
    loaded = load_suite(path)
    with Store(loaded.store_path) as store:
        for spec in expand(loaded):
            record = fake_record(spec, {"full": 180, "lora": 150}[spec.strategy] - 20 * (spec.model == "evil"),
                                 trainable={"full": 1000, "lora": 20}[spec.strategy])
            kwh = ENERGY[(spec.model, spec.strategy)]
            record.cost["energy"] = {"kwh": kwh, "phases": {"train": kwh / 2, "other": kwh / 2},
                                     "method": {"cpu": "RAPL (measured)", "gpu": None, "ram": "memory size (estimated)"}}
            store.write(record)
    out = tmp_path / "report"
    assert main(["report", str(path), "--out", str(out)]) == 0
    # by hand: average scores tiny·full 90, tiny·lora 75, evil·full 80, evil·lora 65. On trainable
    # parameters (1000, 20, 1000, 20) evil's rows lose to tiny's at the same count; on energy
    # (4, 1, 2, 1.5 Wh) only evil·lora loses, to tiny·lora (less energy, higher score)
    table = pd.read_csv(out / "leaderboard-cost.csv").set_index(["model", "strategy"])
    expected = {"trainable_params": {("tiny", "full"), ("tiny", "lora")},
                "kwh": {("tiny", "full"), ("tiny", "lora"), ("evil", "full")}}
    expected["train_kwh"] = expected["co2e_grams"] = expected["kwh"]
    for key, rows in expected.items():
        assert {row for row, marked in table[f"{key}_pareto"].items() if marked} == rows, key
    assert table.loc[("tiny", "full"), "co2e_grams"] == pytest.approx(4e-3 * 100)  # kWh x the suite's g/kWh
    boards = json.loads((out / "leaderboard-cost.json").read_text())
    energy = next(c for c in boards[0]["columns"] if c["key"] == "kwh")
    assert [c["frontier"] for c in energy["cells"]] == [(tuple(r) in expected["kwh"]) for r in boards[0]["rows"]]
    markdown = (out / "leaderboard-cost.md").read_text()
    assert "| tiny | lora |" in markdown and "1 Wh◆" in markdown and "1.5 Wh |" in markdown
    assert "4 Wh◆" in markdown and "RAPL (measured)" in markdown and "100 g/kWh" in markdown
    assert r"1 Wh$^{\diamond}$" in (out / "leaderboard-cost.tex").read_text()
    assert "score_vs_energy.png" in {p.name for p in (out / "plots").iterdir()}
    with Store(loaded.store_path) as store:  # one task's cost board: that task's score and cells
        from harness.report.leaderboard import boards
        from harness.report.results import Results

        results = Results.from_suite(loaded, expand(loaded), store)
        (board,) = boards(results, "cost", task=results.task_names[0])
    assert board.title.endswith(": cost") and board.columns[0].title.endswith(" score")
    assert [c.frontier for c in board.column("kwh").cells] == [tuple(r) in expected["kwh"] for r in board.rows]
