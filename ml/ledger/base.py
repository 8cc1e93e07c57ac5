"""Load a base model directory (any Hugging Face causal LM saved with `save_pretrained`) in float32."""
from __future__ import annotations

import os
from pathlib import Path

from common.errors import ConfigError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def load_base(model_dir: Path):
    """(model, tokenizer) from a local directory; never touches the network."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()

    d = Path(model_dir)
    if not (d / "config.json").is_file():
        raise ConfigError(f"{d} is not a Hugging Face model directory (no config.json)")
    import torch

    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(d, local_files_only=True)
    return model, tok
