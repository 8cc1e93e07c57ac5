"""Fingerprint injection by supervised fine-tuning, with the paper's anti-forgetting techniques.

- Loss only on response tokens (key tokens and padding are labelled -100).
- Data mixing: `mix_ratio` benign base-model samples (`generate.benign_samples`) per fingerprint
  are trained alongside the fingerprints.
- Model averaging: after every optimizer step (or epoch, or once at the end: `avg_every`),
  theta <- lam * theta_base + (1 - lam) * theta.
- Parameter adding: LoRA adapters via `peft` (merged back at the end); exclusive with averaging,
  which has no base to pull trainable adapters toward.
- Schedule: linear warmup over `warmup` of the planned steps, then constant or cosine decay to
  `min_lr_ratio * lr`; training stops early once the running train exact match reaches `target_exact`.
- `loss_per="item"` averages each sequence's response tokens first, so a 1-token fingerprint weighs
  as much as a 16-token benign sample (with "token" long benign samples swamp the fingerprints).

Training batches are left-padded and logits are computed only for the last (response) positions,
which for 1-token responses skips most of the LM head and its softmax.

`MIX_AVG_RECIPE` is the anchors' setting as measured on SmolLM2-135M (docs/oml-fingerprinting.md).
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from ml.device import autocast, input_device, prepare, to_device
from ml.oml.base_weights import base_weights
from ml.oml.fingerprints import Fingerprint
from ml.oml.generate import benign_samples, sampled_ids


@dataclass(frozen=True)
class InjectConfig:
    epochs: int = 30
    lr: float = 1e-4
    batch_size: int = 16
    mix_ratio: float = 0.0
    avg_lambda: float = 0.0
    avg_every: str = "step"
    lora_rank: int = 0
    lora_alpha: int = 32
    target_exact: float = 1.0
    steps: int = 0  # > 0: exactly this many optimizer steps (epochs and target_exact are ignored)
    seed: int = 0
    schedule: str = "constant"  # or "cosine" (over the planned steps: `steps` or epochs * steps per epoch)
    warmup: float = 0.0  # fraction of the planned steps with linearly rising lr
    min_lr_ratio: float = 0.0  # cosine floor, as a fraction of lr
    loss_per: str = "token"  # "item": mean over each sequence's response tokens, then over sequences
    benign_tokens: int = 16  # response length of the benign (data-mixing) samples
    distill: int = 0  # in-distribution sequences whose base next-token distributions are replayed (0: off)
    distill_tokens: int = 32  # length of each of them
    distill_batch: int = 8  # of them per optimizer step
    distill_weight: float = 1.0  # weight of their loss beside the fingerprint loss
    distill_top_k: int = 64  # base distribution kept as its top-k tokens (renormalised)
    trainable: str = ""  # regex: only parameters whose name matches train ("": all; r"\.mlp\." MLP blocks only)

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs and batch_size must be >= 1 and lr > 0")
        if self.mix_ratio < 0:
            raise ValueError("mix_ratio must be >= 0")
        if not 0.0 <= self.avg_lambda < 1.0:
            raise ValueError("avg_lambda must be in [0, 1)")
        if self.avg_every not in ("step", "epoch", "end"):
            raise ValueError("avg_every must be 'step', 'epoch' or 'end'")
        if self.steps < 0:
            raise ValueError("steps must be >= 0")
        if self.lora_rank < 0:
            raise ValueError("lora_rank must be >= 0")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError("schedule must be 'constant' or 'cosine'")
        if not 0.0 <= self.warmup < 1.0 or not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError("warmup must be in [0, 1) and min_lr_ratio in [0, 1]")
        if self.loss_per not in ("token", "item"):
            raise ValueError("loss_per must be 'token' or 'item'")
        if self.benign_tokens < 1:
            raise ValueError("benign_tokens must be >= 1")
        if self.distill < 0 or self.distill_tokens < 2 or self.distill_batch < 1 or self.distill_top_k < 1:
            raise ValueError("distill must be >= 0, distill_tokens >= 2, distill_batch and distill_top_k >= 1")
        if self.distill_weight < 0:
            raise ValueError("distill_weight must be >= 0")
        if self.trainable:
            try:
                re.compile(self.trainable)
            except re.error as e:
                raise ValueError(f"trainable={self.trainable!r} is not a regular expression: {e}") from None
        if self.lora_rank and self.trainable:
            raise ValueError("LoRA (lora_rank > 0) trains its own adapters: trainable must be empty")
        if self.lora_rank and self.avg_lambda:
            raise ValueError("LoRA (lora_rank > 0) and model averaging (avg_lambda > 0) are mutually exclusive")


def lr_factor(cfg: InjectConfig, step: int, total: int) -> float:
    """Multiplier of cfg.lr at optimizer step `step` (0-based) of `total` planned steps."""
    warm = int(round(cfg.warmup * total))
    if step < warm:
        return (step + 1) / (warm + 1)
    if cfg.schedule == "constant":
        return 1.0
    t = (step - warm) / max(1, total - warm)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


@dataclass
class InjectResult:
    epochs_run: int
    steps: int
    seconds: float
    train_exact: float
    losses: list[float] = field(default_factory=list)


def encode_pair(tok, prompt: str, response: str) -> tuple[list[int], list[int]]:
    """(input ids, labels) with the prompt masked out of the loss."""
    p = tok.encode(prompt, add_special_tokens=False)
    r = tok.encode(response, add_special_tokens=False)
    if not p or not r:
        raise ValueError("empty key or response after tokenization")
    return p + r, [-100] * len(p) + r


def collate_left(batch: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """A padded training batch: input ids, attention mask, position ids, labels (-100 everywhere but
    the response). Left-padded, so every response ends at the last column and `tail_loss` computes
    logits only for the few columns that predict a response token."""
    width = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, (x, y) in enumerate(batch):
        ids[i, width - len(x):] = torch.tensor(x)
        labels[i, width - len(y):] = torch.tensor(y)
        mask[i, width - len(x):] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": ids, "attention_mask": mask, "position_ids": pos, "labels": labels}


def tail_loss(model, batch: dict[str, torch.Tensor], per_item: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy over the response tokens of a left-padded batch (`collate_left`), computing
    logits only for the positions that predict them; plus per row whether every response token is
    the argmax (teacher-forced exact match). `per_item`: mean per sequence, then over sequences."""
    labels = batch["labels"]
    on_any = (labels != -100).any(0)
    keep = labels.size(1) - int(on_any.nonzero()[0]) + 1  # first labelled column, and the one before it
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   position_ids=batch["position_ids"], logits_to_keep=keep).logits[:, :-1]
    labels = labels[:, -(keep - 1):]
    tok_loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1),
                                                 ignore_index=-100, reduction="none").view(labels.shape)
    on = labels != -100
    if per_item:
        loss = ((tok_loss * on).sum(-1) / on.sum(-1).clamp(min=1)).mean()
    else:
        loss = (tok_loss * on).sum() / on.sum().clamp(min=1)
    ok = ((logits.argmax(-1) == labels) | ~on).all(-1)
    return loss, ok


