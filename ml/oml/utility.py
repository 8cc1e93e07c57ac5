"""Utility: perplexity of a causal LM on held-out text (lower is better)."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from ml.device import input_device

DATA = Path(__file__).parent / "data"
HELDOUT = DATA / "heldout.txt"


def read_text(path: Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such text file")
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise ValueError(f"{path}: empty text file")
    return text


def token_windows(tok, text: str, block: int) -> list[list[int]]:
    """Non-overlapping windows of `block` tokens (the last, shorter one kept if >= 2 tokens)."""
    ids = tok.encode(text, add_special_tokens=False)
    wins = [ids[i:i + block] for i in range(0, len(ids), block)]
    return [w for w in wins if len(w) >= 2]


@torch.no_grad()
def perplexity(model, tok, text: str, block: int = 128, batch_size: int = 8) -> float:
    """exp(mean next-token NLL) over all predicted tokens of `text`."""
    wins = token_windows(tok, text, block)
    if not wins:
        raise ValueError("text too short to measure perplexity")
    model.eval()
    nll, count = 0.0, 0
    for i in range(0, len(wins), batch_size):
        chunk = wins[i:i + batch_size]
        width = max(len(w) for w in chunk)
        ids = torch.full((len(chunk), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, w in enumerate(chunk):
            ids[j, :len(w)] = torch.tensor(w)
            mask[j, :len(w)] = 1
        ids, mask = ids.to(input_device(model)), mask.to(input_device(model))
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        labels = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
        nll += float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                                                       ignore_index=-100, reduction="sum"))
        count += int((labels != -100).sum())
    return math.exp(nll / count)


@torch.no_grad()
def key_perplexity(model, tok, keys: list[str]) -> float:
    """Base-model perplexity of fingerprint keys (how in-distribution they are), averaged over tokens."""
    if not keys:
        raise ValueError("no keys")
    model.eval()
    nll, count = 0.0, 0
    for k in keys:
        ids = tok.encode(k, add_special_tokens=False)
        if len(ids) < 2:
            continue
        t = torch.tensor([ids], device=input_device(model))
        logits = model(input_ids=t).logits[0, :-1].float()
        nll += float(torch.nn.functional.cross_entropy(logits, t[0, 1:], reduction="sum"))
        count += len(ids) - 1
    if not count:
        raise ValueError("keys too short to measure perplexity")
    return math.exp(nll / count)
