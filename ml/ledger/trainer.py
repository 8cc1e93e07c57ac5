"""A user's fork as a LoRA adapter (peft) on any Hugging Face causal LM, trained one interaction per op.

One op = one SFT step on one interaction: the prompt is context (labels masked), the target is the
user's feedback when given (a corrected answer) or else the response. The optimiser is plain SGD
without momentum, so the adapter state alone is enough to continue training in a new process.
Dropout is off (LoRA dropout 0, model in eval mode) so a step is a deterministic function of the
state, the interaction and the seed.

After each step the trainer computes `delta = new - state`, folds it (`state + delta`, see
`tensors.py`) and loads the folded state back into the model, so the weights it trains on next are
exactly what a verifier rebuilds from the recorded deltas.

Device: `device` (a `ml.device.pick_device` result; default the CPU) holds the model and the
adapter while training, with bf16 autocast and TF32 on CUDA (`ml.device`); the recorded state and
deltas are CPU float32 tensors whatever the device, so a verifier rebuilds them on any machine
(on the CPU a step is bit-reproducible; on a GPU it is what the GPU computed, recorded as such).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from peft import LoraConfig, TaskType, get_peft_model

from ml.device import autocast, prepare

from . import tensors
from .errors import NonCanonicalTensors


@dataclass(frozen=True)
class Interaction:
    prompt: str
    response: str
    feedback: str | None = None

    def target(self) -> str:
        return self.feedback if self.feedback else self.response


@dataclass(frozen=True)
class TrainStep:
    delta: bytes  # canonical safetensors of the delta
    state: bytes  # canonical safetensors of the folded state after the step
    loss: float


class ForkTrainer:
    """Wraps `model` (any HF causal LM, float32) with a LoRA adapter and trains it op by op."""

    def __init__(self, model, tokenizer, *, rank: int = 4, alpha: int = 8, lr: float = 0.05,
                 target_modules: list[str] | None = None, seed: int = 0, max_tokens: int = 256,
                 device: torch.device | str | None = None):
        torch.manual_seed(seed)
        self.device = prepare(torch.device(device or "cpu"))
        cfg = LoraConfig(task_type=TaskType.CAUSAL_LM, r=rank, lora_alpha=alpha, lora_dropout=0.0,
                         target_modules=target_modules)
        with warnings.catch_warnings():
            # peft notes it switches fan_in_fan_out on for GPT-2's Conv1D layers (correct, just noisy).
            warnings.filterwarnings("ignore", message="fan_in_fan_out", category=UserWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            self.model = get_peft_model(model.float(), cfg).to(self.device)
        self.model.eval()
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self._params = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        self._opt = torch.optim.SGD(list(self._params.values()), lr=lr)
        self._state: tensors.State = {}

    @property
    def state(self) -> tensors.State:
        return self._state

    def load_state(self, state_bytes: bytes) -> None:
        """Continue from a recorded state (canonical bytes of the fork's latest state)."""
        state = tensors.from_bytes(state_bytes)
        if set(state) != set(self._params):
            raise NonCanonicalTensors("state tensors do not match this model's LoRA adapter (other base model or LoRA config?)")
        self._assign(state)

    def snapshot(self) -> tuple[dict[str, torch.Tensor], tensors.State]:
        """Exact copy of the adapter weights and state, for `restore` if a step is not recorded."""
        return {n: p.detach().clone() for n, p in self._params.items()}, dict(self._state)

    def restore(self, snap: tuple[dict[str, torch.Tensor], tensors.State]) -> None:
        weights, state = snap
        with torch.no_grad():
            for name, p in self._params.items():
                p.copy_(weights[name])
        self._state = state

    def _assign(self, state: tensors.State) -> None:
        with torch.no_grad():
            for name, p in self._params.items():
                p.copy_(state[name])
        self._state = state

    def _encode(self, it: Interaction) -> tuple[torch.Tensor, torch.Tensor]:
        tok = self.tokenizer
        ctx = tok.encode(it.prompt + "\n", add_special_tokens=False)
        tgt = tok.encode(it.target(), add_special_tokens=False)
        if tok.eos_token_id is not None:
            tgt = tgt + [tok.eos_token_id]
        if not tgt:
            raise ValueError("an interaction needs a non-empty response or feedback to train on")
        ids = (ctx + tgt)[-self.max_tokens:]
        labels = ([-100] * len(ctx) + tgt)[-self.max_tokens:]
        return torch.tensor([ids], device=self.device), torch.tensor([labels], device=self.device)

    def step(self, it: Interaction) -> TrainStep:
        ids, labels = self._encode(it)
        self._opt.zero_grad(set_to_none=True)
        with autocast(self.device):
            loss = self.model(input_ids=ids, labels=labels).loss
        loss.backward()
        self._opt.step()
        new = {n: p.detach().to("cpu", copy=True) for n, p in self._params.items()}
        delta = tensors.diff(new, self._state)
        state = tensors.fold(self._state, delta)
        self._assign(state)
        return TrainStep(tensors.to_bytes(delta), tensors.to_bytes(state), float(loss.detach()))


def base_weights_bytes(model) -> bytes:
    """Canonical bytes of a base model's weights (what its registered CID addresses)."""
    return tensors.to_bytes({k: v.detach().to("cpu", torch.float32) for k, v in model.state_dict().items()})
