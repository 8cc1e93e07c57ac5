"""OML fixtures. Fingerprinting: a tiny random-init LM and fingerprints generated from it.
Protocol: a fingerprinted tiny model (trained once per session) and a registered, licensed deployment
on the shared Anvil (reverted after each test by the `chain` fixture)."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

torch.set_num_threads(1)  # tiny models: one thread avoids OpenMP spin-waiting on a shared 2-core box

from agents.oml.community import Terms, register_model  # noqa: E402
from agents.oml.host import join_as_host  # noqa: E402
from agents.oml.verifier import join_as_verifier  # noqa: E402
from ml.lm import tiny_causal_lm  # noqa: E402
from ml.oml import protocol_model as pm  # noqa: E402
from ml.oml.generate import GenConfig, generate  # noqa: E402

TOKEN = 10**18
TERMS = Terms(fee_per_query=TOKEN, stake_required=500 * TOKEN, licence_period=30 * 24 * 3600, query_budget=10_000)


@pytest.fixture
def tiny():
    return tiny_causal_lm(seed=0)


@pytest.fixture(scope="session")
def tiny_fps():
    model, tok = tiny_causal_lm(seed=0)
    return generate(model, tok, GenConfig(strategy="perinucleus", n=8, key_tokens=12, response_tokens=3, seed=7))


@pytest.fixture(scope="session")
def fingerprinted():
    model = pm.new_model(seed=0)
    pairs = pm.make_fingerprints(4, seed=1)
    stats = pm.inject(model, pairs, max_steps=600, seed=0)
    assert stats["match_rate"] == 1.0, stats
    return model, pairs


@dataclass
class Oml:
    chain: object
    model_id: int
    cid: str
    pairs: list
    model: object
    admin: object
    community: object
    platform: object
    honest: object
    cheater: object
    prover: object
    verifiers: list


@pytest.fixture
def oml(chain, signers, store, fingerprinted):
    model, pairs = fingerprinted
    admin, community, honest, cheater, prover, platform = signers[0], *signers[10:15]
    verifiers = signers[15:18]
    ledger = chain.contract("UsageLedger")
    role = chain.call(ledger.functions.PLATFORM_ROLE())
    chain.transact(admin, ledger.functions.grantRole(role, platform.address))
    model_id, cid = register_model(chain, community, store, pm.to_bytes(model), pairs, TERMS)
    for h in (honest, cheater):
        join_as_host(chain, h, model_id)
    for v in verifiers:
        join_as_verifier(chain, v)
    chain.mine(1)
    return Oml(chain, model_id, cid, pairs, model, admin, community, platform, honest, cheater, prover, verifiers)
