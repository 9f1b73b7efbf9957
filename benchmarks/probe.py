"""How close `harness plan --time` comes to the time cells really take.

Each cell shape of a suite (seeds share one) is probed as `plan --time` probes it (6 optimizer
steps and two evaluation batches through the runner, scaled to the cell's steps and rows); then
the suite runs in a fresh store and each cell's recorded wall time is set against its estimate.

    python benchmarks/probe.py [--suite suites/quickstart.yaml] [--record]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="suites/quickstart.yaml")
    parser.add_argument("--record", action="store_true", help="append the figures to benchmarks/results.md")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)  # as the command line does
    from harness.cli.commands import main as harness
    from harness.config.suite import expand, load_suite
    from harness.plan.plan import preflight
    from harness.plan.probe import probe
    from harness.store.database import Store

    with tempfile.TemporaryDirectory(prefix="harness-probe-") as folder:
        store_path = Path(folder) / "store.sqlite"
        loaded = load_suite(args.suite)
        specs = expand(loaded)
        refused = preflight(loaded, specs)
        cells = [s for s in specs if s.id not in refused and not s.partners]
        started = time.perf_counter()
        shapes: dict[str, object] = {}
        for spec in cells:
            key = spec.model + spec.task + spec.strategy_key + spec.train.model_dump_json()
            if key not in shapes:
                shapes[key] = probe(spec, Path(folder) / "runs")
        probing = time.perf_counter() - started
        estimates = {s.id: shapes[s.model + s.task + s.strategy_key + s.train.model_dump_json()] for s in cells}
        harness(["run", args.suite, "--store", str(store_path)])
        frame = Store(store_path).frame([s.id for s in cells])
    lines = [f"{'cell':44} {'estimate':>9} {'actual':>8} {'ratio':>6}"]
    ratios = []
    for _, row in frame.iterrows():
        guess, actual = estimates[row["id"]].seconds, row["cost"]["wall_seconds"]
        ratios.append(guess / actual)
        lines.append(f"{row['model'] + ' · ' + row['task'] + ' · ' + row['strategy'] + ' · ' + str(row['seed']):44} "
                     f"{guess:8.1f}s {actual:7.1f}s {guess / actual:6.2f}")
    guessed = sum(e.seconds for e in estimates.values())
    actual = float(frame["cost"].map(lambda c: c["wall_seconds"]).sum())
    lines += ["", f"{args.suite}: {len(frame)} cells, {len(shapes)} probes taking {probing:.1f}s",
              f"grid: estimated {guessed:.1f}s, actual {actual:.1f}s of cell time, ratio {guessed / actual:.3f}",
              f"per cell: median ratio {statistics.median(ratios):.2f}, range {min(ratios):.2f} to {max(ratios):.2f}"]
    text = "\n".join(lines)
    print(text)
    if args.record:
        record(f"probe.py --suite {args.suite}", text)


if __name__ == "__main__":
    main()
