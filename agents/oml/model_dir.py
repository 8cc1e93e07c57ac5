"""A licensed host's local model directory: the decrypted copy `loyal oml license` writes and
`loyal oml host serve` loads onto a torch device (`ml.device.pick_device`).

Layout: `model.safetensors` (the copy's bytes exactly as the community built them: weights plus the
config and base name in the metadata, `ml.oml.copies`) and `licence.json` (model id, host, the
sealed copy's CID, chain id). The plaintext lives only here, on the licensee's disk.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from common.errors import ConfigError
from common.files import atomic_write
from ml.oml import copies as mc
from ml.oml import protocol_model as pm

WEIGHTS = "model.safetensors"
INFO = "licence.json"


class ModelDirMissing(ConfigError):
    """No decrypted copy at the given model directory."""


def write_model_dir(out: Path, blob: bytes, info: dict) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / WEIGHTS, blob, mode=0o600)
    atomic_write(out / INFO, json.dumps(info, indent=2, sort_keys=True).encode(), mode=0o600)
    return out


def read_info(path: Path) -> dict:
    if not (path / WEIGHTS).is_file() or not (path / INFO).is_file():
        raise ModelDirMissing(f"no licensed copy in {path} (expected {WEIGHTS} and {INFO}): "
                              "run `loyal oml license` first, or pass --model-dir")
    return json.loads((path / INFO).read_text())


class LocalModel:
    """A copy loaded on `device` that completes prompts greedily (what provers and verifiers expect)."""

    def __init__(self, served: mc.ServedLM, device: torch.device, name: str):
        self.base = served.base
        self.tok = served.tok
        self.device = device
        self.model = served.model.to(device).eval()
        self.name = name

    @torch.no_grad()
    def complete(self, prompt: str, max_new_tokens: int = 32) -> str:
        if self.base == "tiny":
            ids = pm.encode(prompt)[-self.model.config.n_positions + max_new_tokens:]
            ids = torch.tensor([ids], device=self.device)
            out = self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                      do_sample=False, eos_token_id=pm.EOS, pad_token_id=pm.EOS)
            return pm.decode(out[0, ids.shape[1]:].tolist())
        ids = torch.tensor([self.tok.encode(prompt, add_special_tokens=False)], device=self.device)
        out = self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                  do_sample=False, pad_token_id=self.tok.pad_token_id)
        return self.tok.decode(out[0, ids.shape[1]:].tolist(), skip_special_tokens=True)

    def chat_prompt(self, messages: list[dict]) -> str:
        """The prompt a chat renders to: the tokenizer's chat template when it has one, else
        `role: content` lines ending with `assistant:`."""
        if self.tok is not None and getattr(self.tok, "chat_template", None):
            return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"


def load_model_dir(path: Path, device: torch.device) -> tuple[LocalModel, dict]:
    info = read_info(path)
    served = mc.load((path / WEIGHTS).read_bytes())
    return LocalModel(served, device, info.get("name", f"oml-model-{info.get('model_id', 0)}")), info
