"""A community registers its OMLized model: weights in the content store, fingerprint root and
licence terms on-chain."""
from __future__ import annotations

from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from agents.core.chain import Chain
from agents.core.store import ContentStore
from ml.oml.commitment import FingerprintTree


@dataclass(frozen=True)
class Terms:
    fee_per_query: int
    stake_required: int
    licence_period: int
    query_budget: int = 0


def register_model(chain: Chain, community: LocalAccount, store: ContentStore, weights: bytes,
                   fingerprints: list[tuple[str, str]], terms: Terms) -> tuple[int, str]:
    """Store the weights, commit to the fingerprints; returns (model id, weights CID)."""
    cid = store.put(weights)
    root = FingerprintTree(fingerprints).root
    registry = chain.contract("ModelRegistry")
    receipt = chain.transact(community, registry.functions.registerModel(
        cid, root, terms.fee_per_query, terms.stake_required, terms.licence_period, terms.query_budget))
    ev = next(e for e in chain.decode_events(receipt) if e.name == "ModelRegistered")
    return ev.args["modelId"], cid


def set_host_subset(chain: Chain, community: LocalAccount, model_id: int, host: str,
                    subset: list[tuple[str, str]]) -> bytes:
    """Record the root of the fingerprint subset embedded in `host`'s copy; returns the root.

    Every pair of the subset must also be in the model's full fingerprint set.
    """
    root = FingerprintTree(subset).root
    registry = chain.contract("ModelRegistry")
    chain.transact(community, registry.functions.setHostSubsetRoot(model_id, host, root))
    return root


def trace_leak(chain: Chain, model_id: int, key: str, response: str,
               subsets: dict[str, list[tuple[str, str]]]) -> list[str]:
    """Hosts whose recorded subset (checked on-chain) contains the (key, response) pair seen in a leak."""
    registry = chain.contract("ModelRegistry")
    found = []
    for host, pairs in subsets.items():
        if (key, response) in pairs:
            proof = FingerprintTree(pairs).proof(key, response)
            if chain.call(registry.functions.isHostSubsetFingerprint(model_id, host, key, response, proof)):
                found.append(host)
    return found
