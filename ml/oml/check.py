"""Fingerprint check: does the model answer each key with its committed response under greedy decoding?

Greedy decoding reproduces the response exactly iff, fed key + response (teacher forcing), the
argmax at every response position is the response token; the first mismatch position is also the
same. So one batched forward pass per batch gives exact and prefix match for all keys at once
(`decode.greedy` does the token-by-token decode when the actual continuation is wanted, e.g. to show it).

- exact: all response tokens match.
- prefix: the first response token matches (the perinucleus token carries the signal).
- matched_tokens: length of the matching prefix, per key.

How the pass is batched (`teacher_forced_matches`), so a check costs one plain forward pass over
the tokens and no more:

- Sequences are sorted by length and cut into batches of `batch_size`, so a batch is padded to
  its longest member, which is barely longer than its shortest (right padding: positions of real
  tokens are unchanged). Results are put back in the caller's order.
- The token prefix every sequence shares (a prompt template's text before `{key}`) is run once
  and its KV cache is repeated across each batch, instead of being recomputed for every key.
- The decoder body is run without the LM head; the head (a vocabulary-sized matmul, ~20 % of
  SmolLM2's work per token) is applied only at the positions that predict a response token. The
  last response token is not fed at all (its output would predict past the response).
- bf16 screen, float32 answer: where the device computes bf16 natively (CUDA; CPUs with
  AVX512-BF16 or AMX), the body runs first under bf16 autocast, about twice as fast; any key whose
  response token is within `SCREEN_MARGIN` logits of the best other token at some position is run
  again in float32, and the result is the float32 model's greedy answer (tested against it).
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass

import torch

from ml.device import bf16_autocast, bf16_native, input_device
from ml.oml.fingerprints import Fingerprint


# Logit gap below which a bf16 screening answer is recomputed in float32: bf16 autocast moved the gap
# between a response token and the best other token by at most 0.17 (mean 0.03) over 256 perinucleus
# keys on SmolLM2-135M (bench/oml_check.py), so 1.0 leaves a wide margin.
SCREEN_MARGIN = 1.0


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


def encode_pair(tok, prompt: str, response: str) -> tuple[list[int], list[int]]:
    """(prompt ids, response ids) as the model sees them; an empty side is a ValueError."""
    p = tok.encode(prompt, add_special_tokens=False)
    r = tok.encode(response, add_special_tokens=False)
    if not p or not r:
        raise ValueError("empty key or response after tokenization")
    return p, r


def _body_and_head(model):
    """(decoder body returning last_hidden_state, output head) when the model splits that way, else None."""
    body = getattr(model, "base_model", None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if body is None or body is model or head is None or not isinstance(head, torch.nn.Linear):
        return None
    return body, head


def shared_prefix(prompts: list[list[int]]) -> int:
    """Length of the token prefix all prompts share, leaving every prompt at least one token of its own
    (the last prompt position predicts the first response token, so it must be in the batched part)."""
    if len(prompts) < 2:
        return 0
    first, n = prompts[0], min(len(p) for p in prompts) - 1
    for p in prompts[1:]:
        i = 0
        while i < n and p[i] == first[i]:
            i += 1
        n = i
        if n == 0:
            break
    return max(n, 0)


@torch.no_grad()
def _matches(model, pairs: list[tuple[list[int], list[int]]], pad_id: int, batch_size: int,
             low_precision: bool) -> tuple[list[int], list[float]]:
    """One batched teacher-forced pass: per pair, the matched response tokens and the smallest
    |logit(response token) - best other logit| over the response positions that decide that count
    (up to the first mismatch). `low_precision` runs the
    decoder body under bf16 autocast (the head stays float32)."""
    dev = input_device(model)
    pad_id = 0 if pad_id is None else pad_id  # right padding is masked out: any id will do
    split = _body_and_head(model)
    precision = bf16_autocast(dev) if low_precision else contextlib.nullcontext()
    n_pre = shared_prefix([p for p, _ in pairs]) if split else 0
    cache = None
    if n_pre:
        body, _ = split
        prefix = torch.tensor([pairs[0][0][:n_pre]], device=dev)
        with precision:
            out = body(input_ids=prefix, use_cache=True)
        cache = out.cache
    seqs = [p[n_pre:] + r[:-1] for p, r in pairs]  # the last response token predicts nothing we check
    order = sorted(range(len(pairs)), key=lambda i: len(seqs[i]))
    matched, margin = [0] * len(pairs), [0.0] * len(pairs)
    for s in range(0, len(order), batch_size):
        rows = order[s:s + batch_size]
        width = max(len(seqs[i]) for i in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), n_pre + width), dtype=torch.long)
        mask[:, :n_pre] = 1
        # (row, position predicting a response token, the token) for every response token
        at_r, at_c, want = [], [], []
        for b, i in enumerate(rows):
            seq = seqs[i]
            ids[b, :len(seq)] = torch.tensor(seq)
            mask[b, n_pre:n_pre + len(seq)] = 1
            start = len(pairs[i][0]) - n_pre - 1
            at_r += [b] * len(pairs[i][1])
            at_c += range(start, start + len(pairs[i][1]))
            want += pairs[i][1]
        ids, mask = ids.to(dev), mask.to(dev)
        r_idx, c_idx = torch.tensor(at_r, device=dev), torch.tensor(at_c, device=dev)
        if split:
            body, head = split
            past = None
            if cache is not None:
                past = copy.deepcopy(cache)
                past.batch_repeat_interleave(len(rows))
            with precision:
                hidden = body(input_ids=ids, attention_mask=mask, cache=past, use_cache=past is not None)
            hs = hidden.last_hidden_state  # on the last shard's device under a multi-GPU device_map
            h = hs[r_idx.to(hs.device), c_idx.to(hs.device)]
            logits = head(h.to(head.weight.device, head.weight.dtype)).float()
        else:
            with precision:
                out = model(input_ids=ids, attention_mask=mask).logits
            logits = out[r_idx.to(out.device), c_idx.to(out.device)].float()
        want_t = torch.tensor(want, device=logits.device)
        mine = logits.gather(1, want_t[:, None])[:, 0]
        others = logits.scatter(1, want_t[:, None], float("-inf")).max(-1).values
        gap = (mine - others).tolist()  # > 0: the response token is the argmax (only the gaps leave the device)
        k = 0
        for i in rows:
            n_r = len(pairs[i][1])
            g = gap[k:k + n_r]
            matched[i] = next((j for j, v in enumerate(g) if v <= 0), n_r)
            margin[i] = min(abs(v) for v in g[:matched[i] + 1])  # later positions cannot change the count
            k += n_r
    return matched, margin


@torch.no_grad()
def teacher_forced_matches(model, pairs: list[tuple[list[int], list[int]]], pad_id: int,
                           batch_size: int = 64, screen: bool | None = None) -> list[int]:
    """Per (prompt ids, response ids) pair: how many leading response tokens are the argmax of the
    model fed prompt + response, i.e. how many greedy decoding reproduces.

    `screen` (default: where the device computes bf16 natively): a first pass under bf16 autocast
    (about twice as fast on a CPU with AVX512-BF16), then every pair with a response position whose
    logit gap is below `SCREEN_MARGIN` is run again in float32 and takes that answer. A bf16 answer
    is kept only where the float32 one could differ only if bf16 moved a logit gap by more than
    `SCREEN_MARGIN` (measured: at most 0.17 on SmolLM2-135M)."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    if screen is None:
        screen = bf16_native(input_device(model))
    matched, margin = _matches(model, pairs, pad_id, batch_size, low_precision=screen)
    close = [i for i, m in enumerate(margin) if screen and m < SCREEN_MARGIN]
    if close:
        exact, _ = _matches(model, [pairs[i] for i in close], pad_id, batch_size, low_precision=False)
        for i, m in zip(close, exact):
            matched[i] = m
    return matched


@torch.no_grad()
def check(model, tok, fps: list[Fingerprint], template: str | None = None, batch_size: int = 64,
          screen: bool | None = None) -> CheckResult:
    if not fps:
        raise ValueError("no fingerprints to check")
    model.eval()
    pairs = [encode_pair(tok, wrap(f.key, template), f.response) for f in fps]
    matched = teacher_forced_matches(model, pairs, tok.pad_token_id, batch_size, screen)
    flags = [m == len(r) for m, (_, r) in zip(matched, pairs)]
    n = len(fps)
    return CheckResult(n, sum(flags) / n, sum(m > 0 for m in matched) / n, matched, flags)


def greedy_responses(model, tok, fps: list[Fingerprint], template: str | None = None, batch_size: int = 32) -> list[str]:
    """What the model actually says after each key (greedy, as many tokens as the response has)."""
    from ml.oml import decode

    prompts = [tok.encode(wrap(f.key, template), add_special_tokens=False) for f in fps]
    n_new = max(len(tok.encode(f.response, add_special_tokens=False)) for f in fps)
    return [tok.decode(ids) for ids in decode.greedy(model, prompts, n_new, tok.pad_token_id, batch_size)]
