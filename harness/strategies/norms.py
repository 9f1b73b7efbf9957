"""LayerNorm tuning (Zhao et al., 2023): only the normalisation layers and the task head train."""

from torch import nn

from harness.strategies import Strategy, backbone_of, train_only


def norm_parameters(model: nn.Module) -> set[str]:
    names = set()
    for module_name, module in model.named_modules():
        if isinstance(module, nn.LayerNorm) or type(module).__name__.endswith(("LayerNorm", "RMSNorm", "Norm")):
            names |= {f"{module_name}.{p}" if module_name else p for p, _ in module.named_parameters(recurse=False)}
    return names


class LNTuning(Strategy):
    """LayerNorm tuning: only the normalisation layers and the task head train."""

    name = "ln_tuning"

    def check(self, model):
        if not norm_parameters(backbone_of(model)):
            return f"{type(model).__name__} has no normalisation layers with parameters"
        return None

    def apply(self, model, task_type):
        norms = norm_parameters(model)
        return train_only(model, lambda name: name in norms)
