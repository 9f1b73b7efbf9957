"""The report command: plots and a self-contained HTML page, checked in a real headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from harness.cli.commands import main
from harness.config.suite import expand, load_suite
from harness.report import plots
from harness.report.results import Results
from harness.store.database import Store
from harness.testing import fake_record

EVIL = "<img src=x onerror=alert(1)>"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def fill(small_suite):
    path = small_suite(models={"tiny": "tiny:bert", EVIL: {"source": "tiny:bert", "size": {"hidden_size": 32}}},
                       strategies={"full": {}, "lora": {}}, seeds=[0, 1])
    loaded = load_suite(path)
    with Store(loaded.store_path) as store:
        for spec in expand(loaded):
            correct = {"full": 180, "lora": 150}[spec.strategy] - (20 if spec.model == EVIL else 0) + spec.seed
            store.write(fake_record(spec, correct, trainable={"full": 1000, "lora": 20}[spec.strategy],
                               log_history=[{"step": s, "eval_accuracy": 50 + s} for s in (10, 20, 30)]))
    return path, loaded


def test_report_writes_every_view_and_plot(small_suite, tmp_path):
    path, loaded = fill(small_suite)
    out = tmp_path / "report"
    assert main(["report", str(path), "--out", str(out)]) == 0
    names = {p.name for p in (out / "plots").iterdir()}
    assert {"score_vs_params.png", "score_vs_memory.png", "score_vs_time.png", "task_bars.png", "eval_curves.png"} <= names
    for view in ("", "-strategies", "-backbones", "-cost", "-task"):
        for fmt in ("md", "csv", "json", "tex"):
            assert (out / f"leaderboard{view}.{fmt}").stat().st_size > 0
    page = (out / "report.html").read_text()
    assert EVIL not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.count("data:image/png;base64,") == len(names)
    assert "http://" not in page and "https://" not in page  # self-contained


def test_points_use_the_median_cost_and_the_task_average(small_suite):
    path, loaded = fill(small_suite)
    with Store(loaded.store_path) as store:
        results = Results.from_suite(loaded, expand(loaded), store)
        pts = {(p["model"], p["strategy"]): p for p in plots.points(results, "trainable_params", None)}
    assert pts[("tiny", "full")]["x"] == 1000 and pts[("tiny", "full")]["y"] == pytest.approx(90.25)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_html_renders_sorts_and_escapes_in_headless_chromium(small_suite, tmp_path):
    path, loaded = fill(small_suite)
    out = tmp_path / "report"
    assert main(["report", str(path), "--out", str(out)]) == 0
    url = (out / "report.html").as_uri() + "#sort=t1:2"  # first table, by its first task column
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    ).stdout
    assert "<table" in dom, dom[:500]
    first = dom.split("<table", 2)[1]
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td>", first)
    # sorted by the script: highest score first, so (tiny, full) leads and (evil, lora) trails
    assert rows[0] == ("tiny", "full")
    assert rows[-1] == ("&lt;img src=x onerror=alert(1)&gt;", "lora")
    assert 'class="sorted"' in first
    assert "<img src=\"x\"" not in dom and "<img src=x" not in dom  # the alias stayed text
    assert dom.count("data:image/png;base64,") >= 5
