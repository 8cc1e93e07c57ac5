"""Secure aggregation by pairwise masks (Bonawitz et al., CCS 2017, the pairwise-mask part), so
an evaluator learns only the subgroup's sum of updates, not any single update.

Keys. Each participant holds an X25519 key pair and publishes the 32-byte public key (on-chain,
authenticated by its account). Members u, v of a subgroup agree on s_uv = X25519(sk_u, pk_v).

Pair seed and PRG. For one mask context (task, round, subgroup: bytes chosen by the caller, e.g.
abi-encoded; masks must never be reused across rounds), the pair seed is
    k_uv = HKDF-SHA256(ikm=s_uv, salt=b"", info=b"loyal-din-secagg-v1" | len-prefixed context |
                       len-prefixed min(u,v) | len-prefixed max(u,v), length=32)
and the mask is the ChaCha20 keystream under key k_uv with an all-zero 16-byte nonce (counter 0),
read as little-endian uint64: one element of Z_2^64 per model coordinate.

Masking. Member u's fixed-point update q_u (aggregate.encode) is sent as
    y_u = q_u + sum_{v > u} PRG(k_uv) - sum_{v < u} PRG(k_uv)      (mod 2^64; ids compared as str)
Every pair's mask is added once and subtracted once, so sum_u y_u = sum_u q_u (mod 2^64), read
back as int64 (exact while the true sum fits, see aggregate.MAX_ABS). Each y_u alone is uniformly
distributed to anyone without a seed of u's.

Dropouts. After the round deadline the chain fixes the set of members who submitted. For each
dropped member d, every survivor s reveals k_sd (`recovery_seeds`); the evaluator removes those
masks (`unmask_sum`). Why this is safe here: k_sd is bound to this round's context (it reveals
nothing about other rounds or about sk_s), and it only unmasks the pair (s, d). The danger in the
general protocol is a server that claims d dropped while holding y_d, collects every k_sd and so
unmasks d's update. On DIN submissions are public on-chain and late submissions are rejected by
the contract, so "dropped" is a public fact: survivors check the chain and reveal seeds only for
members with no submission, whose y_d therefore exists nowhere. A survivor's own y_s stays masked
by its pairs with the other survivors, which is why at least `MIN_SURVIVORS` (2) must remain.

Not built (the full protocol's extra rounds): self-masks b_u with Shamir shares of b_u and of
sk_u, which let the server finish when survivors themselves drop during recovery and protect
against a server that lies about dropouts without a public bulletin board; signatures on key
advertisements for a server that could substitute keys (here the chain authenticates keys);
robustness to a survivor revealing a wrong seed (the sum is then wrong and the subgroup scores
badly, but the culprit is not identified).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_abi import encode as abi_encode

from ml.din import model as M
from ml.din.aggregate import MAX_ABS, decode_sum, encode
from ml.din.errors import BadUpdate, RecoveryImpossible

INFO = b"loyal-din-secagg-v1"
MIN_SURVIVORS = 2
_NONCE = bytes(16)


def new_private_key() -> X25519PrivateKey:
    """A fresh X25519 private key (keep it local; publish `public_bytes(key)`)."""
    return X25519PrivateKey.generate()


def private_key_from_bytes(raw: bytes) -> X25519PrivateKey:
    """Load a 32-byte raw X25519 private key (e.g. from the participant's key file)."""
    return X25519PrivateKey.from_private_bytes(raw)


def private_bytes(key: X25519PrivateKey) -> bytes:
    """The raw 32 bytes of a private key, for the participant's own key file."""
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def public_bytes(key: X25519PrivateKey) -> bytes:
    """The 32-byte public key to publish (fits a bytes32 on-chain)."""
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _lp(b: bytes) -> bytes:
    return len(b).to_bytes(4, "big") + b


def pair_seed(my_key: X25519PrivateKey, my_id: str, peer_id: str, peer_public: bytes,
              context: bytes) -> bytes:
    """k_uv: the 32-byte seed both members of a pair derive for this context."""
    if my_id == peer_id:
        raise ValueError("a member has no pair seed with itself")
    shared = my_key.exchange(X25519PublicKey.from_public_bytes(bytes(peer_public)))
    lo, hi = sorted((my_id, peer_id))
    info = INFO + _lp(context) + _lp(lo.encode()) + _lp(hi.encode())
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"", info=info).derive(shared)


def prg(seed: bytes, n: int) -> np.ndarray:
    """n pseudo-random elements of Z_2^64: ChaCha20 keystream of `seed`, little-endian uint64."""
    enc = Cipher(algorithms.ChaCha20(seed, _NONCE), mode=None).encryptor()
    return np.frombuffer(enc.update(bytes(8 * n)), dtype="<u8").astype(np.uint64)


def _sign(me: str, other: str) -> int:
    return 1 if me < other else -1


def mask(encoded: np.ndarray, my_id: str, my_key: X25519PrivateKey,
         peers_public: Mapping[str, bytes], context: bytes) -> np.ndarray:
    """The vector member `my_id` submits: its int64 fixed-point update plus its pairwise masks
    with every other member of the subgroup (`peers_public`: id -> public key; may include itself)."""
    q = np.asarray(encoded)
    if q.dtype != np.int64 or q.ndim != 1:
        raise ValueError("mask expects a 1-D int64 fixed-point vector (aggregate.encode)")
    y = q.view(np.uint64).copy()
    for peer in sorted(peers_public):
        if peer == my_id:
            continue
        m = prg(pair_seed(my_key, my_id, peer, peers_public[peer], context), q.size)
        y = y + m if _sign(my_id, peer) > 0 else y - m  # uint64 arithmetic wraps mod 2^64
    return y


