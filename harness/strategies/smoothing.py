"""Label smoothing (Szegedy et al., 2016): the training loss is cross-entropy against labels mixed
with the uniform distribution, (1 - factor) on the gold class and factor spread over all classes.
An objective part: alone it goes with full fine-tuning, else with the recipe's method.
"""

from __future__ import annotations

import torch.nn.functional as F
from pydantic import Field

from harness.config.parsing import Strict
from harness.strategies import Part


class SmoothingArgs(Strict):
    factor: float = Field(0.1, gt=0, lt=1, description="the probability mass spread over all classes")


class LabelSmoothing(Part):
    """Label smoothing: cross-entropy against labels mixed with the uniform distribution."""

    name = "label_smoothing"
    role = "objective"
    Args = SmoothingArgs
    task_types = frozenset({"classification", "token_classification"})

    def check(self, model):
        if getattr(model.config, "problem_type", None) == "regression":
            return "label smoothing needs a task with classes, not regression"
        return None

    def loss(self, inputs, outputs):
        logits, labels = outputs.logits, inputs["labels"].view(-1)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), labels, ignore_index=-100,
                               label_smoothing=self.args.factor)
