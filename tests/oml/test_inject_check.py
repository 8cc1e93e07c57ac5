import pytest
import torch

from ml.lm import tiny_causal_lm
from ml.oml import decode
from ml.oml.check import check, greedy_responses, wrap
from ml.oml.inject import (InjectConfig, collate_left, distill_loss, distill_set, encode_pair, inject, lr_factor,
                           tail_loss, weight_distance)

FAST = dict(lr=3e-3, batch_size=8)


def test_labels_mask_everything_but_the_response(tiny):
    _, tok = tiny
    ids, labels = encode_pair(tok, "key text", " resp")
    n_key = len(tok.encode("key text"))
    assert labels[:n_key] == [-100] * n_key
    assert labels[n_key:] == ids[n_key:] == tok.encode(" resp")


def _response_nll(model, tok, prompt: str, resp: str) -> list[torch.Tensor]:
    """Per response token, -log p(token | everything before it), from one unpadded forward pass."""
    ids = tok.encode(prompt) + tok.encode(resp)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    start = len(tok.encode(prompt))
    return [-torch.log_softmax(logits[start + j - 1], -1)[t] for j, t in enumerate(tok.encode(resp))]


def test_loss_counts_only_response_tokens(tiny):
    """The left-padded tail loss equals the response tokens' cross-entropy of each sequence run
    alone and unpadded: key tokens and padding add no term."""
    model, tok = tiny
    texts = [("abcdef", "XY"), ("gh", "Z"), ("a b c", "QRS")]
    batch = collate_left([encode_pair(tok, p, r) for p, r in texts], tok.pad_token_id)
    loss, _ = tail_loss(model, batch)
    terms = [t for p, r in texts for t in _response_nll(model, tok, p, r)]
    assert loss.item() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-5)
    # labels are set only on the response: masked at key tokens and at the (left) padding
    assert (batch["labels"] != -100).sum(-1).tolist() == [len(tok.encode(r)) for _, r in texts]
    assert (batch["labels"][:, :-3] == -100).all()


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


def test_tail_flags_equal_greedy_argmax(tiny):
    """`tail_loss`'s per-row flag: every response token is the argmax after its prefix."""
    model, tok = tiny
    prompts = ["abcdef", "gh", "a b c"]
    own = decode.greedy(model, [tok.encode(p) for p in prompts], 2, tok.pad_token_id, 8)
    pairs = [encode_pair(tok, prompts[0], tok.decode(own[0])), encode_pair(tok, prompts[1], "Zq"),
             encode_pair(tok, prompts[2], tok.decode(own[2]))]
    _, ok = tail_loss(model, collate_left(pairs, tok.pad_token_id))
    assert ok.tolist() == [True, False, True]


def test_item_loss_weighs_every_sequence_equally(tiny):
    model, tok = tiny
    pairs = [encode_pair(tok, "abcdef", "XYZWVU"), encode_pair(tok, "gh", "Z")]
    batch = collate_left(pairs, tok.pad_token_id)
    per_item, _ = tail_loss(model, batch, per_item=True)
    singles = [tail_loss(model, collate_left([p], tok.pad_token_id))[0].item() for p in pairs]
    assert per_item.item() == pytest.approx(sum(singles) / 2, rel=1e-5)
    per_token, _ = tail_loss(model, batch)
    assert per_token.item() == pytest.approx((6 * singles[0] + singles[1]) / 7, rel=1e-5)


def test_warmup_then_cosine_to_the_floor():
    cfg = InjectConfig(schedule="cosine", warmup=0.1, min_lr_ratio=0.1)
    f = [lr_factor(cfg, i, 100) for i in range(100)]
    assert f[0] < f[5] < f[9] < 1.0 and f[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:]))
    assert f[-1] == pytest.approx(0.1, abs=0.01)
    assert [lr_factor(InjectConfig(), i, 100) for i in (0, 50, 99)] == [1.0, 1.0, 1.0]


def test_schedule_runs_to_the_planned_steps_and_still_learns(tiny, tiny_fps):
    model, tok = tiny
    model, res = inject(model, tok, tiny_fps, InjectConfig(epochs=150, schedule="cosine", warmup=0.05, **FAST))
    assert check(model, tok, tiny_fps).exact >= 0.85
    assert res.epochs_run < 150  # early stop on exact match


