"""The batched teacher-forced check (length-sorted batches, shared prefix run once through the KV
cache, LM head only at response positions) says exactly what greedy decoding says, key by key."""
import random

import pytest

from ml.lm import tiny_causal_lm
from ml.oml import decode
from ml.oml.check import check, shared_prefix, teacher_forced_matches, wrap
from ml.oml.fingerprints import Fingerprint


def _greedy_ids(model, tok, prompt: str, n: int) -> list[int]:
    return decode.greedy(model, [tok.encode(prompt, add_special_tokens=False)], n, tok.pad_token_id)[0]


def _fingerprints(model, tok, template):
    """Keys of varied length; half answered with the model's own greedy continuation (exact), the
    others with that continuation changed at token 0, 1 or 2 (mismatching at a known place)."""
    rng = random.Random(3)
    alphabet = "abcdefghijklmnopqrstuvwxyz ,."
    plain = [i for i in range(len(tok)) if tok.decode([i]) and tok.encode(tok.decode([i])) == [i]]
    fps, want_exact, want_matched = [], [], []
    for n in range(14):
        key = "".join(rng.choice(alphabet) for _ in range(rng.randint(3, 17)))
        ids = _greedy_ids(model, tok, wrap(key, template), 4)
        if tok.encode(tok.decode(ids)) != ids:  # a continuation that does not survive decode -> encode
            continue
        at = None if n % 2 == 0 else n % 3
        if at is not None:
            ids = ids[:at] + [next(t for t in plain if t != ids[at])] + ids[at + 1:]
            if tok.encode(tok.decode(ids)) != ids:
                continue
        fps.append(Fingerprint(key, tok.decode(ids), "random_tokens"))
        want_exact.append(at is None)
        want_matched.append(4 if at is None else at)
    assert any(want_exact) and not all(want_exact)
    return fps, want_exact, want_matched


@pytest.mark.parametrize("screen", [False, True])
@pytest.mark.parametrize("template", [None, "System: answer briefly.\nUser: {key}\nAssistant:"])
def test_check_flags_equal_greedy_decoding(template, screen):
    model, tok = tiny_causal_lm(seed=1)
    fps, want_exact, want_matched = _fingerprints(model, tok, template)
    for bs in (1, 3, 64):  # reordering by length across several batches, and one batch
        res = check(model, tok, fps, template=template, batch_size=bs, screen=screen)
        assert res.exact_flags == want_exact
        assert res.matched_tokens == want_matched
    # and against the real token-by-token decode of every key
    said = [_greedy_ids(model, tok, wrap(f.key, template), 4) for f in fps]
    assert res.exact_flags == [s == tok.encode(f.response) for s, f in zip(said, fps)]


@pytest.mark.parametrize("screen", [False, True])
@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("prefix", [[], list(b"Shared system prompt: ")])
def test_matched_tokens_equal_greedy_tokens(arch, prefix, screen):
    """Token level, any continuation (also ones that are not valid text): the matching prefix the
    batched pass reports is the one greedy decoding produces, for exact and mismatching responses."""
    model, tok = tiny_causal_lm(seed=2, arch=arch)
    rng = random.Random(5)
    pairs, want = [], []
    for n in range(12):
        prompt = prefix + [rng.randrange(256) for _ in range(rng.randint(2, 15))]
        ids = decode.greedy(model, [prompt], 5, tok.pad_token_id)[0]
        at = None if n % 2 == 0 else n % 5
        if at is not None:
            ids = ids[:at] + [(ids[at] + 1) % 256] + ids[at + 1:]
        pairs.append((prompt, ids))
        want.append(5 if at is None else at)
    for bs in (2, 5, 32):
        assert teacher_forced_matches(model, pairs, tok.pad_token_id, batch_size=bs, screen=screen) == want


def test_shared_prefix_leaves_each_prompt_a_token():
    assert shared_prefix([[1, 2, 3, 4], [1, 2, 3, 5, 6]]) == 3
    assert shared_prefix([[1, 2], [1, 2, 3]]) == 1  # the shorter prompt keeps its last token
    assert shared_prefix([[1, 2], [3, 2]]) == 0
    assert shared_prefix([[1, 2, 3]]) == 0


def test_template_prefix_is_computed_once(monkeypatch):
    """With a template, the decoder body sees the prefix once, then only each key's own tokens."""
    model, tok = tiny_causal_lm(seed=1, arch="llama", tokenizer="chars")
    template = "A long shared system prompt: {key}"
    pairs = [(tok.encode(wrap(k, template)), tok.encode(" xy")) for k in ("abc", "defgh", "ij")]
    seen = []
    body = model.base_model
    orig = body.forward

    def spy(*a, **kw):
        seen.append(tuple(kw["input_ids"].shape))
        return orig(*a, **kw)
    monkeypatch.setattr(body, "forward", spy)
    teacher_forced_matches(model, pairs, tok.pad_token_id, batch_size=8, screen=False)
    n_pre = len("A long shared system prompt: ")
    assert seen == [(1, n_pre), (3, len("defgh") + len(" xy") - 1)]  # the last response token is not fed


def test_bad_batch_size():
    model, tok = tiny_causal_lm(seed=1)
    with pytest.raises(ValueError, match="batch_size"):
        check(model, tok, [Fingerprint("k", "r", "random_tokens")], batch_size=0)


def test_bf16_screen_alone_would_differ_and_the_float32_recheck_restores_greedy(monkeypatch):
    """A random tiny model's logits are nearly tied, so bf16 alone flips argmaxes; every close call is
    run again in float32, and the answer is the float32 model's greedy one."""
    from ml.oml import check as C

    model, tok = tiny_causal_lm(seed=2, arch="llama")
    rng = random.Random(9)
    pairs, want = [], []
    for n in range(60):
        prompt = [rng.randrange(256) for _ in range(rng.randint(2, 15))]
        ids = decode.greedy(model, [prompt], 5, tok.pad_token_id)[0]
        pairs.append((prompt, ids))
        want.append(5)
    assert teacher_forced_matches(model, pairs, tok.pad_token_id, screen=False) == want
    assert teacher_forced_matches(model, pairs, tok.pad_token_id, screen=True) == want
    monkeypatch.setattr(C, "SCREEN_MARGIN", 0.0)  # keep every bf16 answer
    assert teacher_forced_matches(model, pairs, tok.pad_token_id, screen=True) != want

