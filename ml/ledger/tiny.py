"""The ledger's tiny base model, saved as a Hugging Face model directory: a random-init causal LM
(GPT-2, or Llama like SmolLM2) over single characters, from `ml.lm.tiny_causal_lm`. The base model
of the ledger's tests, benchmark and devnet step (not a trained model; the real base is any HF
causal-LM directory, e.g. SmolLM2's)."""
from __future__ import annotations

from pathlib import Path

from ml.lm import save_model, tiny_causal_lm


def make_tiny_lm(out: Path, seed: int = 0, arch: str = "gpt2") -> Path:
    model, tok = tiny_causal_lm(seed, n_layer=2, n_embd=32, n_head=2, n_positions=128, arch=arch, tokenizer="chars",
                                n_kv_head=1, n_inner=64)
    return save_model(model, tok, out)
