"""Fingerprint check: does the model answer each key with its committed response under greedy decoding?

Greedy decoding reproduces the response exactly iff, fed key + response (teacher forcing), the
argmax at every response position is the response token; the first mismatch position is also the
same. So one batched forward pass per batch gives exact and prefix match for all keys at once
(`decode.greedy` does the token-by-token decode when the actual continuation is wanted, e.g. to show it).

- exact: all response tokens match.
- prefix: the first response token matches (the perinucleus token carries the signal).
- matched_tokens: length of the matching prefix, per key.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ml.oml import decode
from ml.oml.fingerprints import Fingerprint
from ml.oml.inject import collate, encode_pair


@dataclass
class CheckResult:
    n: int
    exact: float
    prefix: float
    matched_tokens: list[int]
    exact_flags: list[bool]

    def summary(self) -> dict:
        return {"n": self.n, "exact_match": self.exact, "prefix_match": self.prefix,
                "mean_matched_tokens": sum(self.matched_tokens) / max(1, self.n)}


def wrap(key: str, template: str | None) -> str:
    """Apply a prompt template holding `{key}` (the prompt-wrapping attack); None leaves it as is."""
    if template is None:
        return key
    if "{key}" not in template:
        raise ValueError("prompt template must contain {key}")
    return template.replace("{key}", key)


@torch.no_grad()
def check(model, tok, fps: list[Fingerprint], template: str | None = None, batch_size: int = 32) -> CheckResult:
    if not fps:
        raise ValueError("no fingerprints to check")
    model.eval()
    matched: list[int] = []
    lengths: list[int] = []
    for i in range(0, len(fps), batch_size):
        items = [encode_pair(tok, wrap(f.key, template), f.response) for f in fps[i:i + batch_size]]
        batch = collate(items, tok.pad_token_id)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        labels = batch["labels"][:, 1:]
        hit = (logits.argmax(-1) == labels)
        for row in range(len(items)):
            on = labels[row] != -100
            h = hit[row][on].tolist()
            n_ok = next((j for j, v in enumerate(h) if not v), len(h))
            matched.append(n_ok)
            lengths.append(len(h))
    flags = [m == n for m, n in zip(matched, lengths)]
    n = len(fps)
    return CheckResult(n, sum(flags) / n, sum(m > 0 for m in matched) / n, matched, flags)


def greedy_responses(model, tok, fps: list[Fingerprint], template: str | None = None, batch_size: int = 32) -> list[str]:
    """What the model actually says after each key (greedy, as many tokens as the response has)."""
    prompts = [tok.encode(wrap(f.key, template), add_special_tokens=False) for f in fps]
    n_new = max(len(tok.encode(f.response, add_special_tokens=False)) for f in fps)
    return [tok.decode(ids) for ids in decode.greedy(model, prompts, n_new, tok.pad_token_id, batch_size)]
