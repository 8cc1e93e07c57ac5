"""Held-out loss of a fork's adapter state: what a quality attestation states and a re-check recomputes.

The loss of a state on a held-out set is the mean, over the set's interactions, of the SFT loss the
trainer optimises (prompt as context with masked labels, target = feedback if given else the
response): mean token cross-entropy in nats, model in eval mode, no gradient. The adapter is the
ledger's LoRA with peft's default target modules and alpha = 2 x rank (the rank is read from the
state's tensors), which is how `loyal ledger train` and the devnet step train; a state of `None`
is the base model itself (LoRA's B matrices start at zero). On chain a loss is an integer,
nats x LOSS_SCALE.

A re-check recomputes both losses from the same states and data; float32 CPU arithmetic can
differ in the last bits between machines, so it accepts a difference up to RECHECK_TOLERANCE.
"""
from __future__ import annotations

import json

import torch

from . import tensors
from .errors import NonCanonicalTensors
from .trainer import ForkTrainer, Interaction

LOSS_SCALE = 10**9  # TrainingLedger.LOSS_SCALE
RECHECK_TOLERANCE = 10**5  # 1e-4 nats, in LOSS_SCALE units


def lora_rank(state: bytes) -> int:
    """The LoRA rank of an adapter state (the first dimension of its `lora_A` matrices)."""
    ranks = {int(t.shape[0]) for name, t in tensors.from_bytes(state).items() if "lora_A" in name}
    if len(ranks) != 1:
        raise NonCanonicalTensors(f"not a LoRA adapter state with one rank (lora_A ranks: {sorted(ranks)})")
    return ranks.pop()


def to_units(loss: float) -> int:
    return int(round(loss * LOSS_SCALE))


def held_out_losses(model, tokenizer, states: list[bytes | None], data: list[Interaction]) -> list[float]:
    """The held-out loss of each state in `states` (on the base model `model`, which this wraps)."""
    if not data:
        raise ValueError("a held-out set needs at least one interaction")
    known = [s for s in states if s is not None]
    rank = lora_rank(known[0]) if known else 4
    trainer = ForkTrainer(model, tokenizer, rank=rank, alpha=2 * rank, seed=0)
    zero = {n: p.detach().clone() for n, p in trainer._params.items()}  # fresh LoRA: B = 0, the base model
    out = []
    for state in states:
        if state is None:
            trainer.restore((zero, {}))
        else:
            trainer.load_state(state)
        out.append(_mean_loss(trainer, data))
    return out


def _mean_loss(trainer: ForkTrainer, data: list[Interaction]) -> float:
    total = 0.0
    with torch.no_grad():
        for it in data:
            ids, labels = trainer._encode(it)
            total += float(trainer.model(input_ids=ids, labels=labels).loss)
    return total / len(data)


def data_bytes(data: list[Interaction]) -> bytes:
    """Canonical bytes of a held-out set (what its CID in an attestation addresses)."""
    return json.dumps([{"prompt": d.prompt, "response": d.response, "feedback": d.feedback} for d in data],
                      sort_keys=True, separators=(",", ":")).encode()


def data_from_bytes(raw: bytes) -> list[Interaction]:
    try:
        rows = json.loads(raw)
        return [Interaction(r["prompt"], r["response"], r.get("feedback")) for r in rows]
    except (ValueError, KeyError, TypeError):
        raise ValueError("not a held-out set: expected a JSON list of {prompt, response, feedback}") from None
