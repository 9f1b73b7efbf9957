"""harness: which fine-tuning strategy, on which backbone, works best for my tasks, and at what cost?"""

__version__ = "0.1.0"

# Bump when a change to harness alters the results of an unchanged run spec (training path,
# preprocessing, metric computation): every run id changes with it, so old results are not reused.
RESULTS_VERSION = 1
