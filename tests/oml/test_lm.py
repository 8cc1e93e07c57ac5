"""ml.lm.tiny_causal_lm is the one tiny-model maker: its knobs give the models the ledger and the OML
protocol use, reproducibly from a seed, and it refuses unknown kinds."""
from __future__ import annotations

import pytest
import torch

from ml.lm import ByteTokenizer, load_model, save_model, tiny_causal_lm


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_same_seed_same_weights_other_seed_other_weights():
    assert _same_weights(tiny_causal_lm(1)[0], tiny_causal_lm(1)[0])
    assert not _same_weights(tiny_causal_lm(1)[0], tiny_causal_lm(2)[0])


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_char_models_save_and_reload_with_their_tokenizer(tmp_path, arch):
    model, tok = tiny_causal_lm(0, n_embd=32, n_head=2, n_positions=128, arch=arch, tokenizer="chars", n_kv_head=1)
    assert model.config.model_type == arch and model.config.vocab_size == len(tok) == 98
    assert tok.decode(tok("hi there\n")["input_ids"]).replace(" ", "") == "hithere\n"
    back, tok2 = load_model(str(save_model(model, tok, tmp_path / arch)))
    assert _same_weights(model, back) and tok2("hi")["input_ids"] == tok("hi")["input_ids"]


def test_byte_model_is_the_oml_protocol_model():
    from ml.oml.protocol_model import new_model

    model, tok = tiny_causal_lm(3, n_positions=128)
    assert isinstance(tok, ByteTokenizer) and model.config.pad_token_id == model.config.eos_token_id == 256
    assert _same_weights(new_model(3), model)


def test_unknown_kinds_are_refused():
    with pytest.raises(ValueError, match="architecture 'bert'"):
        tiny_causal_lm(arch="bert")
    with pytest.raises(ValueError, match="tokenizer 'words'"):
        tiny_causal_lm(tokenizer="words")
