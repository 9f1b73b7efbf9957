"""How often the best set (the † marks) leaves out a row that is truly a best, and how often it
narrows to a row that is truly ahead: simulated columns with a known truth (harness.report.simulate:
n = 872 examples, SST-2's validation size; a logit-normal difficulty per example shared by every
row; seed noise of 1 or 3 accuracy points), 2, 3 and 5 seeds, boards of 2 to 100 rows. The figures
of the README's statistics section.

    python benchmarks/best_set.py [--boards 400] [--record]

- "left out": all rows equal; the share of boards whose set leaves out some row (the guarantee: at
  most α = 5%, up to simulation error ±2·sqrt(0.05·0.95/boards)).
- "alone": one row `gap` points ahead of the others, all equal; the share of boards whose set is
  that row alone, the mean size of the set, and the share that keep it (it must always be kept).
- "spread": 10 rows 1 point apart (85, 84, ..., 76): the mean size of the set and the share that
  keep the best.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record  # noqa: E402

DRAWS = 1000


def boards(accuracies, seeds: int, noise: float, count: int, seed: int) -> tuple[float, float, float, float]:
    """(share leaving out some row, share with row 0 alone, mean set size, share keeping row 0)."""
    from harness.report import simulate

    rng = np.random.default_rng(seed)
    out = alone = size = kept = 0
    for b in range(count):
        members = np.array(simulate.column(rng, accuracies, seeds, noise).best_set(draws=DRAWS, seed=b).members)
        out += not members.all()
        alone += members[0] and members.sum() == 1
        size += members.sum()
        kept += members[0]
    return out / count, alone / count, size / count, kept / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", type=int, default=400)
    parser.add_argument("--record", action="store_true", help="append the figures to benchmarks/results.md")
    args = parser.parse_args()
    started = time.perf_counter()
    lines = [f"{args.boards} boards per line (100-row boards: a quarter as many), {DRAWS} null draws per board, "
             f"n = 872, accuracy 85%"]
    lines.append("left out (all rows equal; at most 5%):")
    lines.append("  rows  seed noise  | 2 seeds  3 seeds  5 seeds")
    for rows, noise in ((2, 1.0), (2, 3.0), (10, 1.0), (10, 3.0), (31, 1.0), (31, 3.0), (100, 1.0)):
        count = args.boards // 4 if rows == 100 else args.boards
        shares = [boards([0.85] * rows, seeds, noise, count, 1000 * rows + seeds)[0] for seeds in (2, 3, 5)]
        lines.append(f"  {rows:>4}  {noise:>6.0f} pt   | " + "  ".join(f"{s:>7.1%}" for s in shares))
        print(lines[-1], flush=True)
    lines.append("alone (one row ahead of equal rows, 1 point of seed noise): alone / mean set size / kept")
    lines.append("  rows  gap  | 2 seeds                3 seeds                5 seeds")
    for rows, gap in ((2, 2), (2, 4), (10, 4), (31, 4), (31, 6), (100, 6)):
        count = args.boards // 4 if rows == 100 else args.boards // 2
        found = [boards([0.85 + gap / 100] + [0.85] * (rows - 1), seeds, 1.0, count, 7 * rows + gap + seeds)
                 for seeds in (2, 3, 5)]
        lines.append(f"  {rows:>4}  {gap:>2} pt | " + "  ".join(f"{a:>5.0%} / {s:>5.1f} / {k:>4.0%}"
                                                             for _, a, s, k in found))
        print(lines[-1], flush=True)
    lines.append("spread (10 rows 1 point apart, 1 point of seed noise): mean set size / kept the best")
    spread = [0.85 - 0.01 * i for i in range(10)]
    found = [boards(spread, seeds, 1.0, args.boards // 2, 99 + seeds) for seeds in (2, 3, 5)]
    lines.append("  " + "  ".join(f"{s} seeds: {size:.1f} / {k:.0%}" for s, (_, _, size, k) in zip((2, 3, 5), found)))
    lines.append(f"({time.perf_counter() - started:.0f} s)")
    text = "\n".join(lines)
    print(text)
    if args.record:
        record("best_set.py", text)


if __name__ == "__main__":
    main()
