"""Multi-task joint training: one shared backbone, a head per task, batches drawn from every task.

The suite's tasks that the strategy applies to train together as one model (per backbone and
seed); each task is then scored with its own head and reported as its own cell, under the
strategy's row. Which task a batch comes from is drawn each step with probability proportional
to n_i ** (1 / T): T = 1 is proportional to the task's size, T -> infinity uniform, and values in
between the temperature-scaled mixing of multilingual and multi-task work (Arivazhagan et al.
2019; T5, Raffel et al. 2020). An epoch is as many batches as the tasks' epochs together.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from harness.config.parsing import Strict
from harness.strategies.full import Full


class MultiTask(Full):
    """Multi-task joint training: a shared backbone, fully fine-tuned, and a head per task."""

    name = "multitask"
    joint = True
    task_types = frozenset({"classification", "token_classification"})

    class Args(Strict):
        tasks: list[str] | None = Field(
            None, min_length=2, description="the suite tasks to train together; all it applies to if unset")
        sampling: Literal["proportional", "uniform", "temperature"] = "proportional"
        temperature: float | None = Field(None, gt=0, description="T of temperature sampling (n_i ** (1/T))")

        @model_validator(mode="after")
        def _temperature(self):
            if self.sampling == "temperature" and self.temperature is None:
                raise ValueError("sampling 'temperature' needs a temperature (e.g. 2.0)")
            if self.sampling != "temperature" and self.temperature is not None:
                raise ValueError(f"temperature applies only to sampling 'temperature', not {self.sampling!r}")
            return self

    def mixing(self, sizes: dict[str, int]) -> dict[str, float]:
        """The probability of drawing each task's next batch, from its number of batches."""
        exponent = {"proportional": 1.0, "uniform": 0.0}.get(self.args.sampling) \
            if self.args.sampling != "temperature" else 1.0 / self.args.temperature
        weights = {task: math.pow(n, exponent) for task, n in sizes.items()}
        total = sum(weights.values())
        return {task: w / total for task, w in weights.items()}
