"""A community registers its OMLized model: per-host copies encrypted in the content store
(`encrypted_copies.py`), fingerprint root, subset roots and licence terms on-chain."""
from __future__ import annotations

import json
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from agents.core.chain import Chain
from agents.core.store import ContentStore
from ml.oml.commitment import FingerprintTree

from .encrypted_copies import SCHEME, new_content_key, seal, unseal


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


def register_copies(chain: Chain, community: LocalAccount, store: ContentStore, base: str,
                    copies: dict[str, bytes], subsets: dict[str, list[tuple[str, str]]],
                    fingerprints: list[tuple[str, str]], terms: Terms) -> tuple[int, str, dict[str, bytes]]:
    """Register a model shipped as one fingerprinted copy per host, each copy encrypted.

    Each copy is sealed (`encrypted_copies.seal`: AES-256-GCM under a fresh content key) and only the
    ciphertext goes in the store; the registered model CID is a JSON manifest
    `{"base", "scheme", "copies": {host: ciphertext CID}}`; the full fingerprint set is the model's
    root and each host's subset root is recorded for leak tracing. Returns (model id, manifest CID,
    content keys by host): the keys are the community's secret, handed to the platform, which wraps
    each one to its host's key once that host's licence runs (`platform.Platform.wrapped_key`).
    """
    keys = {host: new_content_key() for host in copies}
    cids = {host: store.put(seal(blob, keys[host])) for host, blob in copies.items()}
    manifest = json.dumps({"base": base, "scheme": SCHEME, "copies": cids}, sort_keys=True).encode()
    model_id, manifest_cid = register_model(chain, community, store, manifest, fingerprints, terms)
    for host, subset in subsets.items():
        set_host_subset(chain, community, model_id, host, subset)
    return model_id, manifest_cid, keys


def copy_cid(store: ContentStore, manifest_cid: str, host: str) -> str:
    """The CID of `host`'s (sealed) copy named in a model manifest (KeyError if the host has none)."""
    return json.loads(store.get(manifest_cid))["copies"][host]


def load_copy(store: ContentStore, manifest_cid: str, host: str, content_key: bytes) -> bytes:
    """`host`'s copy from the store, decrypted with its content key (WrongContentKey if it is not)."""
    return unseal(store.get(copy_cid(store, manifest_cid, host)), content_key)
