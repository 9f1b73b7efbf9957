"""A suite's measures beyond the score: forgetting (`retention`) and robustness (`robustness`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt, field_validator, model_validator

from harness.config.parsing import Strict


class Retention(Strict):
    """Forgetting: each backbone's own pretraining objective (masked-LM loss, or a decoder's
    perplexity) on held-out text, before and after a cell fine-tunes it (harness.run.retention)."""

    file: str | None = Field(None, description="a text file, relative to the suite: one text per line (.txt), or "
                                               ".jsonl / .json / .csv / .parquet rows with the text in `column`")
    task: str | None = Field(None, description="a task (a suite task or any card): the texts of its `split`")
    split: Literal["train", "dev", "eval"] = Field("eval", description="with task: which of its splits")
    column: str = Field("text", description="with a file of rows: the column holding the text")
    rows: StrictInt = Field(200, ge=1, le=100_000, description="the first N non-empty texts")
    max_length: StrictInt = Field(128, ge=8, le=4096, description="tokens per text; longer texts are truncated")
    seed: StrictInt = Field(0, description="seed of the masked-LM objective's masks (the same masks before and after)")

    @model_validator(mode="after")
    def _one_source(self) -> Retention:
        if (self.file is None) == (self.task is None):
            raise ValueError("give exactly one of 'file' or 'task'")
        return self


class Robustness(Strict):
    """Perturbed copies of every task's eval set, each scored as its own set (harness.tasks.perturb)."""

    perturbations: dict[Literal["typos", "case", "contractions"], float] = Field(
        min_length=1, description="perturbation -> the share of its sites (words, or contractible phrases) changed")
    seed: StrictInt = Field(0, description="seed of the perturbations' draws (the same text every run)")

    @field_validator("perturbations")
    @classmethod
    def _shares(cls, v: dict[str, float]) -> dict[str, float]:
        for name, share in v.items():
            if not 0 < share <= 1:
                raise ValueError(f"{name}: the share changed must be in (0, 1], got {share}")
        return v
