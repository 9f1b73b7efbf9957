"""The energy a cell used (codecarbon, offline), per phase and component, with how each was obtained."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from rich.console import Console

from harness.config.suite import expand, load_suite
from harness.executors.local import run_local
from harness.plan.plan import jobs
from harness.run import energy
from harness.store.database import Store
from harness.testing import FAST_TRAIN

PACKAGE = 1_000_000  # the fake counter's first reading, microjoules


@pytest.fixture
def fake_rapl(tmp_path, monkeypatch):
    """A RAPL package counter laid out as the kernel lays out /sys/class/powercap (a control type
    `intel-rapl` with a `subsystem` link back to the class folder, and a package domain with its
    name, counter and range), which codecarbon reads in place of the real one; the counter file."""
    import codecarbon.core.cpu as cpu
    from codecarbon.external.hardware import CPU

    powercap = tmp_path / "sys" / "class" / "powercap"
    domain = powercap / "intel-rapl" / "intel-rapl:0"
    domain.mkdir(parents=True)
    (powercap / "intel-rapl" / "subsystem").symlink_to(powercap)
    (domain / "name").write_text("package-0\n")
    (domain / "energy_uj").write_text(f"{PACKAGE}\n")
    (domain / "max_energy_range_uj").write_text("262143328850\n")
    monkeypatch.setattr(cpu, "is_rapl_available", lambda *args, **kwargs: True)
    defaults = list(CPU.__init__.__defaults__)
    defaults[0] = str(powercap / "intel-rapl" / "subsystem")  # rapl_dir
    monkeypatch.setattr(CPU.__init__, "__defaults__", tuple(defaults))
    energy.forget()  # codecarbon's probe of this machine is cached per process
    yield domain / "energy_uj"
    energy.forget()


def test_a_fake_rapl_counter_read_through_codecarbon_gives_the_joules_it_advanced(fake_rapl: Path):
    with energy.Metered() as meter:
        time.sleep(0.2)
        meter.split("load")
        fake_rapl.write_text(f"{PACKAGE + 3_600_000_000}\n")  # 3600 J: 1 Wh
        time.sleep(0.2)
        meter.split("train")
    record = meter.record
    assert record["method"] == {"cpu": "RAPL (measured)", "gpu": None, "ram": "memory size (estimated)"}
    assert record["cpu_kwh"] == pytest.approx(0.001, rel=1e-5)
    assert record["phases"]["train"] == pytest.approx(0.001 + record["ram_kwh"] * 0.5, rel=0.01)
    assert record["phases"]["load"] < 1e-5  # the counter did not move: RAM's estimate alone
    assert record["kwh"] == pytest.approx(sum(record["phases"].values()))
    assert record["kwh"] == pytest.approx(record["cpu_kwh"] + record["gpu_kwh"] + record["ram_kwh"])


def test_every_cell_records_its_energy_by_phase_offline(small_suite, monkeypatch):
    reached = []
    connect = socket.socket.connect

    def watched(self, address):  # any connection to another machine is a failure of "offline"
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            reached.append(address)
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", watched)
    energy.forget()
    loaded = load_suite(small_suite(models={"llama": "tiny:llama"}, strategies={"full": {}, "zero_shot": {}},
                                    train={**FAST_TRAIN, "epochs": 1, "max_train_samples": 64, "max_eval_samples": 32}))
    with Store(loaded.store_path) as store:
        assert not run_local(jobs(expand(loaded)), store, Console(quiet=True)).failed
        costs = dict(zip(store.frame().strategy, store.frame().cost))
    assert not reached
    trained, prompted = costs["full"]["energy"], costs["zero_shot"]["energy"]
    for record in (trained, prompted):
        assert record["kwh"] > 0 and record["method"]["cpu"] and record["library"].startswith("codecarbon ")
        assert record["kwh"] == pytest.approx(sum(record["phases"].values()))
    assert trained["phases"]["train"] > 0 and {"load", "preprocess", "evaluate", "measure"} <= set(trained["phases"])
    assert "train" not in prompted["phases"]


def test_a_failing_meter_costs_nothing_but_its_figure(small_suite, monkeypatch):
    monkeypatch.setattr(energy, "tracker", lambda: (_ for _ in ()).throw(OSError("no counters")))
    loaded = load_suite(small_suite(train={**FAST_TRAIN, "epochs": 1, "max_train_samples": 32, "max_eval_samples": 16}))
    with Store(loaded.store_path) as store:
        assert not run_local(jobs(expand(loaded)), store, Console(quiet=True)).failed
        record = store.frame().iloc[0]
    assert record.status == "done" and record.cost["energy"] == {"measure_error": "OSError: no counters"}


def test_a_cell_metered_while_the_hardware_probe_runs_waits_for_it_and_is_measured():
    energy.forget()
    energy.warm()  # `harness run` starts it before preflight; here the cell comes at once
    with energy.Metered() as meter:
        time.sleep(0.1)
        meter.split("train")
    assert meter.record["kwh"] > 0 and set(meter.record["phases"]) == {"train", "other"}
    energy.forget()