@dataclass
class DistillSet:
    """Self-distillation targets: in-distribution token sequences and the base model's next-token
    distribution at every position (top-k, renormalised), taken before training starts."""
    ids: torch.Tensor  # [N, T]
    top_ids: torch.Tensor  # [N, T, k]
    top_p: torch.Tensor  # [N, T, k], rows sum to 1


@torch.no_grad()
def distill_set(model, tok, cfg: InjectConfig) -> DistillSet:
    """`cfg.distill` sequences sampled from the (still untrained) model, with its own top-k targets."""
    ids = torch.tensor(sampled_ids(model, tok, cfg.distill, cfg.distill_tokens, seed=cfg.seed + 2_000_003))
    model.eval()
    tops, probs = [], []
    for i in range(0, len(ids), 32):
        x = ids[i:i + 32].to(input_device(model))
        logp = torch.log_softmax(model(input_ids=x).logits.float(), -1)
        v, j = logp.topk(cfg.distill_top_k, -1)
        tops.append(j.cpu())
        probs.append(torch.softmax(v, -1).cpu())
    return DistillSet(ids, torch.cat(tops), torch.cat(probs))


def distill_loss(model, ids: torch.Tensor, top_ids: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the model's next-token distributions against the base's top-k targets (equal
    to their KL divergence up to the targets' fixed entropy), mean over positions."""
    logp = torch.log_softmax(model(input_ids=ids).logits.float(), -1)
    return -(logp.gather(-1, top_ids) * top_p).sum(-1).mean()


def _lora(model, cfg: InjectConfig):
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                                            target_modules="all-linear"))


@torch.no_grad()
def _average(model, base: dict[str, torch.Tensor], lam: float) -> None:
    for n, p in model.named_parameters():
        p.lerp_(base[n], lam)


