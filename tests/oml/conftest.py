"""OML fixtures. Fingerprinting: a tiny random-init LM and fingerprints generated from it.
Protocol: per-host fingerprinted copies of a tiny model (built once per session, a different subset
in each) and a registered, licensed deployment on the shared Anvil (reverted after each test by the
`chain` fixture)."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

torch.set_num_threads(1)  # tiny models: one thread avoids OpenMP spin-waiting on a shared 2-core box

from agents.oml.community import Terms, copy_cid, register_copies  # noqa: E402
from agents.oml.host import join_as_host  # noqa: E402
from agents.oml.verifier import join_as_verifier  # noqa: E402
from ml.lm import tiny_causal_lm  # noqa: E402
from ml.oml import copies as mc  # noqa: E402
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
def tiny_copies():
    """Two tiny GPT-2 copies: pairs 0-2 injected into the first only, pairs 3-5 into the second only."""
    return mc.build(mc.CopySpec(base="tiny", hosts=2, per_host=3))


@dataclass
class Oml:
    chain: object
    model_id: int
    cid: str
    pairs: list                 # all fingerprints (the model's root)
    subsets: dict               # host address -> pairs in its copy (honest: pairs[:3], cheater: pairs[3:])
    models: dict                # host address -> ServedLM loaded from the store
    model: object               # the honest host's copy
    admin: object
    community: object
    platform: object
    honest: object
    cheater: object
    prover: object
    verifiers: list


@pytest.fixture
def oml(chain, signers, store, tiny_copies):
    pairs = tiny_copies.fingerprints
    admin, community, honest, cheater, prover, platform = signers[0], *signers[10:15]
    verifiers = signers[15:18]
    ledger = chain.contract("UsageLedger")
    role = chain.call(ledger.functions.PLATFORM_ROLE())
    chain.transact(admin, ledger.functions.grantRole(role, platform.address))
    hosts = (honest.address, cheater.address)
    subsets = dict(zip(hosts, tiny_copies.subsets))
    model_id, cid, _ = register_copies(chain, community, store, "tiny", dict(zip(hosts, tiny_copies.blobs)),
                                       subsets, pairs, TERMS)
    models = {h: mc.load(store.get(copy_cid(store, cid, h))) for h in hosts}
    for h in (honest, cheater):
        join_as_host(chain, h, model_id)
    for v in verifiers:
        join_as_verifier(chain, v)
    chain.mine(1)
    return Oml(chain, model_id, cid, pairs, subsets, models, models[honest.address], admin, community, platform,
               honest, cheater, prover, verifiers)
