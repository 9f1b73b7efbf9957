"""Offline switches for every test, and the `small_suite` fixture (harness.testing.write_suite
into the test's temporary folder)."""

from __future__ import annotations

import logging
import os
import tempfile

import pytest

# Before anything imports huggingface_hub, which reads these once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")  # `evaluate:` metrics in tests are local module folders
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HARNESS_CACHE", tempfile.mkdtemp(prefix="harness-cache-"))  # not the user's ~/.cache
if os.environ.get("PYTEST_XDIST_WORKER"):  # one of several test processes on the machine's cores: one thread each
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)

from harness.testing import write_suite  # noqa: E402

# bitsandbytes (imported by peft) warns on import that an optional CPU kernel package is missing, as the CLI silences
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)


@pytest.fixture
def small_suite(tmp_path):
    """Write a suite (and the small sentiment card beside it); returns a function of overrides."""
    return lambda **changes: write_suite(tmp_path, **changes)


# The longest checks first: the test processes take tests in this order, and a long one taken last would
# keep one process busy after the others are done. (Ordered by where the time went in a --durations run.)
SLOWEST_FIRST = ("tests/executors/test_cluster.py", "tests/executors/test_ray.py", "tests/test_benchmarks.py",
                 "tests/executors/test_packing.py", "tests/executors/", "tests/tasks/types/",
                 "tests/report/test_stats_simulation.py", "tests/strategies/test_strategies.py")


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        return next((i for i, prefix in enumerate(SLOWEST_FIRST) if item.nodeid.startswith(prefix)), len(SLOWEST_FIRST))

    items.sort(key=rank)  # stable: the order within each group is pytest's
