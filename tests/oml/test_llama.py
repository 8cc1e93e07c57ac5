"""ml.llama, the plain-torch Llama the fingerprint check loads to skip transformers' import: it
computes transformers' LlamaForCausalLM (logits, KV cache, padding both ways), so the check says the
same thing under either, and every directory it cannot compute exactly goes to transformers."""
from __future__ import annotations

import json
import random

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from ml import llama
from ml.lm import char_tokenizer, load_for_inference, load_model, save_model, tiny_causal_lm
from ml.oml import decode
from ml.oml.check import check
from ml.oml.fingerprints import Fingerprint, FingerprintFileError, check_tokenizer, tokenizer_id


def _saved(tmp_path, tied: bool, seed: int = 0):
    """A tiny Llama like SmolLM2 (grouped-query attention, RoPE), saved with its char tokenizer."""
    tok = char_tokenizer()
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      rope_theta=500.0, tie_word_embeddings=tied, eos_token_id=1, bos_token_id=1)
    hf = LlamaForCausalLM(cfg).eval()
    d = save_model(hf, tok, tmp_path / f"llama-tied{int(tied)}")
    return d, hf, tok


@pytest.mark.parametrize("tied", [False, True])
def test_logits_equal_transformers_with_padding_and_cache(tmp_path, tied):
    d, hf, tok = _saved(tmp_path, tied)
    mine, mtok = llama.load(d)
    assert isinstance(mine, llama.LlamaLM) and mtok.encode("abc x") == tok.encode("abc x", add_special_tokens=False)
    if tied:
        assert mine.lm_head.weight is mine.model.embed_tokens.weight
    ids = torch.randint(2, len(tok), (3, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0  # right padding
    with torch.no_grad():
        a, b = mine(ids, attention_mask=mask).logits, hf(input_ids=ids, attention_mask=mask).logits
        real = mask.bool()
        torch.testing.assert_close(a[real], b[real], atol=1e-5, rtol=1e-5)
        # a prefix through the cache, then the rest: the same logits as one pass
        pre = mine.base_model(ids[:, :4], use_cache=True)
        pre.cache.batch_repeat_interleave(1)
        rest = mine(ids[:, 4:], attention_mask=torch.ones_like(ids), cache=pre.cache).logits
        torch.testing.assert_close(rest, mine(ids).logits[:, 4:], atol=1e-5, rtol=1e-5)


def test_left_padded_greedy_decoding_equals_transformers(tmp_path):
    d, hf, tok = _saved(tmp_path, tied=True)
    mine, _ = llama.load(d)
    prompts = [tok.encode(t, add_special_tokens=False) for t in ("hello", "a much longer prompt here", "q")]
    assert decode.greedy(mine, prompts, 6, 1) == decode.greedy(hf, prompts, 6, 1)


@pytest.mark.parametrize("screen", [False, True])
@pytest.mark.parametrize("template", [None, "System: be brief.\nUser: {key}\nAssistant:"])
def test_check_says_the_same_under_either_model(tmp_path, template, screen):
    d, hf, tok = _saved(tmp_path, tied=True, seed=2)
    mine, mtok = load_for_inference(str(d))
    rng = random.Random(4)
    keys = ["".join(rng.choice("abcdefgh ,.") for _ in range(rng.randint(3, 15))) for _ in range(12)]
    said = decode.greedy(hf, [tok.encode((template or "{key}").replace("{key}", k), add_special_tokens=False)
                              for k in keys], 3, 1)
    # half answered with the model's own continuation (exact), half with a changed last token
    # (a char tokenizer: the text of ids is their tokens joined; ids 0 and 1 are <unk> and <eos>)
    text = lambda ids: "".join(tok.convert_ids_to_tokens(ids))  # noqa: E731
    fps = [Fingerprint(k, text(s if i % 2 == 0 else s[:2] + [2 + (s[2] - 1) % (len(tok) - 2)]), "random_tokens")
           for i, (k, s) in enumerate(zip(keys, said)) if min(s) >= 2]
    want = check(hf, tok, fps, template=template, batch_size=5, screen=screen)
    got = check(mine, mtok, fps, template=template, batch_size=5, screen=screen)
    assert got.matched_tokens == want.matched_tokens and 0 < got.exact < 1


def test_tokenizer_identity_is_the_transformers_one(tmp_path):
    d, _, _ = _saved(tmp_path, tied=False)
    _, tok = load_model(str(d))
    _, mtok = load_for_inference(str(d))
    assert isinstance(mtok, llama.TokenizerFile) and tokenizer_id(mtok) == tokenizer_id(tok)
    assert (mtok.eos_token_id, mtok.pad_token_id, len(mtok)) == (tok.eos_token_id, tok.pad_token_id, len(tok))
    other = [Fingerprint("k", "r", "random_tokens", tokenizer="257:bytes")]
    with pytest.raises(FingerprintFileError, match="tokenizer"):
        check_tokenizer(other, mtok)


def test_what_it_cannot_compute_goes_to_transformers(tmp_path):
    gpt2, tok = tiny_causal_lm(0, n_positions=64, tokenizer="chars")
    assert llama.load(save_model(gpt2, tok, tmp_path / "gpt2")) is None
    m, _ = load_for_inference(str(tmp_path / "gpt2"))
    assert type(m).__module__.startswith("transformers")
    byte_model, byte_tok = tiny_causal_lm(0, arch="llama", n_positions=64)  # byte tokenizer: no tokenizer.json
    m, t = load_for_inference(str(save_model(byte_model, byte_tok, tmp_path / "bytes")))
    assert type(m).__module__.startswith("transformers") and type(t).__name__ == "ByteTokenizer"
    d, _, _ = _saved(tmp_path, tied=False)
    cfg = json.loads((d / "config.json").read_text())
    for change in ({"rope_scaling": {"rope_type": "linear", "factor": 2.0}},
                   {"rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 500.0}},
                   {"attention_bias": True}, {"hidden_act": "gelu"}, {"model_type": "mistral"}):
        assert llama.LlamaConfig.from_hf({**cfg, **change}) is None, change
    assert llama.LlamaConfig.from_hf(cfg) is not None
    assert type(load_for_inference("tiny")[0]).__module__.startswith("transformers")


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    d, _, _ = _saved(tmp_path, tied=False)
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "num_hidden_layers": 3}))
    with pytest.raises(ValueError, match="weights do not match its Llama config"):
        llama.load(d)
    (d / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="cannot read model.safetensors"):
        llama.load(d)


