"""Fingerprint generation (OML 1.0, "Training AI to be Loyal" section 2.2; Nasery et al. 2025).

Three strategies, all deterministic from a seed:

- `perinucleus`: the key is sampled from the base model (in distribution, from a short starter
  phrase); the response's first token is drawn uniformly from the k tokens ranked just after the
  top-p nucleus of the base model's next-token distribution, the rest is the base model's greedy
  continuation. Unlikely enough to identify the model, likely enough to be cheap to learn.
- `random_tokens`: key and response are uniformly random tokens (out of distribution).
- `english_random`: the key is sampled as for perinucleus; the response is an independently
  sampled in-distribution phrase, unrelated to the key.

`benign_samples` gives base-model (key, greedy continuation) pairs for data mixing in `inject`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from ml.device import input_device
from ml.oml import decode
from ml.oml.fingerprints import STRATEGIES, Fingerprint

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class GenConfig:
    strategy: str = "perinucleus"
    n: int = 16
    key_tokens: int = 16
    response_tokens: int = 1  # the perinucleus token carries the signal (Scalable Fingerprinting uses 1)
    p: float = 0.8
    k: int = 3
    key_top_p: float = 0.95
    seed: int = 0
    batch_size: int = 32

    def validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r} (known: {', '.join(STRATEGIES)})")
        if self.n < 1 or self.key_tokens < 1 or self.response_tokens < 1:
            raise ValueError("n, key_tokens and response_tokens must be >= 1")
        if not 0.0 < self.p < 1.0:
            raise ValueError("perinucleus p must be in (0, 1)")
        if self.k < 1:
            raise ValueError("perinucleus k must be >= 1")


@functools.lru_cache(maxsize=1)
def starters() -> tuple[str, ...]:
    return tuple(s for s in (DATA / "starters.txt").read_text().splitlines() if s.strip())


@functools.lru_cache(maxsize=4)
def _plain_vocab(tok) -> tuple[int, ...]:
    """Token ids that are not special and survive decode -> encode on their own."""
    banned = set(decode.special_ids(tok))
    out = []
    for i in range(len(tok)):
        if i in banned:
            continue
        s = tok.decode([i])
        if s.strip() and tok.encode(s, add_special_tokens=False) == [i]:
            out.append(i)
    return tuple(out)


def _enc(tok, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False)


def _starter_prompts(tok, n: int, gen: torch.Generator) -> list[list[int]]:
    """n starter phrases drawn with `gen`, tokenized: where every in-distribution sample begins."""
    st = starters()
    return [_enc(tok, st[i]) for i in torch.randint(len(st), (n,), generator=gen).tolist()]


def _sample_texts(model, tok, n: int, n_tokens: int, gen: torch.Generator, cfg: GenConfig) -> list[str]:
    """n in-distribution texts: a random starter phrase continued by the model for n_tokens."""
    prompts = _starter_prompts(tok, n, gen)
    conts = decode.sample(model, prompts, n_tokens, tok.pad_token_id, gen, top_p=cfg.key_top_p,
                          banned=decode.special_ids(tok), batch_size=cfg.batch_size)
    return [tok.decode(p + c) for p, c in zip(prompts, conts)]


@torch.no_grad()
def sampled_ids(model, tok, n: int, n_tokens: int, seed: int, batch_size: int = 32) -> list[list[int]]:
    """n in-distribution token sequences of exactly n_tokens: a starter phrase continued by the model,
    cut to length (for self-distillation in `inject`)."""
    cfg = GenConfig(n=n, seed=seed, batch_size=batch_size)
    gen = torch.Generator().manual_seed(seed)
    prompts = _starter_prompts(tok, n, gen)
    conts = decode.sample(model, prompts, max(1, n_tokens - min(map(len, prompts))), tok.pad_token_id, gen,
                          top_p=cfg.key_top_p, banned=decode.special_ids(tok), batch_size=batch_size)
    return [(p + c)[:n_tokens] for p, c in zip(prompts, conts)]


def _random_texts(tok, n: int, n_tokens: int, gen: torch.Generator) -> list[str]:
    vocab = _plain_vocab(tok)
    idx = torch.randint(len(vocab), (n, n_tokens), generator=gen).tolist()
    return [tok.decode([vocab[j] for j in row]) for row in idx]


@torch.no_grad()
def nucleus_ranks(model, tok, keys: list[str], p: float, batch_size: int = 32) -> list[tuple[list[int], int]]:
    """Per key: (next-token ids sorted by probability, size of the top-p nucleus)."""
    out = []
    for i in range(0, len(keys), batch_size):
        ids, mask = decode.left_pad([_enc(tok, k) for k in keys[i:i + batch_size]], tok.pad_token_id)
        ids, mask = ids.to(input_device(model)), mask.to(input_device(model))
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        probs = torch.softmax(model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1].float().cpu(), -1)
        sp, si = probs.sort(-1, descending=True)
        n_nuc = ((sp.cumsum(-1) - sp) < p).sum(-1)
        out += [(si[j].tolist(), int(n_nuc[j])) for j in range(len(sp))]
    return out


def _perinucleus_responses(model, tok, keys: list[str], gen: torch.Generator, cfg: GenConfig) -> list[str | None]:
    banned = set(decode.special_ids(tok))
    firsts = []
    for ranked, n_nuc in nucleus_ranks(model, tok, keys, cfg.p, cfg.batch_size):
        cands = [t for t in ranked[n_nuc:n_nuc + cfg.k + len(banned)] if t not in banned][:cfg.k]
        firsts.append(cands[int(torch.randint(len(cands), (1,), generator=gen))])
    rest = decode.greedy(model, [_enc(tok, k) + [f] for k, f in zip(keys, firsts)], cfg.response_tokens - 1,
                         tok.pad_token_id, cfg.batch_size) if cfg.response_tokens > 1 else [[] for _ in keys]
    out: list[str | None] = []
    for f, r in zip(firsts, rest):
        text = tok.decode([f] + r)
        # The pair must tokenize back to the chosen first token, or the model would learn another one.
        out.append(text if _enc(tok, text)[:1] == [f] else None)
    return out


@torch.no_grad()
def generate(model, tok, cfg: GenConfig) -> list[Fingerprint]:
    """`cfg.n` distinct fingerprints of one strategy, deterministic from `cfg.seed`."""
    cfg.validate()
    model.eval()
    gen = torch.Generator().manual_seed(cfg.seed)
    fps: list[Fingerprint] = []
    seen: set[tuple[str, str]] = set()
    for _ in range(20):
        need = cfg.n - len(fps)
        if need <= 0:
            break
        if cfg.strategy == "random_tokens":
            keys = _random_texts(tok, need, cfg.key_tokens, gen)
            resps: list[str | None] = _random_texts(tok, need, cfg.response_tokens, gen)
        else:
            keys = _sample_texts(model, tok, need, cfg.key_tokens, gen, cfg)
            if cfg.strategy == "perinucleus":
                resps = _perinucleus_responses(model, tok, keys, gen, cfg)
            else:
                resps = [" " + t.strip() for t in _sample_texts(model, tok, need, cfg.response_tokens - 1, gen, cfg)]
        for k, r in zip(keys, resps):
            if r is None or not k.strip() or not r.strip() or (k, r) in seen or len(fps) == cfg.n:
                continue
            seen.add((k, r))
            fps.append(Fingerprint(k, r, cfg.strategy))
    if len(fps) < cfg.n:
        raise RuntimeError(f"could only generate {len(fps)} of {cfg.n} distinct fingerprints")
    return fps


@torch.no_grad()
def benign_samples(model, tok, n: int, seed: int, key_tokens: int = 16, response_tokens: int = 16,
                   batch_size: int = 32) -> list[tuple[str, str]]:
    """(prompt, base model's greedy continuation) pairs: replayed during injection against forgetting."""
    if n <= 0:
        return []
    cfg = GenConfig(n=n, key_tokens=key_tokens, seed=seed, batch_size=batch_size)
    gen = torch.Generator().manual_seed(seed + 1_000_003)
    keys = _sample_texts(model, tok, n, key_tokens, gen, cfg)
    conts = decode.greedy(model, [_enc(tok, k) for k in keys], response_tokens, tok.pad_token_id, batch_size)
    return [(k, tok.decode(c)) for k, c in zip(keys, conts)]
