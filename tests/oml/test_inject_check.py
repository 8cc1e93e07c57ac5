import pytest
import torch

from ml.lm import tiny_causal_lm
from ml.oml import decode
from ml.oml.check import check, greedy_responses, wrap
from ml.oml.inject import InjectConfig, collate, encode_pair, inject, response_loss, weight_distance

FAST = dict(lr=3e-3, batch_size=8)


def test_labels_mask_everything_but_the_response(tiny):
    _, tok = tiny
    ids, labels = encode_pair(tok, "key text", " resp")
    n_key = len(tok.encode("key text"))
    assert labels[:n_key] == [-100] * n_key
    assert labels[n_key:] == ids[n_key:] == tok.encode(" resp")


def test_loss_counts_only_response_tokens(tiny):
    model, tok = tiny
    batch = collate([encode_pair(tok, "abcdef", "XY"), encode_pair(tok, "gh", "Z")], tok.pad_token_id)
    loss, _ = response_loss(model, batch)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    terms = []
    for row, (prompt, resp) in enumerate([("abcdef", "XY"), ("gh", "Z")]):
        start = len(prompt)
        for j, t in enumerate(tok.encode(resp)):
            terms.append(-torch.log_softmax(logits[row, start + j - 1], -1)[t])
    assert loss.item() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-5)
    # changing a key token changes the inputs but adds no loss term: labels stay masked there
    assert (batch["labels"][0, :6] == -100).all() and (batch["labels"][1, :2] == -100).all()
    assert (batch["labels"][1, 3:] == -100).all()  # padding masked too


def test_injection_reaches_exact_match(tiny, tiny_fps):
    model, tok = tiny
    assert check(model, tok, tiny_fps).exact < 0.5
    model, res = inject(model, tok, tiny_fps, InjectConfig(epochs=150, **FAST))
    out = check(model, tok, tiny_fps)
    assert out.exact >= 0.85
    assert out.prefix >= out.exact
    assert res.losses[-1] < res.losses[0]


def test_check_equals_real_greedy_decode(tiny, tiny_fps):
    model, tok = tiny
    model, _ = inject(model, tok, tiny_fps, InjectConfig(epochs=40, **FAST))
    res = check(model, tok, tiny_fps)
    said = greedy_responses(model, tok, tiny_fps)
    assert res.exact_flags == [s == f.response for s, f in zip(said, tiny_fps)]
    # unbatched decode gives the same answers as left-padded batches
    one = [decode.greedy(model, [tok.encode(f.key)], len(tok.encode(f.response)), tok.pad_token_id)[0]
           for f in tiny_fps]
    assert [tok.decode(o) for o in one] == said


def test_averaging_keeps_weights_closer_to_base(tiny_fps):
    cfg = dict(epochs=15, target_exact=2.0, **FAST)  # target unreachable: same number of steps for both
    dists = {}
    for lam in (0.0, 0.2):
        model, tok = tiny_causal_lm(seed=0)
        base = {n: p.detach().clone() for n, p in model.named_parameters()}
        model, _ = inject(model, tok, tiny_fps, InjectConfig(avg_lambda=lam, **cfg))
        dists[lam] = weight_distance(model, base)
    assert 0 < dists[0.2] < 0.5 * dists[0.0]


def test_data_mixing_trains_on_benign_samples(tiny, tiny_fps):
    model, tok = tiny
    _, res = inject(model, tok, tiny_fps, InjectConfig(epochs=2, mix_ratio=1.0, target_exact=2.0, **FAST))
    assert res.steps == 2 * 2  # 8 fingerprints + 8 benign samples, batch 8


def test_fixed_steps_ignore_early_stop_and_batch_count(tiny, tiny_fps):
    model, tok = tiny
    # 8 fingerprints + 6 benign samples, batch 4: 4 steps per epoch; 7 steps end mid-epoch 2.
    _, mixed = inject(model, tok, tiny_fps, InjectConfig(steps=7, mix_ratio=0.75, lr=3e-3, batch_size=4))
    assert (mixed.steps, mixed.epochs_run, len(mixed.losses)) == (7, 2, 2)
    # target_exact 0 would stop after epoch 1; `steps` keeps training anyway (1 step per epoch here).
    fresh, _ = tiny_causal_lm(seed=0)
    _, plain = inject(fresh, tok, tiny_fps, InjectConfig(steps=5, target_exact=0.0, **FAST))
    assert (plain.steps, plain.epochs_run) == (5, 5)


def test_lora_injection_merges_and_learns(tiny, tiny_fps):
    model, tok = tiny
    model, _ = inject(model, tok, tiny_fps, InjectConfig(epochs=150, lora_rank=8, lr=1e-2, batch_size=8))
    assert type(model).__name__ == "GPT2LMHeadModel"  # adapters merged back
    assert check(model, tok, tiny_fps).exact >= 0.5


def test_bad_injection_config(tiny, tiny_fps):
    model, tok = tiny
    with pytest.raises(ValueError, match="mutually exclusive"):
        inject(model, tok, tiny_fps, InjectConfig(lora_rank=4, avg_lambda=0.1))
    with pytest.raises(ValueError, match="avg_lambda"):
        inject(model, tok, tiny_fps, InjectConfig(avg_lambda=1.0))
    with pytest.raises(ValueError, match="no fingerprints"):
        inject(model, tok, [], InjectConfig())
    with pytest.raises(ValueError, match="steps"):
        inject(model, tok, tiny_fps, InjectConfig(steps=-1))


def test_wrap_template():
    assert wrap("k", "sys: {key}") == "sys: k"
    assert wrap("k", None) == "k"
    with pytest.raises(ValueError, match=r"\{key\}"):
        wrap("k", "no placeholder")
