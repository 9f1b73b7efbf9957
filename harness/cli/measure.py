"""`harness measure SUITE`: the serving cost of a suite's kept runs, measured again on this machine
(harness.run.remeasure), kept in the store beside the records, one per (run, device)."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from harness.base.errors import HarnessError, first_line, shown


def cmd_measure(console: Console, loaded, grid, store) -> int:
    from harness.run.environment import environment
    from harness.run.remeasure import kept_model, remeasure

    done = store.done([s.id for s in grid.reported])
    specs = [s for s in grid.reported if s.id in done]
    if not specs:
        raise HarnessError(f"{loaded.name}: no completed runs in {store.path}; run the suite first")
    runs, measured, unkept, prompted, failed = store.path.parent / "runs", 0, [], [], []
    for spec in specs:
        if not spec.build_strategy().trains:
            prompted.append(spec)
            continue
        folder = kept_model(runs, spec.id)
        if folder is None:
            unkept.append(spec)
            continue
        try:
            serving = remeasure(spec, folder)
        except Exception as exc:  # noqa: BLE001 - one run's failure is said, and the rest measured
            failed.append(spec)
            console.print(Text(shown(f"✗ {spec.label}: {type(exc).__name__}: {first_line(exc)}"), style="red"))
            continue
        store.add_measurement(spec.id, serving["device"], serving, environment())
        measured += 1
        way = serving.get("unmerged") or serving.get("as_trained") or {}
        merged = (serving.get("merged") or {}).get("latency_ms", {}).get("median")
        console.print(Text(shown(f"✓ {spec.label}: {way['latency_ms']['median']:.2f} ms per example"
                                 + (f" ({merged:.2f} ms merged)" if merged is not None else "")
                                 + f" on {serving['device']}")))
    console.print(Text(shown(f"{measured} run(s) measured on this machine and kept in {store.path}")))
    if unkept:
        console.print(Text(shown(f"{len(unkept)} run(s) not measured: their model was not kept (train: {{save_model: "
                                 f"true}} keeps it), such as {unkept[0].label}")), soft_wrap=True)
    if prompted:
        console.print(Text(shown(f"{len(prompted)} prompting run(s) not measured: they keep no model of their own "
                                 f"(their latency is the record's, from where they ran)")), soft_wrap=True)
    return 1 if failed else 0
