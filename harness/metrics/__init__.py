"""Metrics: thin wrappers over the libraries made for them, each with a signature that names its variant.

The table of names lives in harness.config.registry.METRICS; this package holds the wrappers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version


@dataclass(frozen=True)
class Metric:
    """One metric: `compute(predictions, references) -> float`, and the variant it computes."""

    name: str
    compute: Callable[[Sequence, Sequence], float]
    library: str  # the distribution that computes it, whose version goes into the signature
    variant: str  # e.g. "sklearn.metrics.f1_score(average='macro')"
    scale: float = 100.0  # scores are reported in points, as papers do
    # For metrics that are a mean over examples (accuracy, exact match): each example's score, which
    # lets paired tests work per example (McNemar, t over seeds and examples) instead of bootstrapping.
    per_example: Callable[[object, object], float] | None = None
    # The same metric over many resamples at once: (R x n predictions, R x n references) -> R values,
    # unscaled. Paired bootstraps use it; tests hold it equal to `compute` on every row.
    batch: Callable[[object, object], object] | None = None
    # Corpus-level metrics (BLEU, entity F1) as sums: `stats(predictions, references)` gives each
    # example's sufficient statistics (n x k) and `from_stats` turns summed rows (R x k) into R unscaled
    # values, so a resample's score is `from_stats` of its examples' summed statistics.
    stats: Callable[[Sequence, Sequence], object] | None = None
    from_stats: Callable[[object], object] | None = None
    # A metric that reads the model (its logits, its loss) and not only the stored predictions: adding
    # it to a card reruns the cells (it is hashed into their ids). Every other metric of a card is
    # computed at report time from the stored predictions when a run's record lacks it.
    needs_model: bool = False

    @property
    def signature(self) -> str:
        return f"{self.name}|{self.library}=={version(self.library)}|{self.variant}"

    def __call__(self, predictions: Sequence, references: Sequence) -> float:
        return float(self.compute(predictions, references)) * self.scale

    def many(self, predictions, references):
        """Scaled values for each row of two R x n arrays (numpy)."""
        import numpy as np

        if self.batch is not None:
            return np.asarray(self.batch(predictions, references), dtype=float) * self.scale
        return np.array([self(list(p), list(r)) for p, r in zip(predictions, references)])
