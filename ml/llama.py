"""A Llama decoder in plain torch, for forward passes where start-up time matters.

Why it exists: `loyal fingerprint check` is a short command (256 keys are ~6 s of compute on
SmolLM2), and importing transformers' model classes costs ~2 s on its own (they pull in
torch.distributed.tensor, torch._dynamo and scipy.optimize), its tokenizer wrapper another ~0.8 s.
This module reads the same model directory (`config.json`, `model.safetensors`, `tokenizer.json`)
with torch, safetensors and tokenizers only, and computes the same function as transformers'
`LlamaForCausalLM` (tests/oml/test_llama.py compares logits, caches and check results).

It covers the plain Llama architecture (SmolLM2; Llama-2/3 without RoPE scaling): `load` returns
None for anything else, and the caller falls back to transformers. Inference only: no dropout, no
training, no saving. The parameter names are transformers' own, so the state dict loads as saved.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class LlamaConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    tie_word_embeddings: bool

    @classmethod
    def from_hf(cls, c: dict) -> "LlamaConfig | None":
        """The config of a transformers `config.json` dict if it is a plain Llama this module computes
        exactly (silu MLP, no biases, default RoPE), else None."""
        if c.get("model_type") != "llama" or c.get("architectures", ["LlamaForCausalLM"]) != ["LlamaForCausalLM"]:
            return None
        if c.get("hidden_act", "silu") != "silu" or c.get("attention_bias") or c.get("mlp_bias"):
            return None
        rope = c.get("rope_parameters") or {"rope_type": "default", "rope_theta": c.get("rope_theta", 10000.0)}
        if rope.get("rope_type", "default") != "default" or c.get("rope_scaling"):
            return None
        heads = c["num_attention_heads"]
        return cls(vocab_size=c["vocab_size"], hidden_size=c["hidden_size"],
                   intermediate_size=c["intermediate_size"], num_hidden_layers=c["num_hidden_layers"],
                   num_attention_heads=heads, num_key_value_heads=c.get("num_key_value_heads") or heads,
                   head_dim=c.get("head_dim") or c["hidden_size"] // heads, rms_norm_eps=c.get("rms_norm_eps", 1e-6),
                   rope_theta=float(rope.get("rope_theta", 10000.0)),
                   tie_word_embeddings=bool(c.get("tie_word_embeddings", False)))


class KVCache:
    """Per layer, the keys and values seen so far ([batch, kv heads, positions, head dim])."""

    def __init__(self, n_layers: int):
        self.layers: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * n_layers

    def get_seq_length(self) -> int:
        return 0 if self.layers[0] is None else self.layers[0][0].shape[2]

    def update(self, i: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.layers[i] is not None:
            k, v = torch.cat([self.layers[i][0], k], 2), torch.cat([self.layers[i][1], v], 2)
        self.layers[i] = (k, v)
        return k, v

    def batch_repeat_interleave(self, n: int) -> None:
        """Repeat every row `n` times (a shared prefix computed once, then used by a batch)."""
        self.layers = [None if kv is None else (kv[0].repeat_interleave(n, 0), kv[1].repeat_interleave(n, 0))
                       for kv in self.layers]


class BodyOutput(NamedTuple):
    last_hidden_state: torch.Tensor
    cache: KVCache | None


class LMOutput(NamedTuple):
    logits: torch.Tensor
    cache: KVCache | None


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float, device=None):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim, device=device))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class Attention(nn.Module):
    def __init__(self, c: LlamaConfig, device=None):
        super().__init__()
        self.n_head, self.n_kv, self.d = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        self.q_proj = nn.Linear(c.hidden_size, self.n_head * self.d, bias=False, device=device)
        self.k_proj = nn.Linear(c.hidden_size, self.n_kv * self.d, bias=False, device=device)
        self.v_proj = nn.Linear(c.hidden_size, self.n_kv * self.d, bias=False, device=device)
        self.o_proj = nn.Linear(self.n_head * self.d, c.hidden_size, bias=False, device=device)

    def forward(self, x, cos, sin, allowed, cache: KVCache | None, i: int):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.d).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.n_kv, self.d).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.n_kv, self.d).transpose(1, 2)
        q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
        if cache is not None:
            k, v = cache.update(i, k, v)
        rep = self.n_head // self.n_kv  # grouped-query attention: query head h reads kv head h // rep
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.n_head * self.d))


class MLP(nn.Module):
    def __init__(self, c: LlamaConfig, device=None):
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False, device=device)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False, device=device)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=False, device=device)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, c: LlamaConfig, device=None):
        super().__init__()
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps, device)
        self.self_attn = Attention(c, device)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps, device)
        self.mlp = MLP(c, device)

    def forward(self, x, cos, sin, allowed, cache, i):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, allowed, cache, i)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaBody(nn.Module):
    """Embeddings, decoder layers and the final norm: hidden states, no vocabulary projection."""

    def __init__(self, c: LlamaConfig, device=None):
        super().__init__()
        self.config = c
        # given weights skip the normal_ init, which on the meta device imports torch._dynamo (1.7 s)
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size,
                                         _weight=torch.empty(c.vocab_size, c.hidden_size, device=device))
        self.layers = nn.ModuleList(Block(c, device) for _ in range(c.num_hidden_layers))
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps, device)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, cache: KVCache | None = None,
                use_cache: bool = False) -> BodyOutput:
        """`attention_mask` [batch, cached + new positions] marks real tokens (1) and padding (0);
        `position_ids` default to the positions after the cache. `cache` is extended in place;
        `use_cache` starts one when none is given."""
        if use_cache and cache is None:
            cache = KVCache(self.config.num_hidden_layers)
        B, T = input_ids.shape
        past = cache.get_seq_length() if cache is not None else 0
        dev = input_ids.device
        if position_ids is None:
            position_ids = torch.arange(past, past + T, device=dev)[None].expand(B, T)
        x = self.embed_tokens(input_ids)
        d = self.config.head_dim
        inv_freq = 1.0 / (self.config.rope_theta ** (torch.arange(0, d, 2, device=dev, dtype=torch.float) / d))
        freqs = position_ids[..., None].float() * inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)[:, None]  # [B, 1, T, d], broadcast over heads
        cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
        q_pos = torch.arange(past, past + T, device=dev)
        allowed = torch.arange(past + T, device=dev)[None, :] <= q_pos[:, None]  # causal [T, S]
        allowed = allowed[None, None].expand(B, 1, T, past + T)
        if attention_mask is not None:
            # a left-padding query sees no real token: SDPA gives it zeros (torch >= 2.5), never read
            allowed = allowed & attention_mask[:, None, None, :].bool()
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, allowed, cache, i)
        return BodyOutput(self.norm(x), cache)


class LlamaLM(nn.Module):
    """A Llama causal LM with transformers' interface where this project calls it: `model(input_ids,
    attention_mask, position_ids, cache, use_cache)` -> `.logits`, `.cache`; `base_model` (the body),
    `get_input_embeddings`, `get_output_embeddings`."""

    def __init__(self, c: LlamaConfig, device=None):
        super().__init__()
        self.config = c
        self.model = LlamaBody(c, device)
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False, device=device)

    @property
    def base_model(self) -> LlamaBody:
        return self.model

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, cache: KVCache | None = None,
                use_cache: bool = False) -> LMOutput:
        out = self.model(input_ids, attention_mask, position_ids, cache=cache, use_cache=use_cache)
        return LMOutput(self.lm_head(out.last_hidden_state), out.cache)


class TokenizerFile:
    """A `tokenizer.json` (the Rust `tokenizers` library) with the part of transformers' tokenizer
    interface this project uses: `encode`, `decode`, `get_vocab`, `len`, the special token ids."""

    def __init__(self, d: Path):
        from tokenizers import Tokenizer

        self._tk = Tokenizer.from_file(str(d / "tokenizer.json"))
        cfg_file = d / "tokenizer_config.json"
        cfg = json.loads(cfg_file.read_text()) if cfg_file.is_file() else {}
        self._clean_spaces = bool(cfg.get("clean_up_tokenization_spaces", False))

        def special(name: str) -> int | None:
            t = cfg.get(name)
            t = t.get("content") if isinstance(t, dict) else t
            return None if t is None else self._tk.token_to_id(t)

        self.eos_token_id = special("eos_token")
        self.bos_token_id = special("bos_token")
        self.pad_token_id = special("pad_token")
        if self.pad_token_id is None:  # as ml.lm does for transformers tokenizers
            self.pad_token_id = self.eos_token_id
        self.all_special_ids = sorted({i for i in (self.eos_token_id, self.bos_token_id, self.pad_token_id,
                                                   special("unk_token")) if i is not None})

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self._tk.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        text = self._tk.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)
        if self._clean_spaces:
            from transformers.tokenization_utils_base import PreTrainedTokenizerBase

            text = PreTrainedTokenizerBase.clean_up_tokenization(text)
        return text

    def get_vocab(self) -> dict[str, int]:
        return self._tk.get_vocab(with_added_tokens=True)

    def __len__(self) -> int:
        return self._tk.get_vocab_size(with_added_tokens=True)


def load(d: Path, device: torch.device | str | None = None) -> tuple[LlamaLM, TokenizerFile] | None:
    """(model in float32 eval mode on `device`, tokenizer) from a transformers model directory holding a
    plain Llama in one `model.safetensors` and a `tokenizer.json`; None when it holds anything else.
    A directory that claims to be such a Llama but whose weights do not fit raises ValueError."""
    d = Path(d)
    if not all((d / f).is_file() for f in ("config.json", "model.safetensors", "tokenizer.json")):
        return None
    c = LlamaConfig.from_hf(json.loads((d / "config.json").read_text()))
    if c is None:
        return None
    from safetensors.torch import load_file

    try:
        state = {k: v.float() for k, v in load_file(str(d / "model.safetensors")).items()}
    except Exception as e:  # safetensors' own error type (a bad header, a truncated file) is no ValueError
        raise ValueError(f"model {d}: cannot read model.safetensors: {e}") from e
    if c.tie_word_embeddings and "model.embed_tokens.weight" in state:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    # built on the meta device: no random init of weights about to be replaced (a parameter, not the
    # `with torch.device(...)` context, which imports torch._dynamo)
    model = LlamaLM(c, device="meta")
    try:
        model.load_state_dict(state, assign=True)
    except RuntimeError as e:
        raise ValueError(f"model {d}: weights do not match its Llama config: {str(e).splitlines()[0]}") from e
    if c.tie_word_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    if device is not None:
        model = model.to(torch.device(device))
    return model.eval(), TokenizerFile(d)
