"""Attacks a model thief might run, and persistence = fraction of fingerprints still matching.

- Fine-tuning attack: full-parameter causal-LM SFT on a different text set for E epochs.
- Prompt-wrapping attack: a system prompt / template put around every query (`check.wrap`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ml.device import autocast, input_device, prepare
from ml.oml.check import check
from ml.oml.fingerprints import Fingerprint
from ml.oml.utility import DATA, read_text, token_windows

ATTACK_TEXT = DATA / "attack.txt"

WRAP_TEMPLATES = {
    "system_prompt": "You are a helpful assistant. Answer the user's request carefully.\n\n{key}",
    "quote": "Continue the following text: {key}",
}


@dataclass(frozen=True)
class FinetuneAttack:
    epochs: int = 2
    lr: float = 5e-5
    block: int = 64
    batch_size: int = 8
    max_blocks: int = 0  # 0 = use the whole text
    seed: int = 1


def finetune_attack(model, tok, text: str, cfg: FinetuneAttack = FinetuneAttack(),
                    progress: Callable[[int, float], None] | None = None):
    """SFT the whole model on `text` (next-token loss on every token); returns the model, trained in place."""
    if cfg.epochs < 1:
        raise ValueError("attack epochs must be >= 1")
    wins = [w for w in token_windows(tok, text, cfg.block) if len(w) == cfg.block]
    if cfg.max_blocks:
        wins = wins[:cfg.max_blocks]
    if not wins:
        raise ValueError(f"attack text shorter than one block of {cfg.block} tokens")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=0.0)
    model.train()
    data = torch.tensor(wins)
    dev = prepare(input_device(model))
    for epoch in range(1, cfg.epochs + 1):
        order = torch.randperm(len(data), generator=gen)
        total = 0.0
        for i in range(0, len(order), cfg.batch_size):
            x = data[order[i:i + cfg.batch_size]].to(dev)
            with autocast(dev):
                loss = model(input_ids=x, labels=x).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(x)
        if progress:
            progress(epoch, total / len(data))
    model.eval()
    return model


def persistence_finetune(model, tok, fps: list[Fingerprint], text: str | None = None,
                         cfg: FinetuneAttack = FinetuneAttack()) -> dict:
    text = text if text is not None else read_text(ATTACK_TEXT)
    finetune_attack(model, tok, text, cfg)
    return {"attack": "finetune", "epochs": cfg.epochs, **check(model, tok, fps).summary()}


def persistence_wrapping(model, tok, fps: list[Fingerprint], templates: dict[str, str] | None = None) -> list[dict]:
    out = []
    for name, tpl in (templates or WRAP_TEMPLATES).items():
        out.append({"attack": f"wrap:{name}", "template": tpl, **check(model, tok, fps, template=tpl).summary()})
    return out
