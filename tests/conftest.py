"""Offline switches for every test, and the `small_suite` fixture (harness.testing.write_suite
into the test's temporary folder)."""

from __future__ import annotations

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


@pytest.fixture
def small_suite(tmp_path):
    """Write a suite (and the small sentiment card beside it); returns a function of overrides."""
    return lambda **changes: write_suite(tmp_path, **changes)
