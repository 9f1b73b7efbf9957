"""`evaluate:<metric>[#key]`: any metric of Hugging Face `evaluate`, by hub id or local module path.

`evaluate.load` fetches hub metrics (users with the hub) or imports a local metric script; the
score is the result's `key`, or its only number when there is one. The value is reported as the
module returns it (no rescaling), and the signature names the module and the evaluate version.
"""

from __future__ import annotations

from functools import cache

from harness.base.errors import ConfigError, first_line
from harness.config import consent
from harness.metrics import Metric

PREFIX = "evaluate:"


@cache
def _module(path: str):
    consent.require(f"metric 'evaluate:{path}' (a Python metric script)")
    try:
        import evaluate
    except ImportError:
        raise ConfigError(f"metric 'evaluate:{path}' needs the evaluate package (pip install evaluate)") from None
    try:
        return evaluate.load(path)
    except Exception as exc:  # noqa: BLE001 -- evaluate raises many types for a missing module or no network
        raise ConfigError(f"metric 'evaluate:{path}': cannot load it: {first_line(exc)}") from None


def load(spec: str) -> Metric:
    """The Metric for `spec` = '<hub id or local path>[#key]' (what follows 'evaluate:')."""
    path, _, key = spec.partition("#")
    module = _module(path)

    def compute(predictions, references) -> float:
        result = module.compute(predictions=list(predictions), references=list(references))
        if key:
            if key not in result:
                raise ValueError(f"metric 'evaluate:{spec}': no {key!r} in its result (keys: {', '.join(result)})")
            return float(result[key])
        numbers = {k: v for k, v in result.items() if isinstance(v, (int, float))}
        if len(numbers) != 1:
            raise ValueError(f"metric 'evaluate:{spec}': name one of its results with #key ({', '.join(result)})")
        return float(next(iter(numbers.values())))

    return Metric(f"{PREFIX}{spec}", compute, "evaluate", f"evaluate.load({path!r}){'[' + repr(key) + ']' if key else ''}",
                  scale=1.0)