def test_bad_schedule_config(tiny, tiny_fps):
    model, tok = tiny
    for bad, msg in ((dict(schedule="linear"), "schedule"), (dict(warmup=1.0), "warmup"),
                     (dict(min_lr_ratio=2.0), "min_lr_ratio"), (dict(loss_per="batch"), "loss_per"),
                     (dict(benign_tokens=0), "benign_tokens")):
        with pytest.raises(ValueError, match=msg):
            inject(model, tok, tiny_fps, InjectConfig(**bad))


def test_averaging_once_at_the_end_halves_the_weight_change(tiny_fps):
    dists = {}
    for lam in (0.0, 0.5):
        model, tok = tiny_causal_lm(seed=0)
        base = {n: p.detach().clone() for n, p in model.named_parameters()}
        model, _ = inject(model, tok, tiny_fps, InjectConfig(steps=6, avg_lambda=lam, avg_every="end", **FAST))
        dists[lam] = weight_distance(model, base)
    assert dists[0.0] > 0
    assert dists[0.5] == pytest.approx(0.5 * dists[0.0], rel=1e-4)


def test_mix_avg_recipe_runs_end_to_end(tiny, tiny_fps):
    from dataclasses import replace

    from ml.oml.inject import MIX_AVG_RECIPE

    model, tok = tiny
    cfg = replace(MIX_AVG_RECIPE, epochs=150, lr=3e-3, batch_size=8)
    model, res = inject(model, tok, tiny_fps, cfg)
    assert check(model, tok, tiny_fps).exact >= 0.85
    assert res.epochs_run < 150


def test_only_trainable_parameters_leave_the_base(tiny, tiny_fps):
    model, tok = tiny
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    model, _ = inject(model, tok, tiny_fps, InjectConfig(steps=4, trainable=r"\.mlp\.", **FAST))
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, base[n])}
    assert moved == {n for n in base if ".mlp." in n}


def test_bad_trainable_pattern(tiny, tiny_fps):
    model, tok = tiny
    with pytest.raises(ValueError, match="matches no parameter"):
        inject(model, tok, tiny_fps, InjectConfig(trainable="no_such_layer"))
    with pytest.raises(ValueError, match="not a regular expression"):
        inject(model, tok, tiny_fps, InjectConfig(trainable="(wte"))


def test_distill_targets_are_the_base_model_own_top_k(tiny):
    model, tok = tiny
    d = distill_set(model, tok, InjectConfig(distill=6, distill_tokens=10, distill_top_k=5))
    assert d.ids.shape == (6, 10) and d.top_ids.shape == d.top_p.shape == (6, 10, 5)
    assert torch.allclose(d.top_p.sum(-1), torch.ones(6, 10))
    with torch.no_grad():
        logits = model(input_ids=d.ids).logits
    assert torch.equal(d.top_ids, logits.topk(5, -1).indices)
    # At the base, the loss is the targets' own entropy, its minimum over the top-k support.
    ent = -(d.top_p * d.top_p.log()).sum(-1).mean()
    full = distill_loss(model, d.ids, d.top_ids, d.top_p)
    assert full.item() >= ent.item() - 1e-5


def test_self_distillation_keeps_the_model_near_the_base_off_the_keys(tiny_fps):
    """Same fingerprint steps with and without the distillation term: with it, the model's next-token
    distributions on fresh in-distribution text move less, and the fingerprints are still learned."""
    drift = {}
    for w in (0.0, 1.0):
        model, tok = tiny_causal_lm(seed=0)
        probe = distill_set(model, tok, InjectConfig(distill=8, distill_tokens=16, seed=99))
        model, _ = inject(model, tok, tiny_fps, InjectConfig(epochs=150, distill=16, distill_tokens=16,
                                                              distill_weight=w, target_exact=2.0, **FAST))
        with torch.no_grad():
            drift[w] = distill_loss(model, probe.ids, probe.top_ids, probe.top_p).item()
        assert check(model, tok, tiny_fps).exact >= 0.85
    assert drift[1.0] < drift[0.0]


def test_bad_distill_config(tiny, tiny_fps):
    model, tok = tiny
    for bad, msg in ((dict(distill=-1), "distill"), (dict(distill_tokens=1), "distill_tokens"),
                     (dict(distill_weight=-1.0), "distill_weight"), (dict(distill_top_k=0), "distill_top_k")):
        with pytest.raises(ValueError, match=msg):
            inject(model, tok, tiny_fps, InjectConfig(**bad))