def recovery_seeds(my_id: str, my_key: X25519PrivateKey, peers_public: Mapping[str, bytes],
                   dropped: Iterable[str], context: bytes) -> dict[str, bytes]:
    """A survivor's reveal after the deadline: its pair seed with each dropped member.
    Call only for members the chain shows as not having submitted (see the module docstring)."""
    out = {}
    for d in sorted(set(dropped)):
        if d == my_id:
            raise ValueError(f"{my_id} cannot reveal seeds as a dropped member")
        out[d] = pair_seed(my_key, my_id, d, peers_public[d], context)
    return out


def unmask_sum(masked: Mapping[str, np.ndarray], members: Iterable[str],
               revealed: Mapping[str, Mapping[str, bytes]] | None = None,
               min_survivors: int = MIN_SURVIVORS) -> np.ndarray:
    """The evaluator's step: the int64 sum of the survivors' fixed-point updates.

    `masked`: survivor id -> submitted uint64 vector; `members`: the whole subgroup; members not
    in `masked` are the dropped ones. `revealed`: survivor id -> {dropped id: pair seed}.
    Raises RecoveryImpossible naming the members when fewer than `min_survivors` survived or a
    survivor has not revealed its seed with a dropped member; BadUpdate for a wrong-length vector."""
    group = sorted(set(members))
    survivors = sorted(masked)
    if not set(survivors) <= set(group):
        raise ValueError(f"submissions from non-members: {sorted(set(survivors) - set(group))}")
    dropped = [m for m in group if m not in masked]
    if len(survivors) < min_survivors:
        raise RecoveryImpossible(
            f"only {len(survivors)} of {len(group)} members survived ({', '.join(survivors) or 'none'}); "
            f"at least {min_survivors} are needed or the sum exposes an individual update",
            survivors=survivors)
    revealed = revealed or {}
    missing = [(s, d) for s in survivors for d in dropped if d not in revealed.get(s, {})]
    if missing:
        names = ", ".join(f"{s} (for dropped {d})" for s, d in missing)
        raise RecoveryImpossible(f"pair seeds not revealed by {names}: their masks cannot be removed",
                                 missing=missing, survivors=survivors)
    n = np.shape(masked[survivors[0]])
    total = np.zeros(n, dtype=np.uint64)
    for s in survivors:
        y = np.asarray(masked[s])
        if y.shape != n or y.dtype != np.uint64:
            raise BadUpdate(f"masked vector of shape {y.shape} and dtype {y.dtype}, expected {n} uint64", s)
        total += y
    for s in survivors:
        for d in dropped:
            m = prg(bytes(revealed[s][d]), n[0])
            # s added +m if s < d and -m otherwise; undo it.
            total = total - m if _sign(s, d) > 0 else total + m
    return total.view(np.int64)


def to_bytes(vec: np.ndarray) -> bytes:
    """A masked vector's bytes for upload: little-endian uint64."""
    return np.ascontiguousarray(vec, dtype="<u8").tobytes()


def from_bytes(blob: bytes, n: int, who: str | None = None) -> np.ndarray:
    """Parse a masked vector of n coordinates; BadUpdate on a wrong length."""
    if len(blob) != 8 * n:
        raise BadUpdate(f"masked vector of {len(blob)} bytes, expected {8 * n}", who)
    return np.frombuffer(blob, dtype="<u8").astype(np.uint64)


def mask_context(chain_id: int, registry: str, task_id: int, round_: int, subgroup: int) -> bytes:
    """The canonical mask context: abi.encode(chainId, registry address, taskId, round, subgroup),
    so masks are never reused across chains, deployments, tasks, rounds or subgroups."""
    return abi_encode(["uint256", "address", "uint256", "uint256", "uint256"],
                      [chain_id, registry, task_id, round_, subgroup])


def mask_update(update: bytes, layout: M.Layout, my_id: str, my_key: X25519PrivateKey,
                peers_public: Mapping[str, bytes], context: bytes) -> bytes:
    """Participant side, end to end: update bytes (client.train_update) -> masked bytes to upload."""
    vec = M.flatten(M.from_bytes(update, layout, my_id), layout, my_id)
    return to_bytes(mask(encode(vec, my_id), my_id, my_key, peers_public, context))


def aggregate_masked(masked: Mapping[str, bytes], members: Iterable[str], layout: M.Layout,
                     revealed: Mapping[str, Mapping[str, bytes]] | None = None) -> bytes:
    """Evaluator side, end to end: the survivors' masked bytes -> the subgroup aggregate's canonical
    bytes (equal-weight mean over survivors), identical to aggregate.aggregate on the plain updates.
    Raises RecoveryImpossible (see unmask_sum) or BadUpdate when a vector has the wrong length or
    the unmasked mean is out of the fixed-point range (garbage from some member; the evaluator
    cannot tell whom, which is the point of masking)."""
    n = M.size_of(layout)
    vecs = {s: from_bytes(b, n, s) for s, b in masked.items()}
    mean = decode_sum(unmask_sum(vecs, members, revealed), len(vecs))
    if float(np.abs(mean).max()) > MAX_ABS:
        # honest members' encoded updates are bounded by MAX_ABS, so their mean is too
        raise BadUpdate(f"unmasked mean of {sorted(vecs)} is out of the fixed-point range: a member "
                        "submitted a vector it did not mask from a valid update, or a wrong seed "
                        "was revealed", "subgroup")
    return M.to_bytes(M.unflatten(mean, layout))
