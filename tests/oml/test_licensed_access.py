"""Licensed access to weights: the store holds only ciphertext, a copy's content key reaches only its
licensed host (wrapped by the platform to the key that signed the request), and `loyal oml license`
writes a model directory that `loyal oml host serve`'s loader runs."""
from __future__ import annotations

import json

import httpx
import pytest
import torch
from eth_account.messages import encode_defunct

from agents.oml import encrypted_copies as sealed
from agents.oml.community import Terms, copy_cid, load_copy, register_copies
from agents.oml.platform import Platform, create_app
from agents.oml.serve import Service
from ml.oml import copies as mc
from tests.cli_runner import invoke

TOKEN = 10**18


def _blobs(store) -> list[bytes]:
    return [p.read_bytes() for p in (store.root / "blobs").rglob("*") if p.is_file()]


def test_store_holds_only_ciphertext(oml, store, tiny_copies):
    """Every copy in the store is sealed; no 64-byte window of any plaintext copy is in any stored blob."""
    stored = _blobs(store)
    manifest = json.loads(store.get(oml.cid))
    assert set(manifest["copies"]) == {oml.honest.address, oml.cheater.address}
    for host in manifest["copies"]:
        assert sealed.is_sealed(store.get(copy_cid(store, oml.cid, host)))
    for plain in tiny_copies.blobs:
        windows = [plain[i:i + 64] for i in range(0, len(plain) - 64, len(plain) // 16)]
        assert not any(w in blob for blob in stored for w in windows), "plaintext weights in the store"


def test_wrong_keys_open_nothing(oml, store):
    honest, cheater = oml.honest.address, oml.cheater.address
    with pytest.raises(sealed.WrongContentKey, match="does not open this copy"):
        load_copy(store, oml.cid, honest, oml.keys[cheater])  # the other copy's content key
    blob = bytearray(store.get(copy_cid(store, oml.cid, honest)))
    blob[-1] ^= 1
    with pytest.raises(sealed.WrongContentKey):
        sealed.unseal(bytes(blob), oml.keys[honest])  # a flipped bit: refused, not garbage weights
    pub = sealed.public_key_of(honest, b"\x01" * 32,
                               bytes(oml.honest.sign_message(encode_defunct(primitive=b"\x01" * 32)).signature))
    wrapped = sealed.wrap_key(pub, oml.keys[honest])
    assert sealed.unwrap_key(bytes(oml.honest.key), wrapped) == oml.keys[honest]
    with pytest.raises(sealed.WrongKey, match="wrapped for another host"):
        sealed.unwrap_key(bytes(oml.cheater.key), wrapped)


def test_platform_wraps_a_key_only_for_the_licensed_host_that_signed(oml, store, signers):
    chain = oml.chain
    outsider = signers[19]  # has a copy in a second model but never signs its licence
    model2, cid2, keys2 = register_copies(chain, oml.community, store, "tiny", {outsider.address: b"weights"},
                                          {}, oml.pairs, Terms(TOKEN, 500 * TOKEN, 3600))
    platform = Platform(chain, oml.platform, content_keys={oml.model_id: oml.keys, model2: keys2})
    with Service(create_app(platform)) as svc:
        def ask(body):
            return httpx.post(f"{svc.url}/v1/keys", json=body, timeout=30)

        body = sealed.sign_key_request(oml.honest, oml.model_id)
        r = ask(body)
        assert r.status_code == 200, r.text
        key = sealed.unwrap_key(bytes(oml.honest.key), bytes.fromhex(r.json()["wrapped_key"][2:]))
        assert mc.load(load_copy(store, oml.cid, oml.honest.address, key)).complete("hi", 2) is not None
        assert ask(body).status_code == 401  # the same request again: a replay
        forged = {**sealed.sign_key_request(oml.cheater, oml.model_id), "host": oml.honest.address}
        r = ask(forged)  # the cheater asks in the honest host's name
        assert r.status_code == 401 and "not signed by host" in r.json()["detail"]
        r = ask(sealed.sign_key_request(outsider, model2))
        assert r.status_code == 403 and "no running licence" in r.json()["detail"]
        r = ask(sealed.sign_key_request(signers[20], oml.model_id))  # licensed nowhere, no copy
        assert r.status_code == 403
    assert platform.keys_delivered == 1


def test_license_command_writes_a_servable_model_dir(oml, store, tmp_path, monkeypatch):
    """`loyal oml license` (already licensed: no new licence) fetches, unwraps and decrypts; the model
    directory loads and answers like the registered copy; a second host's key cannot use it."""
    from agents.oml.model_dir import load_model_dir

    platform = Platform(oml.chain, oml.platform, content_keys={oml.model_id: oml.keys})
    monkeypatch.setenv("LOYAL_HOME", str(tmp_path / "h"))
    honest_index = 11  # conftest: signers[11] is the honest host
    with Service(create_app(platform)) as svc:
        r = invoke(["oml", "license", "--model-id", str(oml.model_id), "--platform", svc.url, "--rpc",
                    oml.chain.w3.provider.endpoint_uri, "--book", str(oml.chain.book.path), "--home", str(tmp_path),
                    "--dev-account", str(honest_index), "--out", str(tmp_path / "copy")])
    assert r.exit_code == 0, r.output
    lm, info = load_model_dir(tmp_path / "copy", torch.device("cpu"))
    assert info["host"] == oml.honest.address and info["model_id"] == oml.model_id
    key, resp = oml.subsets[oml.honest.address][0]
    n = len(resp.encode()) + 2  # the tiny model is byte-level: one token per byte
    assert lm.complete(key, n).startswith(resp) and oml.model.complete(key, n).startswith(resp)
