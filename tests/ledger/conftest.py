from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory):
    from ml.ledger.tiny import make_tiny_lm

    return make_tiny_lm(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture
def trainer(tiny_lm_dir):
    from ml.ledger.base import load_base
    from ml.ledger.trainer import ForkTrainer

    model, tok = load_base(tiny_lm_dir)
    return ForkTrainer(model, tok, lr=0.5, seed=0)
