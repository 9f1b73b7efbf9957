"""Does a pruned sweep choose what the full grid chooses, and at what compute?

suites/tuning.yaml's sweep (MiniLM and a tiny BERT; full fine-tuning, LoRA and BitFit; two
generated tasks; 4 settings per group: 9 groups) is run twice per replicate, each in its own store:
the full grid, and the same grid with `prune` (Optuna's successive halving; min_epochs and the
reduction factor below). A replicate is one trial seed r: the sweep's trials run on seed r and the
suite's seeds are [r], so each group's final is its chosen trial and no final is trained twice.

Printed per replicate and in all: how often the pruned sweep chose the full grid's setting, the
compute each spent (trial-epochs, from the records), the train time each spent (harness's own train
clock, summed over trials), and the eval score of each choice (the chosen trial's). Where the pruned
sweep chose otherwise, both settings' dev scores in the full grid are printed: how far apart the
choices were on the data the sweep sees.

    python benchmarks/pruning.py [--replicates 0 1 2] [--min-epochs 0.25] [--factor 3] [--record]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "suites" / "tuning.yaml"


def write(folder: Path, replicate: int, prune: dict | None) -> Path:
    suite = yaml.safe_load(SUITE.read_text(encoding="utf-8"))
    kind = "pruned" if prune else "full"
    suite["name"] = f"tuning_{kind}_{replicate}"
    suite["seeds"] = [replicate]
    suite["sweep"]["seeds"] = [replicate]
    if prune:
        suite["sweep"]["prune"] = prune
    suite["store"] = str(folder / f"{kind}-{replicate}.sqlite")
    path = ROOT / "suites" / f".bench-{kind}-{replicate}.yaml"  # beside tuning.yaml: its task names resolve
    path.write_text(yaml.safe_dump(suite, sort_keys=False), encoding="utf-8")
    return path


def sweep(path: Path) -> tuple[dict, float]:
    """Run the suite; {group: choice} from its store, and the wall seconds of the run."""
    from harness.config.suite import load_suite
    from harness.store.database import Store
    from harness.sweep.grid import grid

    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness", "run", str(path)], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    loaded = load_suite(path)
    with Store(loaded.store_path) as store:
        return grid(loaded, store).choices, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicates", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--min-epochs", type=float, default=0.25)
    parser.add_argument("--factor", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="append the figures to benchmarks/results.md")
    args = parser.parse_args()
    prune = {"min_epochs": args.min_epochs, "reduction_factor": args.factor}
    lines = [f"suites/tuning.yaml, 9 groups x 4 settings; prune {prune}; replicates (trial seeds) {args.replicates}"]
    same = groups = 0
    totals = {"full": [0.0, 0.0, 0.0], "pruned": [0.0, 0.0, 0.0]}  # trial-epochs, train seconds, wall seconds
    score_gap = []
    paths = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for replicate in args.replicates:
                found = {}
                for kind in ("full", "pruned"):
                    path = write(Path(tmp), replicate, prune if kind == "pruned" else None)
                    paths.append(path)
                    found[kind], wall = sweep(path)
                    totals[kind][0] += sum(c.epochs for c in found[kind].values())
                    totals[kind][1] += sum(c.seconds for c in found[kind].values())
                    totals[kind][2] += wall
                for group, full in found["full"].items():
                    pruned = found["pruned"][group]
                    groups += 1
                    same += pruned.point == full.point
                    score_gap.append(full.eval - pruned.eval)
                    where = " · ".join(group)
                    line = (f"replicate {replicate} {where}: full chose {full.setting} (dev {full.dev:.1f}, eval "
                            f"{full.eval:.1f}; {full.epochs:g} trial-epochs), pruned chose {pruned.setting} (dev "
                            f"{pruned.dev:.1f}, eval {pruned.eval:.1f}; {pruned.epochs:g} trial-epochs, "
                            f"{pruned.pruned} stopped)")
                    if pruned.point != full.point:
                        grid_dev = {s.point: s.dev for s in full.candidates}
                        line += f"; in the full grid: {grid_dev.get(pruned.point, float('nan')):.1f} vs {full.dev:.1f} dev"
                    lines.append(line)
                    print(line, flush=True)
    finally:
        for path in paths:
            path.unlink(missing_ok=True)
    (full_epochs, full_train, full_wall), (pruned_epochs, pruned_train, pruned_wall) = totals["full"], totals["pruned"]
    lines += [
        f"same choice: {same} of {groups} groups ({100 * same / groups:.0f}%)",
        f"compute: full grid {full_epochs:g} trial-epochs, pruned {pruned_epochs:g} "
        f"({pruned_epochs / full_epochs:.2f}x)",
        f"train time of the trials: full {full_train:.0f} s, pruned {pruned_train:.0f} s "
        f"({pruned_train / full_train:.2f}x); whole runs {full_wall:.0f} s vs {pruned_wall:.0f} s "
        f"({pruned_wall / full_wall:.2f}x)",
        f"eval score of the choice, full minus pruned: mean {sum(score_gap) / len(score_gap):+.2f} points, "
        f"largest {max(score_gap, key=abs):+.2f}",
    ]
    print("\n".join(lines[-4:]))
    if args.record:
        record("benchmarks/pruning.py", "\n".join(lines))


if __name__ == "__main__":
    main()
