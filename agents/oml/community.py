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
