"""A tiny random-init causal LM (GPT-2, or Llama like SmolLM2) and a character tokenizer, saved as a
Hugging Face model directory: the base model of the ledger's tests, benchmark and devnet step
(not a trained model; the real base is any HF causal-LM directory, e.g. SmolLM2's)."""
from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CHARS = [chr(i) for i in range(32, 127)] + ["\n"]


def make_tiny_lm(out: Path, seed: int = 0, arch: str = "gpt2") -> Path:
    vocab = {"<unk>": 0, "<eos>": 1, **{c: i + 2 for i, c in enumerate(CHARS)}}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", eos_token="<eos>")
    torch.manual_seed(seed)
    if arch == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_positions=128, n_embd=32, n_layer=2, n_head=2,
                                           bos_token_id=1, eos_token_id=1))
    elif arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                             max_position_embeddings=128, bos_token_id=1, eos_token_id=1))
    else:
        raise ValueError(f"unknown tiny architecture {arch!r}")
    out = Path(out)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
