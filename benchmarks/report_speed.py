"""How long `harness report` takes on a store of fake runs whose predictions are stored: a 24-run
store (2 tasks x 4 strategies x 3 seeds, 872 examples each, SST-2's validation size) and a
300-run one (10 tasks x 10 strategies x 3 seeds, 872 examples). The runs' scores are spread
(55% to 92% correct, a few examples apart between seeds) so that every paired test has work to do.
Times the command in this process (median of --repeat runs; the store is built once, before).

    python benchmarks/report_speed.py [--repeat 3] [--record]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record  # noqa: E402

EXAMPLES = 872


def build(folder: Path, tasks: int, strategies: int, seeds: int) -> Path:
    from harness.config.suite import expand, load_suite
    from harness.store.database import RunRecord, Store
    from harness.testing import SENTIMENT_CARD, write_suite, write_yaml

    cards = [str(write_yaml(folder / "tasks" / f"t{i}.yaml", dict(SENTIMENT_CARD, name=f"t{i}",
                                                                  source={"generate": "sentiment", "seed": i})))
             for i in range(tasks)]
    path = write_suite(folder, tasks=cards, seeds=list(range(seeds)),
                       strategies={f"lora{r}": {"use": "lora", "r": r} for r in range(1, strategies + 1)})
    loaded = load_suite(path)
    rng = np.random.default_rng(0)
    refs = [int(x) for x in rng.integers(0, 2, EXAMPLES)]
    with Store(loaded.store_path) as store:
        for spec in expand(loaded):
            rank = int(spec.strategy_key.removeprefix("lora"))
            accuracy = 0.92 - 0.37 * (rank - 1) / max(strategies - 1, 1) + rng.normal(0, 0.005)
            wrong = rng.random(EXAMPLES) > accuracy
            predictions = [1 - r if w else r for r, w in zip(refs, wrong)]
            store.write(RunRecord(id=spec.id, spec=spec.model_dump(mode="json"), status="done",
                                  metrics={"accuracy": 100 * (1 - wrong.mean()), "f1_macro": 100 * (1 - wrong.mean())},
                                  cost={"trainable_params": rank, "trainable_share": rank / 1000, "peak_memory_mb": 100.0,
                                        "memory_kind": "cpu_peak_rss", "seconds": {"train": 1.0}},
                                  predictions=predictions, references=refs))
    return path


def measure(tasks: int, strategies: int, seeds: int, repeat: int) -> tuple[int, float]:
    from harness.cli.commands import main

    with tempfile.TemporaryDirectory() as tmp:
        path = build(Path(tmp), tasks, strategies, seeds)
        times = []
        for i in range(repeat):
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                assert main(["report", str(path), "--out", str(Path(tmp) / f"out{i}")]) == 0
            times.append(time.perf_counter() - start)
    return tasks * strategies * seeds, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="append the figures to benchmarks/results.md")
    args = parser.parse_args()
    lines = []
    for shape in ((2, 4, 3), (10, 10, 3)):
        runs, seconds = measure(*shape, args.repeat)
        lines.append(f"harness report, {runs} runs ({shape[0]} tasks x {shape[1]} strategies x {shape[2]} seeds, "
                     f"{EXAMPLES} examples): {seconds:.2f} s (median of {args.repeat})")
        print(lines[-1], flush=True)
    if args.record:
        record("report_speed.py", "\n".join(lines))


if __name__ == "__main__":
    main()
