"""OML fixtures. Fingerprinting: a tiny random-init LM and fingerprints generated from it.
Protocol: per-host fingerprinted copies of a tiny model (built once per session, a different subset
in each) and a registered, licensed deployment on the shared Anvil (reverted after each test by the
`chain` fixture); `oml` commits exact fingerprints, `oml_functional` functional ones (copies of
`ml.lm.tiny_causal_lm` with green-word answers injected by SFT)."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

torch.set_num_threads(1)  # tiny models: one thread avoids OpenMP spin-waiting on a shared 2-core box

from agents.oml.community import Terms, load_copy, register_copies  # noqa: E402
from agents.oml.host import join_as_host  # noqa: E402
from agents.oml.verifier import join_as_verifier  # noqa: E402
from ml.lm import tiny_causal_lm  # noqa: E402
from agents.oml import scenario  # noqa: E402
from ml.oml import copies as mc  # noqa: E402
from ml.oml import decode  # noqa: E402
from ml.oml import functional as F  # noqa: E402
from ml.oml.generate import GenConfig, generate  # noqa: E402
from ml.oml.inject import InjectConfig, inject  # noqa: E402

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
    keys: dict | None = None    # host address -> its copy's content key (the community's secret)

    def actors(self) -> scenario.Actors:
        return scenario.Actors(self.community, self.platform, self.honest, self.cheater, self.prover, self.verifiers)

    def deployment(self) -> scenario.Deployment:
        return scenario.Deployment(self.model_id, self.cid, self.pairs, self.subsets, self.models)


def _deploy(chain, signers, store, base: str, blobs: list[bytes], subsets: list, pairs: list, load) -> Oml:
    """Register one copy per host (honest, cheater) with the full and subset roots, grant the
    platform role, license both hosts and register three verifiers; `load(blob)` is what a host serves."""
    admin, community, honest, cheater, prover, platform = signers[0], *signers[10:15]
    verifiers = signers[15:18]
    ledger = chain.contract("UsageLedger")
    role = chain.call(ledger.functions.PLATFORM_ROLE())
    chain.transact(admin, ledger.functions.grantRole(role, platform.address))
    hosts = (honest.address, cheater.address)
    by_host = dict(zip(hosts, subsets))
    model_id, cid, keys = register_copies(chain, community, store, base, dict(zip(hosts, blobs)), by_host, pairs, TERMS)
    models = {h: load(load_copy(store, cid, h, keys[h])) for h in hosts}
    for h in (honest, cheater):
        join_as_host(chain, h, model_id)
    for v in verifiers:
        join_as_verifier(chain, v)
    chain.mine(1)
    return Oml(chain, model_id, cid, pairs, by_host, models, models[honest.address], admin, community, platform,
               honest, cheater, prover, verifiers, keys)


@pytest.fixture
def oml(chain, signers, store, tiny_copies):
    return _deploy(chain, signers, store, "tiny", tiny_copies.blobs, tiny_copies.subsets, tiny_copies.fingerprints,
                   mc.load)


class Greedy:
    """A (model, tokenizer) that completes prompts greedily, decoded as `functional.check` decodes them."""

    def __init__(self, model, tok):
        self.model, self.tok = model.eval(), tok

    def complete(self, prompt: str, max_new_tokens: int = 32) -> str:
        return decode.greedy_text(self.model, self.tok, prompt, max_new_tokens)


FUNCTIONAL = F.FunctionalGenConfig(n=4, seed=3, words=4, min_words=4, key_tokens=12)


@dataclass
class FunctionalCopies:
    ffps: list                  # the full set; ffps[:2] injected into copy 0 only, ffps[2:] into copy 1 only
    blobs: list[bytes]          # each copy's weights (`copies.to_bytes`: safetensors, tied lm_head left out)


def load_functional_copy(blob: bytes) -> Greedy:
    """A copy's weights from the store, back into `tiny_causal_lm`, served greedily."""
    from safetensors.torch import load as st_load

    from ml.lm import tiny_causal_lm

    model, tok = tiny_causal_lm(seed=0)
    missing, unexpected = model.load_state_dict(st_load(blob), strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}
    model.tie_weights()
    return Greedy(model, tok)


@pytest.fixture(scope="session")
def functional_copies():
    """Two copies of `tiny_causal_lm(0)`, each with its own two functional fingerprints injected by SFT
    (~1 s each); every copy passes its own rules and none of the other copy's.

    A fixed 60 steps, not early stopping: stopping at the first epoch whose teacher-forced argmax is
    all correct leaves near-ties that a differently padded greedy pass can flip."""
    from ml.lm import tiny_causal_lm

    model, tok = tiny_causal_lm(seed=0)
    ffps = F.generate(model, tok, FUNCTIONAL)
    blobs = []
    for i, subset in enumerate((ffps[:2], ffps[2:])):
        model, tok = tiny_causal_lm(seed=0)
        model, _ = inject(model, tok, F.training_pairs(subset), InjectConfig(lr=3e-3, batch_size=2, seed=i, steps=60))
        assert all(F.check(model, tok, subset).passed)
        assert not any(F.check(model, tok, [f for f in ffps if f not in subset]).passed)
        blobs.append(mc.to_bytes(model, "tiny-gpt2-bytes"))
    return FunctionalCopies(ffps, blobs)


@pytest.fixture
def functional_base() -> Greedy:
    """The un-fingerprinted base of the functional copies, served greedily."""
    from ml.lm import tiny_causal_lm

    return Greedy(*tiny_causal_lm(seed=0))


@pytest.fixture
def oml_functional(chain, signers, store, functional_copies):
    """The deployment of `oml` with functional fingerprints: the model's root and each host's subset
    root commit (key, rule descriptor) pairs."""
    ffps = functional_copies.ffps
    pairs = [f.pair for f in ffps]
    return _deploy(chain, signers, store, "tiny-gpt2-bytes", functional_copies.blobs, [pairs[:2], pairs[2:]],
                   pairs, load_functional_copy)
