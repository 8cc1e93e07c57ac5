"""One choice of torch device for every training and inference path (`--device auto|cpu|cuda[:N]|mps`).

`pick_device` turns the option into a `torch.device` (a `ConfigError` naming the fix when the device is
absent), `prepare` switches on what each accelerator is good at (TF32 matmuls on CUDA), and `autocast`
gives bf16 mixed precision on CUDA and does nothing elsewhere, so the same training loop runs on a
laptop CPU and a datacenter GPU.
"""
from __future__ import annotations

import contextlib
import functools

import torch

from common.errors import ConfigError

CHOICES = "auto, cpu, cuda, cuda:N or mps"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(choice: str | None = "auto") -> torch.device:
    """`auto`: CUDA when present, else Apple MPS when present, else the CPU. `cpu`, `cuda`, `cuda:N`
    and `mps` name a device explicitly; asking for one that is absent is a ConfigError."""
    choice = (choice or "auto").strip().lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "mps":
        if not _mps_available():
            raise ConfigError("--device mps: no Apple MPS device here; use --device cpu or auto")
        return torch.device("mps")
    if choice == "cuda" or choice.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {choice}: no CUDA device here (torch.cuda.is_available() is False, "
                              f"torch {torch.__version__}); use --device cpu or auto")
        try:
            dev = torch.device(choice)
        except RuntimeError as e:
            raise ConfigError(f"--device {choice!r}: expected {CHOICES}") from e
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {choice}: only {torch.cuda.device_count()} CUDA device(s) here")
        return dev
    raise ConfigError(f"--device {choice!r}: expected {CHOICES}")


def prepare(device: torch.device) -> torch.device:
    """Per-device switches, set once before training: TF32 matmuls and convolutions on CUDA."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def autocast(device: torch.device):
    """bf16 autocast on CUDA (when the GPU supports bf16), a no-op context elsewhere (CPU stays float32
    so results are bit-reproducible there)."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def input_device(model) -> torch.device:
    """Where a model's inputs go: the device of its input embeddings (the first shard when
    `accelerate` spread the model over several GPUs with a `device_map`)."""
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if emb is not None and getattr(emb, "weight", None) is not None:
        return emb.weight.device
    return next(model.parameters()).device


def to_device(batch: dict, device: torch.device) -> dict:
    """A batch of tensors (a collate dict) on `device`."""
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def bf16_native(device: torch.device) -> bool:
    """Does `device` compute bf16 matmuls natively (CUDA with bf16; a CPU with AVX512-BF16 or AMX,
    where oneDNN runs them about twice as fast as float32)? Elsewhere bf16 is emulated and slower."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})
    return False


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    """The CPU feature flags Linux reports (empty elsewhere)."""
    try:
        text = open("/proc/cpuinfo", encoding="ascii", errors="replace").read()
    except OSError:
        return frozenset()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return frozenset(line.partition(":")[2].split())


def bf16_autocast(device: torch.device):
    """bf16 autocast on `device` (CPU or CUDA), for passes whose answers are checked in float32."""
    return torch.autocast(device.type, dtype=torch.bfloat16)