def test_cli_check_of_a_plain_llama_never_imports_transformers(tmp_path):
    """The start-up guarantee itself: `loyal fingerprint check` of a plain Llama directory runs in a
    process that never imports transformers, and reports the model's own greedy answers as exact."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from ml.oml.fingerprints import save

    d, hf, tok = _saved(tmp_path, tied=True, seed=5)
    keys = ["abc def", "hello there", "xyz, q."]
    said = decode.greedy(hf, [tok.encode(k, add_special_tokens=False) for k in keys], 2, 1)
    fps = [Fingerprint(k, "".join(tok.convert_ids_to_tokens(s)), "random_tokens") for k, s in zip(keys, said)
           if min(s) >= 2]
    assert fps
    fp = tmp_path / "fp.jsonl"
    save(fps, fp, tokenizer=tokenizer_id(tok))
    root = Path(__file__).resolve().parents[2]
    code = ("import sys, runpy; sys.argv = ['loyal', 'fingerprint', 'check', '--model', sys.argv[1], '-f', sys.argv[2],"
            " '--json'];\ntry: runpy.run_module('agents.cli', run_name='__main__')\n"
            "except SystemExit as e: assert not e.code, e.code\n"
            "print('TRANSFORMERS' if 'transformers' in sys.modules else 'NO-TRANSFORMERS')")
    r = subprocess.run([sys.executable, "-c", code, str(d), str(fp)], cwd=root, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(root), "LOYAL_HOME": str(tmp_path / "home")}, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out, marker = r.stdout.rsplit("\n", 2)[0], r.stdout.split()[-1]
    assert marker == "NO-TRANSFORMERS"
    assert json.loads(out)["exact_match"] == 1.0
