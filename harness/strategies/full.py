"""Full fine-tuning: every parameter trains."""

from harness.strategies import Strategy


class Full(Strategy):
    """Full fine-tuning: every parameter trains."""

    name = "full"

    def apply(self, model, task_type):
        for param in model.parameters():
            param.requires_grad = True
        return model
