"""Signed answers and sealed keys off-chain: what the host signs recovers to it through eth_account,
a tampered or foreign answer is refused with a reason, a sealed opening decrypts (eciespy) only for
its verifier and only if it opens the commitment."""
from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account
from eth_abi import encode

from agents.oml.answers import BadSignedAnswer, SignedAnswer, check, sign_answer
from agents.oml.sealed import Opening, SealDoesNotOpen, observation_hash, public_key, seal, unseal
from common.typed_data import Domain

HOST = Account.from_key(b"\x11" * 32)
OTHER = Account.from_key(b"\x22" * 32)
V1, V2 = Account.from_key(b"\x33" * 32), Account.from_key(b"\x44" * 32)
DOMAIN = Domain("Loyal OML HostAnswers", "1", 31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")


def _answer(**kw):
    return sign_answer(HOST, DOMAIN, 1, 1_700_000_000, "the key", "the response and more", time=5, **kw)


def test_signed_answer_round_trips_and_recovers_to_the_host():
    a = _answer(permission_digest=b"\x07" * 32)
    b = SignedAnswer.from_json(a.to_json())
    assert b == a and b.signer() == HOST.address
    check(b, domain=DOMAIN, host=HOST.address, model_id=1, prompt="the key", completion="the response and more",
          licence_start=1_700_000_000)


@pytest.mark.parametrize("change,why", [
    (dict(prompt="another key"), "another prompt"),
    (dict(completion="edited"), "another completion"),
    (dict(model_id=2), "model 1, not 2"),
    (dict(host=OTHER.address), "names host"),
    (dict(licence_start=1), "licence"),
    (dict(domain=dataclasses.replace(DOMAIN, chain_id=1)), "another deployment"),
])
def test_check_names_what_does_not_match(change, why):
    args = dict(domain=DOMAIN, host=HOST.address, model_id=1, prompt="the key", completion="the response and more",
                licence_start=1_700_000_000)
    with pytest.raises(BadSignedAnswer, match=why):
        check(_answer(), **{**args, **change})


def test_tampered_or_foreign_signatures_are_refused():
    a = _answer()
    with pytest.raises(BadSignedAnswer, match="not by host"):
        check(dataclasses.replace(a, time=6), domain=DOMAIN, host=HOST.address, model_id=1, prompt="the key",
              completion="the response and more")
    with pytest.raises(BadSignedAnswer, match="unusable"):
        dataclasses.replace(a, signature=b"\x01" * 10).signer()
    for bad in ({}, {"domain": {}, "answer": {}}, {**a.to_json(), "signature": "0xzz"},
                {**a.to_json(), "answer": {**a.to_json()["answer"], "promptHash": "0x12"}}):
        with pytest.raises(BadSignedAnswer, match="malformed"):
            SignedAnswer.from_json(bad)


def test_sealed_opening_opens_only_for_its_verifier_and_its_commitment():
    o = Opening("key", "response", HOST.address, "http://rogue:8000", b"\x09" * 32)
    blob = seal(o, {V1.address: public_key(V1)})
    assert unseal(blob, V1, o.commitment()) == o
    with pytest.raises(SealDoesNotOpen, match="no sealed key"):
        unseal(blob, V2, o.commitment())
    with pytest.raises(SealDoesNotOpen, match="does not open the commitment"):
        unseal(blob, V1, dataclasses.replace(o, salt=b"\x0a" * 32).commitment())
    wrong_key = encode(["address[]", "bytes[]"], [[V2.address], [seal(o, {V1.address: public_key(V1)})[-200:]]])
    with pytest.raises(SealDoesNotOpen, match="does not decrypt"):
        unseal(wrong_key, V2, o.commitment())
    with pytest.raises(SealDoesNotOpen, match="not ABI"):
        unseal(b"garbage", V1, o.commitment())
    with pytest.raises(ValueError, match="no verifier"):
        seal(o, {})


def test_observation_hash_binds_the_verifier_and_the_text():
    c = b"\x01" * 32
    h = observation_hash(c, V1.address, "seen", b"\x02" * 32)
    assert h != observation_hash(c, V2.address, "seen", b"\x02" * 32)
    assert h != observation_hash(c, V1.address, "seen!", b"\x02" * 32)
