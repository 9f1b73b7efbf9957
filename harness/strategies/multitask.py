"""Multi-task joint training: a tasks part. The suite's tasks it names train together as one model
(per backbone and seed) with any method that trains: one body, trained as the method trains it,
and a head per task; batches are drawn from every task. Each task is then scored with its own head
and reported as its own cell, under the row's label.

    multitask: {}                                          # alone: full fine-tuning, jointly
    mt_lora:   {use: lora, r: 8, multitask: {sampling: uniform}}   # one LoRA shared by the tasks

Which task a batch comes from is drawn each step with probability proportional to n_i ** (1 / T):
T = 1 is proportional to the task's size, T -> infinity uniform, and values in between the
temperature-scaled mixing of multilingual and multi-task work (Arivazhagan et al. 2019; T5,
Raffel et al. 2020). An epoch is as many batches as the tasks' epochs together.

What the method trains in the body is shared by every task (harness.run.joint ties it): a multi-
task LoRA is one adapter, not one per task. One adapter per task on a frozen body would share no
trained parameter, so it would be the single-task cells over again at a higher cost; what joint
training can add is transfer through what the tasks train together, as the shared body of full
multi-task fine-tuning does.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from harness.config.parsing import Strict
from harness.strategies import Part


class MultiTask(Part):
    """Multi-task joint training: the tasks train one body together, each with its own head."""

    name = "multitask"
    role = "tasks"
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
