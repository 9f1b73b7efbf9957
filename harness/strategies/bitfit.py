"""BitFit (Ben Zaken et al., 2022): only bias terms and the task head train."""

from harness.strategies import Strategy, backbone_of, train_only


class BitFit(Strategy):
    """BitFit: only the bias terms and the task head train."""

    name = "bitfit"

    def check(self, model):
        if not any(name.endswith("bias") for name, _ in backbone_of(model).named_parameters()):
            return f"{type(model).__name__} has no bias terms in its backbone"
        return None

    def apply(self, model, task_type):
        return train_only(model, lambda name: name.endswith(".bias"))
