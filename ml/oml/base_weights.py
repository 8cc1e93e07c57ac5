"""The base weights model averaging pulls toward, without a second copy of the model in memory.

Averaging (`inject`, theta <- lam * theta_base + (1 - lam) * theta) needs the base values of every
parameter at every step. A CPU model loaded from a safetensors checkpoint already has them on
disk: `base_weights` maps that file (copy-on-write `numpy.memmap`, no read until touched; the pages
are the OS page cache's, shared and reclaimable, not the process's own memory) and uses a mapped
tensor for every parameter that is bit-for-bit equal to it at the start. Only parameters that
differ from the file (or have no float32 tensor in it, or live on a GPU, where the base must be
next to the weights) are cloned.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch


def checkpoint_files(model) -> list[Path]:
    """The safetensors files a Hugging Face model was loaded from (none if not loaded from a directory)."""
    src = getattr(getattr(model, "config", None), "_name_or_path", "") or ""
    d = Path(src)
    if not src or not d.is_dir():
        return []
    index = d / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [d / s for s in shards]
    single = d / "model.safetensors"
    return [single] if single.is_file() else []


def mapped_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The float32 tensors of a safetensors file as views of a copy-on-write memory map of it."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    mm = np.memmap(path, dtype=np.uint8, mode="c")
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info.get("dtype") != "F32":
            continue
        start, end = info["data_offsets"]
        arr = np.frombuffer(mm, dtype=np.float32, count=(end - start) // 4, offset=8 + n + start)
        out[name] = torch.from_numpy(arr).view(info["shape"])
    return out


class BaseWeights(dict):
    """{parameter name: base value}; `mapped` names the ones read from the checkpoint file's map."""
    mapped: set[str]

    def mapped_fraction(self) -> float:
        total = sum(t.numel() for t in self.values())
        return sum(self[n].numel() for n in self.mapped) / max(total, 1)


@torch.no_grad()
def base_weights(model) -> BaseWeights:
    """{parameter name: its current value}, mapped from the model's checkpoint where it equals it."""
    mapped: dict[str, torch.Tensor] = {}
    params = list(model.named_parameters())
    if params and all(p.device.type == "cpu" for _, p in params):
        for f in checkpoint_files(model):
            mapped.update(mapped_safetensors(f))
    out = BaseWeights()
    out.mapped = set()
    for name, p in params:
        m = mapped.get(name)
        if m is not None and m.shape == p.shape and p.dtype == torch.float32 and torch.equal(m, p.detach()):
            out[name] = m
            out.mapped.add(name)
        else:
            out[name] = p.detach().clone()
    return out
