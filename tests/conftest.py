"""Shared helpers: small suites and task cards written into a test's temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")  # `evaluate:` metrics in tests are local module folders
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

SENTIMENT_CARD = {
    "name": "small_sentiment",
    "type": "classification",
    "source": {"generate": "sentiment", "seed": 0, "options": {"n_train": 600, "n_eval": 200}},
    "inputs": ["sentence"],
    "labels": ["negative", "positive"],
    "metrics": ["accuracy", "f1_macro"],
    "primary": "accuracy",
}

FAST_TRAIN = {"epochs": 3, "learning_rate": 2.0e-3, "batch_size": 32, "max_length": 48, "warmup_ratio": 0.1}


def write_yaml(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def small_suite(tmp_path):
    """Write a suite (and the small sentiment card beside it); returns a function of overrides."""
    card = write_yaml(tmp_path / "tasks" / "small_sentiment.yaml", SENTIMENT_CARD)

    def make(**changes) -> Path:
        suite = {
            "name": "small",
            "models": {"tiny": "tiny:bert"},
            "tasks": [str(card)],
            "strategies": {"full": {}},
            "seeds": [0],
            "train": dict(FAST_TRAIN),
            "store": str(tmp_path / "results" / "store.sqlite"),
        }
        suite.update(changes)
        return write_yaml(tmp_path / "suite.yaml", suite)

    return make
