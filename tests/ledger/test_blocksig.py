"""ML-DSA-65 block signatures (ml/ledger/blocksig.py, on PyPI `pqcrypto`) checked against FIPS 204 and
against an independent implementation (PyPI `dilithium-py`, pure Python, a dev dependency)."""
from __future__ import annotations

import hashlib

import pytest
from dilithium_py.ml_dsa import ML_DSA_65 as Independent
from pqcrypto.sign import ml_dsa_65

from common.errors import BadKeyFile
from ml.ledger.blocksig import (CONTEXT, PUBLIC_KEY_BYTES, SECRET_KEY_BYTES, SIGNATURE_BYTES, BlockSigningKey,
                                block_message, key_hash, verify_block)

LEDGER = "0x00000000000000000000000000000000000000AA"
ROOT = bytes(range(32))


def test_sizes_are_fips_204_ml_dsa_65():
    """FIPS 204 Table 2, ML-DSA-65: public key 1952 B, secret key 4032 B, signature 3309 B."""
    assert (PUBLIC_KEY_BYTES, SECRET_KEY_BYTES, SIGNATURE_BYTES) == (1952, 4032, 3309)
    k = BlockSigningKey.generate()
    sig = k.sign_block(31337, LEDGER, 1, ROOT)
    assert (len(k.public_key), len(k._secret), len(sig)) == (1952, 4032, 3309)


def test_round_trip_and_every_alteration_refused():
    k = BlockSigningKey.generate()
    sig = k.sign_block(31337, LEDGER, 7, ROOT)
    assert verify_block(k.public_key, sig, 31337, LEDGER, 7, ROOT)
    tampered = bytearray(sig)
    tampered[100] ^= 0x01
    assert not verify_block(k.public_key, bytes(tampered), 31337, LEDGER, 7, ROOT), "flipped bit"
    assert not verify_block(k.public_key, sig[:-1], 31337, LEDGER, 7, ROOT), "truncated"
    assert not verify_block(k.public_key, sig, 31337, LEDGER, 8, ROOT), "another block"
    assert not verify_block(k.public_key, sig, 1, LEDGER, 7, ROOT), "another chain"
    assert not verify_block(k.public_key, sig, 31337, "0x00000000000000000000000000000000000000Ab", 7, ROOT), "another ledger"
    assert not verify_block(k.public_key, sig, 31337, LEDGER, 7, bytes(32)), "another root"
    assert not verify_block(BlockSigningKey.generate().public_key, sig, 31337, LEDGER, 7, ROOT), "another key"
    # Same key and message, another FIPS 204 context: not a block signature.
    other_ctx = bytes(ml_dsa_65.sign(k._secret, block_message(31337, LEDGER, 7, ROOT), b"another purpose"))
    assert not verify_block(k.public_key, other_ctx, 31337, LEDGER, 7, ROOT)


def test_agrees_with_an_independent_fips_204_implementation():
    """Keys, signatures and contexts interoperate with dilithium-py in both directions, and a seeded
    key and deterministic signature from it match pinned digests (a known-answer check: a change in
    either implementation's encoding or arithmetic fails here)."""
    pk, sk = Independent.key_derive(bytes(32))
    assert hashlib.sha256(pk).hexdigest() == "085ba380ff386dd52e42349c6eb88489d6058ea541a4e3fb0dce9a3fd1f7a911"
    msg = block_message(31337, LEDGER, 3, ROOT)
    sig_independent = Independent.sign(sk, msg, CONTEXT, deterministic=True)
    assert verify_block(pk, sig_independent, 31337, LEDGER, 3, ROOT), "pqcrypto verifies dilithium-py's signature"
    fixed = Independent.sign(sk, b"msg", b"ctx", deterministic=True)
    assert hashlib.sha256(fixed).hexdigest() == "d47b20cccffb2be15e032832505d551e83a5c81522d8ae32529436b88724a5ae"
    ml_dsa_65.verify(pk, b"msg", fixed, b"ctx")  # raises if pqcrypto disagrees
    ours = BlockSigningKey(pk, sk).sign_block(31337, LEDGER, 3, ROOT)  # pqcrypto signing with that secret key
    assert Independent.verify(pk, msg, ours, CONTEXT), "dilithium-py verifies pqcrypto's signature"
    assert not Independent.verify(pk, msg, ours, b"another context")
    k = BlockSigningKey.generate()
    assert Independent.verify(k.public_key, msg, k.sign_block(31337, LEDGER, 3, ROOT), CONTEXT)


def test_key_file_round_trip_and_bad_files(tmp_path):
    path = tmp_path / "k.mldsa65"
    k = BlockSigningKey.create_file(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again = BlockSigningKey.load(path)
    assert again.public_key == k.public_key and again.key_hash == key_hash(k.public_key)
    with pytest.raises(FileExistsError):
        BlockSigningKey.create_file(path)
    (tmp_path / "bad").write_text('{"algorithm": "ML-DSA-44", "public_key": "", "secret_key": ""}')
    with pytest.raises(BadKeyFile, match="not an ML-DSA-65 key file"):
        BlockSigningKey.load(tmp_path / "bad")
    (tmp_path / "short").write_text('{"algorithm": "ML-DSA-65", "public_key": "00", "secret_key": "00"}')
    with pytest.raises(BadKeyFile, match="1952"):
        BlockSigningKey.load(tmp_path / "short")
    with pytest.raises(BadKeyFile, match="does not exist"):
        BlockSigningKey.load(tmp_path / "absent")
