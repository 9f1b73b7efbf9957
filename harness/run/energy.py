"""The energy a cell used, measured by codecarbon (offline: no location lookup, no API, no file).

One tracker per process, made on the first cell (its hardware probe takes a second or two); each
cell is then one of its tasks (`start_task` / `stop_task`, well under a millisecond each). What it
reads, per component, is named in the record, since the figures differ in how far to trust them:

- CPU: the RAPL package counters where the kernel exposes them readable (/sys/class/powercap:
  measured); otherwise codecarbon's estimate, the CPU's TDP from its table times the measured load
  ("cpu_load"), or a constant share of it ("constant").
- GPU: NVIDIA's energy counter through NVML (measured), where there is an NVIDIA GPU.
- RAM: codecarbon's estimate from the memory's size (an estimate everywhere).

The figure is the machine's (the whole CPU package, every GPU codecarbon sees, the memory) while
the cell ran: cells that share a machine at the same time each include the others' draw. It is a
measurement of the result on one machine, like its latency, and never part of the run id. CO2e is
computed when a report is made, from the suite's `carbon_intensity`, so that changing it reruns
nothing.
"""

from __future__ import annotations

import logging
import threading
from importlib.metadata import version

CPU_METHODS = {"intel_rapl": "RAPL (measured)", "cpu_load": "TDP x load (estimated)",
               "constant": "TDP constant (estimated)", "windows_emi": "Windows EMI (measured)",
               "apple_powermetrics": "powermetrics (measured)", "intel_power_gadget": "Power Gadget (measured)"}
_lock = threading.Lock()
_probing = threading.Lock()  # held while warm() probes the hardware: a cell's metering waits for it
_tracker = None


def tracker():
    """This process's codecarbon tracker, made once."""
    global _tracker
    with _lock:
        if _tracker is None:
            from codecarbon import OfflineEmissionsTracker

            logging.getLogger("codecarbon").setLevel(logging.ERROR)  # its set-up notes are not the user's

            # the country is required by the offline tracker; its emissions are not used (CO2e comes from
            # the suite's carbon intensity at report time)
            _tracker = OfflineEmissionsTracker(country_iso_code="USA", save_to_file=False, log_level="error",
                                               allow_multiple_runs=True, tracking_mode="machine")
        return _tracker


def warm() -> None:
    """Probe this machine's hardware for the tracker in the background (a second or two, once per
    process), while the command does other work (preflight): the first cell then does not wait."""
    def probe() -> None:
        with _probing:
            try:
                meter = tracker()
                meter.start_task()
                meter.stop_task()
            except Exception:  # noqa: BLE001, S110 - the cell's own metering records what fails
                pass

    threading.Thread(target=probe, name="energy-probe", daemon=True).start()


def forget() -> None:
    """Drop this process's tracker and codecarbon's cached hardware probe (tests that fake hardware)."""
    global _tracker
    from codecarbon.core.hardware_cache import clear_cache

    with _lock:
        _tracker = None
        clear_cache()


def methods(meter) -> dict[str, str | None]:
    """How each component's energy is obtained, by the hardware the tracker found."""
    found = {type(h).__name__: h for h in meter._hardware}  # noqa: SLF001 - what codecarbon set up is not public
    cpu = found.get("CPU")
    return {"cpu": CPU_METHODS.get(getattr(cpu, "_mode", None), getattr(cpu, "_mode", None)) if cpu else None,
            "gpu": "NVML (measured)" if "GPU" in found else None,
            "ram": "memory size (estimated)" if "RAM" in found else None}


class Metered:
    """`with Metered() as m: ...` leaves the block's energy in `m.record`: kWh in all, per component
    and per phase (`m.split(phase)` closes the span since the last split as that phase's), how each
    component was obtained, and the library; or {"measure_error": why}. It never raises: a
    measurement never costs the result."""

    def __init__(self) -> None:
        self.record: dict = {}
        self._meter = None
        self._spans: list[tuple[str, object]] = []  # (phase, codecarbon's EmissionsData of the span)

    def __enter__(self) -> Metered:
        try:
            with _probing:  # a probe under way finishes first
                meter = tracker()
            if meter._active_task:  # noqa: SLF001 - left by a cell whose metering failed: not this one's
                meter.stop_task()
            meter.start_task()
            self._meter = meter
        except Exception as exc:  # noqa: BLE001 - recorded, not raised
            self.record = _error(exc)
        return self

    def split(self, phase: str, again: bool = True) -> None:
        """The energy since the last split (or the start) is `phase`'s; a new span starts (`again`)."""
        if self._meter is None:
            return
        try:
            data = self._meter.stop_task()
            if data is None:
                raise RuntimeError("codecarbon lost the cell's task")
            self._spans.append((phase, data))
            if again:
                self._meter.start_task()
        except Exception as exc:  # noqa: BLE001 - recorded, not raised
            self._meter, self.record = None, _error(exc)

    def __exit__(self, *exc: object) -> None:
        self.split("other", again=False)
        if self._meter is None:
            return
        spans, phases = [data for _, data in self._spans], {}
        for phase, data in self._spans:
            phases[phase] = phases.get(phase, 0.0) + data.energy_consumed
        last = spans[-1]
        self.record = {"kwh": sum(d.energy_consumed for d in spans), "cpu_kwh": sum(d.cpu_energy for d in spans),
                       "gpu_kwh": sum(d.gpu_energy for d in spans), "ram_kwh": sum(d.ram_energy for d in spans),
                       "phases": phases, "method": methods(self._meter), "cpu": last.cpu_model or None,
                       "gpu": last.gpu_model or None, "library": f"codecarbon {version('codecarbon')}"}
        self._meter = None


def _error(exc: BaseException) -> dict:
    from harness.base.errors import first_line

    return {"measure_error": f"{type(exc).__name__}: {first_line(exc)}"}


def co2e_grams(kwh: float | None, intensity: float) -> float | None:
    """Grams of CO2-equivalent for `kwh` at `intensity` grams per kWh."""
    return None if kwh is None else kwh * intensity
