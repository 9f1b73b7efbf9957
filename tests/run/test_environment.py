"""The lock: what the tests passed with, and the one line `plan` prints when this environment differs."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest

import harness.run.environment
from harness.cli.commands import main
from harness.run.environment import REQUIREMENTS, requirements_drift


def test_the_lock_pins_every_dependency_the_package_declares():
    from packaging.requirements import Requirement

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the lock was made on 3.11

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    wanted = [Requirement(r) for r in project["project"]["dependencies"] + project["project"]["optional-dependencies"]["test"]]
    pins = {}
    for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        name, _, pinned = line.split("#", 1)[0].strip().partition("==")
        if pinned:
            pins[name.lower().replace("_", "-")] = pinned
    for requirement in wanted:
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not in {REQUIREMENTS.name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{name} {pins[name]} outside {requirement}"


def test_differences_from_the_lock_are_listed_and_a_local_build_label_is_not_one(tmp_path):
    lock = tmp_path / "requirements.lock"
    torch_public = version("torch").split("+")[0]
    lock.write_text(f"# comment\ntorch=={torch_public}\npyyaml==0.0.1\nnot-installed-anywhere==1.0\n", encoding="utf-8")
    assert requirements_drift(lock) == [f"pyyaml {version('pyyaml')} (lock: 0.0.1)"]
    assert requirements_drift(tmp_path / "absent.lock") == []


def test_plan_prints_one_line_when_the_environment_differs_from_the_lock(small_suite, tmp_path, monkeypatch, capsys):
    lock = tmp_path / "requirements.lock"
    lock.write_text("pyyaml==0.0.1\n", encoding="utf-8")
    monkeypatch.setattr(harness.run.environment, "REQUIREMENTS", lock)
    assert main(["plan", str(small_suite())]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "differ from" in line]
    assert len(lines) == 1 and "pyyaml" in lines[0] and "(lock: 0.0.1)" in lines[0]
    lock.write_text(f"pyyaml=={version('pyyaml')}\n", encoding="utf-8")
    assert main(["plan", str(small_suite())]) == 0
    assert "differ from" not in capsys.readouterr().out
