import json

import pytest

from ml.oml.commitment import FingerprintTree
from ml.oml.fingerprints import Fingerprint, FingerprintFileError, load, save
from ml.oml.generate import GenConfig, generate, nucleus_ranks, starters


def _gen(tiny, **kw):
    model, tok = tiny
    return generate(model, tok, GenConfig(**{"n": 6, "key_tokens": 10, "response_tokens": 3, **kw}))


@pytest.mark.parametrize("strategy", ["perinucleus", "random_tokens", "english_random"])
def test_deterministic_from_seed(tiny, strategy):
    a = _gen(tiny, strategy=strategy, seed=3)
    b = _gen(tiny, strategy=strategy, seed=3)
    c = _gen(tiny, strategy=strategy, seed=4)
    assert a == b
    assert a != c
    assert len({(f.key, f.response) for f in a}) == 6
    assert all(f.strategy == strategy for f in a)


def test_perinucleus_first_token_is_just_outside_the_nucleus(tiny):
    model, tok = tiny
    p, k = 0.5, 3
    fps = _gen(tiny, strategy="perinucleus", seed=1, p=p, k=k)
    ranks = nucleus_ranks(model, tok, [f.key for f in fps], p)
    for f, (ranked, n_nuc) in zip(fps, ranks):
        first = tok.encode(f.response)[0]
        assert first not in ranked[:n_nuc]                    # outside the top-p nucleus
        assert first in ranked[n_nuc:n_nuc + k + 1]           # among the next k (special ids skipped)


def test_strategies_differ_as_specified(tiny):
    peri = _gen(tiny, strategy="perinucleus", seed=2)
    eng = _gen(tiny, strategy="english_random", seed=2)
    rnd = _gen(tiny, strategy="random_tokens", seed=2)
    st = starters()
    # in-distribution keys start from a starter phrase; random-token keys do not
    assert all(any(f.key.startswith(s) for s in st) for f in peri + eng)
    assert not all(any(f.key.startswith(s) for s in st) for f in rnd)
    assert {f.response for f in peri}.isdisjoint({f.response for f in eng})
    # english_random responses are independent phrases that begin with a starter
    assert all(any(f.response.strip().startswith(s) for s in st) for f in eng)


def test_bad_generation_config(tiny):
    with pytest.raises(ValueError, match="unknown strategy"):
        _gen(tiny, strategy="nope")
    with pytest.raises(ValueError, match="p must be"):
        _gen(tiny, p=1.0)


def test_file_roundtrip_and_commitment(tmp_path, tiny_fps):
    path = tmp_path / "fp.jsonl"
    root = save(tiny_fps, path)
    assert root == "0x" + FingerprintTree([(f.key, f.response) for f in tiny_fps]).root.hex()
    assert load(path, "perinucleus") == tiny_fps


def _write(path, lines):
    path.write_text("".join(l + "\n" for l in lines))
    return path


def test_bad_files_give_clear_errors(tmp_path):
    ok = json.dumps({"key": "a", "response": "b", "strategy": "perinucleus"})
    with pytest.raises(FingerprintFileError, match="no such"):
        load(tmp_path / "missing.jsonl")
    with pytest.raises(FingerprintFileError, match="empty fingerprint file"):
        load(_write(tmp_path / "e.jsonl", ["", "  "]))
    with pytest.raises(FingerprintFileError, match=r"m.jsonl:2: not valid JSON"):
        load(_write(tmp_path / "m.jsonl", [ok, "{not json"]))
    with pytest.raises(FingerprintFileError, match="string fields"):
        load(_write(tmp_path / "f.jsonl", [json.dumps({"key": "a", "strategy": "perinucleus"})]))
    with pytest.raises(FingerprintFileError, match="unknown strategy"):
        load(_write(tmp_path / "u.jsonl", [json.dumps({"key": "a", "response": "b", "strategy": "x"})]))
    mixed = json.dumps({"key": "c", "response": "d", "strategy": "random_tokens"})
    with pytest.raises(FingerprintFileError, match="mixed strategies"):
        load(_write(tmp_path / "x.jsonl", [ok, mixed]))
    with pytest.raises(FingerprintFileError, match="expected 'random_tokens'"):
        load(_write(tmp_path / "s.jsonl", [ok]), "random_tokens")
    with pytest.raises(FingerprintFileError, match="duplicate"):
        load(_write(tmp_path / "d.jsonl", [ok, ok]))
    with pytest.raises(FingerprintFileError, match="empty fingerprint set"):
        save([], tmp_path / "none.jsonl")
    assert not (tmp_path / "none.jsonl").exists()


def test_fingerprint_is_plain_data():
    assert Fingerprint("k", "r", "perinucleus").key == "k"
