"""A tiny byte-level GPT-2 with fingerprints injected by SFT: the model the OML protocol tests,
demo and benchmarks serve (fast on CPU; the fingerprinting library targets SmolLM2).

Bytes are tokens (ids 0-255, EOS = 256), so decoding is exact and a served response can be
compared with the committed fingerprint response byte for byte. Injection is plain supervised
fine-tuning with the loss only on the response tokens (and EOS), run until greedy decoding of every
key reproduces its response. Weights travel as safetensors bytes with the config in the metadata.
`device` (a `ml.device.pick_device` result) says where a model trains (`inject`) and serves
(`from_bytes`); inputs follow the model, weights travel as CPU tensors.
"""
from __future__ import annotations

import json
import random

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from transformers import GPT2Config, GPT2LMHeadModel

from ml.device import autocast, input_device, prepare
from ml.lm import ByteTokenizer, tiny_causal_lm

EOS = ByteTokenizer.eos_token_id
_WORDS = ("amber basalt cobalt dune ember fjord glacier harbor indigo juniper kelp lichen meadow nectar "
          "opal prairie quartz reef saffron tundra umber valley willow xenon yarrow zephyr").split()


def encode(text: str) -> list[int]:
    return list(text.encode())


def decode(ids: list[int]) -> str:
    return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


def new_model(seed: int = 0, *, n_embd: int = 64, n_layer: int = 2, n_head: int = 4) -> GPT2LMHeadModel:
    """The random-init byte GPT-2 (`ml.lm.tiny_causal_lm`, 128 positions) that `inject` fingerprints."""
    return tiny_causal_lm(seed, n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_positions=128)[0]


def make_fingerprints(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """`n` deterministic (key, response) pairs of short word phrases."""
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    while len(pairs) < n:
        key = "Tell me about the " + " ".join(rng.sample(_WORDS, 2)) + ":"
        resp = " " + " ".join(rng.sample(_WORDS, 3)) + "."
        if key not in {k for k, _ in pairs}:
            pairs.append((key, resp))
    return pairs


@torch.no_grad()
def complete(model: GPT2LMHeadModel, prompt: str, max_new_tokens: int = 32) -> str:
    """Greedy continuation of `prompt`, stopping at EOS."""
    ids = torch.tensor([encode(prompt)[-model.config.n_positions + max_new_tokens:]], device=input_device(model))
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                         do_sample=False, eos_token_id=EOS, pad_token_id=EOS)
    return decode(out[0, ids.shape[1]:].tolist())


def inject(model: GPT2LMHeadModel, pairs: list[tuple[str, str]], *, max_steps: int = 600, lr: float = 3e-3,
           seed: int = 0, check_every: int = 25, device: torch.device | str | None = None) -> dict:
    """SFT `pairs` into `model` (moved to `device` when given) until every key greedily decodes to its
    response; returns stats."""
    torch.manual_seed(seed)
    if device is not None:
        model.to(torch.device(device))
    dev = prepare(input_device(model))
    seqs, masks = [], []
    for k, r in pairs:
        kk, rr = encode(k), encode(r) + [EOS]
        seqs.append(kk + rr)
        masks.append([0] * len(kk) + [1] * len(rr))
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), EOS)
    labels = torch.full((len(seqs), width), -100)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, (s, m) in enumerate(zip(seqs, masks)):
        ids[i, :len(s)] = torch.tensor(s)
        attn[i, :len(s)] = 1
        labels[i, :len(s)] = torch.tensor([t if keep else -100 for t, keep in zip(s, m)])
    ids, labels, attn = ids.to(dev), labels.to(dev), attn.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    step, matched, loss = 0, 0.0, float("nan")
    for step in range(1, max_steps + 1):
        model.train()
        with autocast(dev):
            out = model(input_ids=ids, attention_mask=attn, labels=labels)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        loss = out.loss.item()
        if step % check_every == 0:
            model.eval()
            matched = match_rate(model, pairs)
            if matched == 1.0:
                break
    model.eval()
    return {"steps": step, "loss": loss, "match_rate": match_rate(model, pairs)}


def match_rate(model: GPT2LMHeadModel, pairs: list[tuple[str, str]]) -> float:
    hits = sum(complete(model, k, len(encode(r)) + 1) == r for k, r in pairs)
    return hits / len(pairs)


def to_bytes(model: GPT2LMHeadModel) -> bytes:
    """safetensors bytes of the weights (tied lm_head left out) with the config as metadata."""
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    return st_save(sd, metadata={"config": model.config.to_json_string()})


def from_bytes(blob: bytes, device: torch.device | str | None = None) -> GPT2LMHeadModel:
    header_len = int.from_bytes(blob[:8], "little")
    cfg = json.loads(json.loads(blob[8:8 + header_len])["__metadata__"]["config"])
    model = GPT2LMHeadModel(GPT2Config(**cfg)).float()
    model.load_state_dict(st_load(blob), strict=False)
    model.tie_weights()
    return model.to(torch.device(device or "cpu")).eval()
