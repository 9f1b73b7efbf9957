"""The expected best score for a budget of trials (Dodge et al. 2019, "Show Your Work"), from a
sweep's trials alone: nothing is re-run.

With n settings tried, each scored by its mean over the trial seeds, the best dev score of k of
them drawn at random has expectation sum_i v_(i) C(i-1, k-1) / C(n, k), v sorted ascending: the
draws are without replacement, which makes it the unbiased (U-statistic) estimate of the best of
k trials and equal to the best trial at k = n (the with-replacement form of the 2019 paper falls
short of the best trial at every k; Dodge et al. 2021 discuss its bias). The eval score of that
dev-best has the same weights over the settings' eval scores, sorted by dev (settings tied on dev
share their weight: ties are broken at random). Against train time, k trials cost k times a
setting's mean train time.
"""

from __future__ import annotations

from math import comb

import numpy as np

from harness.sweep.selection import Setting, settings


def expected_max(values, k: int) -> float:
    """E[max of k of `values` drawn without replacement], 1 <= k <= len(values)."""
    return expected_at_best(values, values, k)


def expected_at_best(dev, other, k: int) -> float:
    """E[`other` of the draw with the best dev] among k of the settings drawn without replacement."""
    dev, other = np.asarray(dev, dtype=float), np.asarray(other, dtype=float)
    n = len(dev)
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the {n} settings, not {k}")
    total = 0.0
    for level in np.unique(dev):  # P(the best draw's dev is this level): C(#<=, k) - C(#<, k), over C(n, k)
        weight = (comb(int(np.sum(dev <= level)), k) - comb(int(np.sum(dev < level)), k)) / comb(n, k)
        total += weight * float(other[dev == level].mean())
    return total


def curve(found: list[Setting]) -> dict:
    """For k = 1 .. n settings: expected best dev, the eval of that dev-best, and the train time of k trials."""
    dev, evals = [s.dev for s in found], [s.eval for s in found]
    seconds = float(np.mean([s.seconds for s in found])) if found else 0.0
    ks = list(range(1, len(found) + 1))
    return {"k": ks, "dev": [expected_max(dev, k) for k in ks], "eval": [expected_at_best(dev, evals, k) for k in ks],
            "seconds": [k * seconds for k in ks]}


def curves(results) -> list[dict]:
    """One curve per (model, strategy, task) tuned in `results` (harness.report.results.Results)."""
    out = []
    for (model, task, strategy), found in settings(results.trial_scores()).items():
        if found:
            out.append({"model": model, "strategy": strategy, "task": task, "settings": len(found),
                        "metric": results.tasks[task]["primary"], **curve(found)})
    return out