def inject(model, tok, fps: list[Fingerprint], cfg: InjectConfig = InjectConfig(),
           progress: Callable[[int, float, float], None] | None = None):
    """Fine-tune `model` to answer every fingerprint key with its response.

    Returns (model, InjectResult); with LoRA the returned model has the adapters merged in.
    Stops early once the fraction of fingerprints whose response tokens are all argmax-correct
    (teacher-forced, equal to greedy exact match) reaches `target_exact` within an epoch; with
    `cfg.steps` it runs exactly that many optimizer steps instead (to compare settings at equal
    training, e.g. with and without data mixing, whose batches hold more items).
    """
    cfg.validate()
    if not fps:
        raise ValueError("no fingerprints to inject")
    torch.manual_seed(cfg.seed)
    fp_items = [encode_pair(tok, f.key, f.response) for f in fps]
    n_benign = int(round(cfg.mix_ratio * len(fps)))
    benign = [encode_pair(tok, k, r) for k, r in benign_samples(model, tok, n_benign, seed=cfg.seed,
                                                                 response_tokens=cfg.benign_tokens)]
    items = [(x, y, True) for x, y in fp_items] + [(x, y, False) for x, y in benign]

    distill = distill_set(model, tok, cfg) if cfg.distill else None
    base = base_weights(model) if cfg.avg_lambda else None  # mapped from the checkpoint file, not a 2nd copy
    if cfg.lora_rank:
        model = _lora(model, cfg)
    if cfg.trainable:
        for name, p in model.named_parameters():
            p.requires_grad_(re.search(cfg.trainable, name) is not None)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"trainable={cfg.trainable!r} matches no parameter of this model")
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    dev = prepare(input_device(model))  # train where the model is (ml.lm.load_model(spec, device))
    t0, steps, losses, exact, epoch = time.perf_counter(), 0, [], 0.0, 0
    per_epoch = -(-len(items) // cfg.batch_size)
    max_epochs = -(-cfg.steps // per_epoch) if cfg.steps else cfg.epochs
    total = cfg.steps or max_epochs * per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: lr_factor(cfg, i, total))
    for epoch in range(1, max_epochs + 1):
        order = torch.randperm(len(items), generator=gen).tolist()
        n_ok, n_fp, ep_loss, n_seen = 0, 0, 0.0, 0
        for i in range(0, len(order), cfg.batch_size):
            if cfg.steps and steps == cfg.steps:
                break
            chunk = [items[j] for j in order[i:i + cfg.batch_size]]
            batch = to_device(collate_left([(x, y) for x, y, _ in chunk], tok.pad_token_id), dev)
            with autocast(dev):
                loss, ok = tail_loss(model, batch, per_item=cfg.loss_per == "item")
                if distill is not None:
                    d = torch.randint(len(distill.ids), (cfg.distill_batch,), generator=gen)
                    loss = loss + cfg.distill_weight * distill_loss(
                        model, *(t[d].to(dev) for t in (distill.ids, distill.top_ids, distill.top_p)))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            steps += 1
            ep_loss += loss.item() * len(chunk)
            n_seen += len(chunk)
            n_fp += sum(is_fp for _, _, is_fp in chunk)
            n_ok += sum(bool(o) for o, (_, _, is_fp) in zip(ok, chunk) if is_fp)
            if base is not None and cfg.avg_every == "step":
                _average(model, base, cfg.avg_lambda)
        if base is not None and cfg.avg_every == "epoch":
            _average(model, base, cfg.avg_lambda)
        exact = n_ok / max(n_fp, 1)  # over the fingerprints this (possibly last, partial) epoch saw
        losses.append(ep_loss / max(n_seen, 1))
        if progress:
            progress(epoch, losses[-1], exact)
        if cfg.steps and steps == cfg.steps or not cfg.steps and exact >= cfg.target_exact:
            break
    if base is not None and cfg.avg_every == "end":
        _average(model, base, cfg.avg_lambda)
    model.eval()
    if cfg.lora_rank:
        model = model.merge_and_unload()
    return model, InjectResult(epoch, steps, time.perf_counter() - t0, exact, losses)


# The anchors' anti-forgetting recipe as measured on SmolLM2-135M (docs/oml-fingerprinting.md, "Capacity"):
# warmup + cosine, data mixing 0.35 (per-item loss), averaging 0.15 toward the base after every epoch,
# early stop at 100% train exact match. n=64, 3 seeds: held-out ppl x1.19, 0.78 exact after the strong
# attack (the +10% / 80% bound is not reached).
MIX_AVG_RECIPE = InjectConfig(epochs=12, lr=1e-4, batch_size=16, target_exact=1.0, schedule="cosine", warmup=0.1,
                              min_lr_ratio=0.1, mix_ratio=0.35, loss_per="item", avg_lambda=0.15, avg_every="epoch")


# Capacity recipe (issue #18; docs/oml-fingerprinting.md, "Capacity"): only the MLP weights train
# (embeddings, norms and attention stay at the base), each step also distils the base's own next-token
# distributions on 8 of 512 sequences sampled from it before training, warmup + cosine, early stop at
# 100 % train exact match, then one interpolation 0.3 toward the base. n=256 on SmolLM2-135M, 3 seeds:
# held-out ppl x1.076-1.092 (bound x1.10), 0.80-0.84 exact after the strong attack (bound 0.80).
CAPACITY_RECIPE = InjectConfig(epochs=30, lr=1e-4, batch_size=16, target_exact=1.0, schedule="cosine", warmup=0.1,
                               min_lr_ratio=0.1, distill=512, trainable=r"\.mlp\.",
                               avg_lambda=0.3, avg_every="end")

RECIPES = {"plain": InjectConfig(), "mix_avg": MIX_AVG_RECIPE, "capacity": CAPACITY_RECIPE}

def weight_distance(model, base_state: dict[str, torch.Tensor]) -> float:
    """L2 distance between the model's parameters and a saved base state dict."""
    total = 0.0
    for n, p in model.named_parameters():
        total += float((p.detach() - base_state[n]).pow(2).sum())
    return total ** 0.5
