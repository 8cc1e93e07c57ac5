"""Fingerprint injection by supervised fine-tuning, with the paper's anti-forgetting techniques.

- Loss only on response tokens (key tokens and padding are labelled -100).
- Data mixing: `mix_ratio` benign base-model samples (`generate.benign_samples`) per fingerprint
  are trained alongside the fingerprints.
- Model averaging: after every optimizer step (or epoch, `avg_every`), theta <- lam * theta_base + (1 - lam) * theta.
- Parameter adding: LoRA adapters via `peft` (merged back at the end); exclusive with averaging,
  which has no base to pull trainable adapters toward.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from ml.device import autocast, input_device, prepare, to_device
from ml.oml.base_weights import base_weights
from ml.oml.fingerprints import Fingerprint
from ml.oml.generate import benign_samples


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

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs and batch_size must be >= 1 and lr > 0")
        if self.mix_ratio < 0:
            raise ValueError("mix_ratio must be >= 0")
        if not 0.0 <= self.avg_lambda < 1.0:
            raise ValueError("avg_lambda must be in [0, 1)")
        if self.avg_every not in ("step", "epoch"):
            raise ValueError("avg_every must be 'step' or 'epoch'")
        if self.steps < 0:
            raise ValueError("steps must be >= 0")
        if self.lora_rank < 0:
            raise ValueError("lora_rank must be >= 0")
        if self.lora_rank and self.avg_lambda:
            raise ValueError("LoRA (lora_rank > 0) and model averaging (avg_lambda > 0) are mutually exclusive")


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


def collate(batch: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, (x, y) in enumerate(batch):
        ids[i, :len(x)] = torch.tensor(x)
        labels[i, :len(y)] = torch.tensor(y)
        mask[i, :len(x)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def response_loss(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy over labelled (response) tokens; plus per-row 'all response tokens argmax-correct'."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1),
                                             ignore_index=-100)
    on = labels != -100
    ok = ((logits.argmax(-1) == labels) | ~on).all(-1)
    return loss, ok


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
    benign = [encode_pair(tok, k, r) for k, r in benign_samples(model, tok, n_benign, seed=cfg.seed)]
    items = [(x, y, True) for x, y in fp_items] + [(x, y, False) for x, y in benign]

    base = base_weights(model) if cfg.avg_lambda else None  # mapped from the checkpoint file, not a 2nd copy
    if cfg.lora_rank:
        model = _lora(model, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    dev = prepare(input_device(model))  # train where the model is (ml.lm.load_model(spec, device))
    t0, steps, losses, exact, epoch = time.perf_counter(), 0, [], 0.0, 0
    per_epoch = -(-len(items) // cfg.batch_size)
    max_epochs = -(-cfg.steps // per_epoch) if cfg.steps else cfg.epochs
    for epoch in range(1, max_epochs + 1):
        order = torch.randperm(len(items), generator=gen).tolist()
        n_ok, n_fp, ep_loss, n_seen = 0, 0, 0.0, 0
        for i in range(0, len(order), cfg.batch_size):
            if cfg.steps and steps == cfg.steps:
                break
            chunk = [items[j] for j in order[i:i + cfg.batch_size]]
            batch = to_device(collate([(x, y) for x, y, _ in chunk], tok.pad_token_id), dev)
            with autocast(dev):
                loss, ok = response_loss(model, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
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
    model.eval()
    if cfg.lora_rank:
        model = model.merge_and_unload()
    return model, InjectResult(epoch, steps, time.perf_counter() - t0, exact, losses)


def weight_distance(model, base_state: dict[str, torch.Tensor]) -> float:
    """L2 distance between the model's parameters and a saved base state dict."""
    total = 0.0
    for n, p in model.named_parameters():
        total += float((p.detach() - base_state[n]).pow(2).sum())
    return total ** 0.5
