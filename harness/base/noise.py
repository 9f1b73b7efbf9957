"""Library notices that are for harness's developers, not for the user reading a grid: silenced in
every process that runs cells (the command's, and each worker's)."""

from __future__ import annotations

import logging
import warnings


def quiet() -> None:
    """Silence the libraries' deprecation notices and set-up chatter in this process."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message="Failed to load the CUDA extension")  # peft's BOFT on CPU
    warnings.filterwarnings("ignore", message="Setting boft_n_butterfly_factor")
    # bitsandbytes (which peft imports) asks on a CPU for an optional kernel from the hub; its own
    # fallback is what runs, and the hub is not ours to reach
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    import transformers

    transformers.logging.set_verbosity_error()


def quiet_gguf() -> None:
    """transformers' GGUF loader draws a tqdm bar of its own, past transformers' switch for progress
    bars (which harness turns off: a grid prints a line a cell): its bar goes through the switch.
    Called where a GGUF backbone loads (importing the loader costs about a second)."""
    import transformers
    from transformers import modeling_gguf_pytorch_utils as gguf

    gguf.tqdm = transformers.utils.logging.tqdm
