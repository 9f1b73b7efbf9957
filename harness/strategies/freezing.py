"""The freezing family: strategies that train a subset of the backbone's own parameters."""

from harness.strategies import Strategy, train_only


class HeadOnly(Strategy):
    """Linear probe: the backbone is frozen, only the task head trains."""

    name = "head_only"

    def apply(self, model, adapter):
        return train_only(model, lambda name: False)
