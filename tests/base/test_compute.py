"""Where a cell trains (device, precision, devices) is part of what identifies its result: a CPU
run and a GPU run of the same cell are different records, CPU fp32 ids are those from before,
planning for a GPU from a machine without one works, and reports show the stored runs wherever
they trained and say where. The CUDA queries are monkeypatched: the decisions are what is tested."""

from __future__ import annotations

import pytest
import torch

from harness.base.device import (
    CPU_COMPUTE,
    Target,
    held_before_tensors,
    impossible,
    parse_target,
)
from harness.base.errors import HarnessError
from harness.cli.commands import main
from harness.config.suite import expand, load_suite
from harness.executors import run_job
from harness.store.database import Store
from harness.testing import FAST_TRAIN, fake_record


def gpu(monkeypatch, capability=(8, 0), count=1):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda *a: type("P", (), {"total_memory": 80 * 2**30}))
    monkeypatch.setattr(torch.cuda, "init", lambda: None)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (79 * 2**30, 80 * 2**30))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda *a: 0)


def test_auto_precision_is_bf16_only_where_it_is_native(monkeypatch):
    assert Target.here() == Target("cpu", 1, "fp32") and Target.here().compute("auto") == CPU_COMPUTE
    gpu(monkeypatch, (8, 0), 2)
    assert Target.here() == Target("cuda", 2, "bf16")  # Trainer spreads one cell over every GPU it sees
    assert Target.here().memory == 80 * 2**30  # what packing divides
    assert held_before_tensors() == 2**30  # held before any tensor: measured, per process (on a Ray worker)
    gpu(monkeypatch, (7, 5))  # T4, V100: bf16 is emulated there
    assert Target.here().compute("auto") == {"device": "cuda", "precision": "fp16", "devices": 1}
    assert Target.here().compute("fp32")["precision"] == "fp32"


def test_parse_target():
    assert parse_target("cuda") == Target("cuda", 1, "bf16")
    assert parse_target("cuda:fp16x4") == Target("cuda", 4, "fp16")
    assert parse_target("cpu") == Target()
    for bad in ("gpu", "cpu:bf16", "cuda:x0"):
        with pytest.raises(HarnessError, match="--on"):
            parse_target(bad)


def test_a_gpu_run_is_its_own_record_and_cpu_ids_stay(small_suite):
    path = small_suite(strategies={"full": {}, "lora": {}}, seeds=[0, 1])
    loaded = load_suite(path)
    cpu = {s.label: s.id for s in expand(loaded)}
    loaded.target = Target()
    assert {s.label: s.id for s in expand(loaded)} == cpu  # planned for a CPU explicitly: the same
    assert all("compute" not in s.identity() for s in expand(loaded))  # ids from before the compute key
    loaded.target = Target("cuda", 1, "bf16")
    gpu_ids = {s.label: s.id for s in expand(loaded)}
    assert gpu_ids.keys() == cpu.keys() and not set(gpu_ids.values()) & set(cpu.values())
    loaded.target = Target("cuda", 2, "bf16")
    assert not set(s.id for s in expand(loaded)) & set(gpu_ids.values())  # two devices: another result


def test_a_cell_planned_for_a_gpu_does_not_run_on_a_cpu(small_suite):
    loaded = load_suite(small_suite())
    loaded.target = Target("cuda", 1, "bf16")
    with pytest.raises(RuntimeError, match="planned to train on cuda in bf16, but this process would train on cpu "
                                           "in fp32"):
        run_job([expand(loaded)[0]])


def test_planning_for_a_gpu_from_a_cpu(small_suite, capsys):
    """`harness plan --on cuda` with bf16 from a machine without a GPU plans (no traceback); on the
    CPU, bf16 is refused in one line."""
    path = small_suite(train={**FAST_TRAIN, "precision": "bf16"})
    assert main(["plan", str(path), "--on", "cuda"]) == 0
    out = capsys.readouterr().out
    assert "1 to do" in out and "cannot run" not in out
    assert main(["plan", str(path)]) == 0
    assert "train.precision 'bf16' needs a CUDA GPU; the cells train on the CPU" in capsys.readouterr().out
    assert impossible({"device": "cuda", "precision": "bf16", "devices": 1}) is None


def test_reports_show_stored_gpu_runs_anywhere_and_say_where(small_suite, tmp_path, capsys):
    path = small_suite(seeds=[0, 1])
    loaded = load_suite(path)
    loaded.target = Target("cuda", 1, "bf16")
    store = Store(tmp_path / "results" / "store.sqlite")
    for spec in expand(loaded):
        store.write(fake_record(spec, 180))
    assert main(["leaderboard", str(path)]) == 0  # on this CPU machine: the runs the store has
    out = capsys.readouterr().out
    assert "90.0" in out and "trained on cuda in bf16" in out
    assert main(["leaderboard", str(path), "--on", "cpu"]) == 2  # the CPU cells: none is done, and it says so
    out = capsys.readouterr().out
    assert "90.0" not in out
    assert "no completed runs on cpu in fp32" in out and "its runs trained on cuda in bf16" in out
