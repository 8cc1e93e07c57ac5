import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(1)  # the CI box is shared: one thread avoids OpenMP spin-waiting under load

from ml.lm import tiny_causal_lm  # noqa: E402
from ml.oml.generate import GenConfig, generate  # noqa: E402


@pytest.fixture
def tiny():
    return tiny_causal_lm(seed=0)


@pytest.fixture(scope="session")
def tiny_fps():
    model, tok = tiny_causal_lm(seed=0)
    return generate(model, tok, GenConfig(strategy="perinucleus", n=8, key_tokens=12, response_tokens=3, seed=7))
