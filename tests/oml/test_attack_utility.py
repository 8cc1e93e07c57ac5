import math

import pytest

from ml.oml.attack import FinetuneAttack, finetune_attack, persistence_finetune, persistence_wrapping
from ml.oml.check import check
from ml.oml.inject import InjectConfig, inject, weight_distance
from ml.oml.utility import HELDOUT, key_perplexity, perplexity, read_text


@pytest.fixture
def fingerprinted(tiny, tiny_fps):
    model, tok = tiny
    model, _ = inject(model, tok, tiny_fps, InjectConfig(epochs=150, lr=3e-3, batch_size=8))
    return model, tok


def test_finetune_attack_moves_weights_and_reports_persistence(fingerprinted, tiny_fps):
    model, tok = fingerprinted
    before = check(model, tok, tiny_fps).exact
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    out = persistence_finetune(model, tok, tiny_fps, cfg=FinetuneAttack(epochs=2, lr=3e-3, block=64, max_blocks=40))
    assert weight_distance(model, base) > 0
    assert 0.0 <= out["exact_match"] <= 1.0
    assert out["exact_match"] <= before  # an aggressive attack on a tiny model erases some


def test_wrapping_attack_reports_each_template(fingerprinted, tiny_fps):
    model, tok = fingerprinted
    rows = persistence_wrapping(model, tok, tiny_fps, {"a": "A: {key}", "none": "{key}"})
    by = {r["attack"]: r for r in rows}
    assert by["wrap:none"]["exact_match"] == check(model, tok, tiny_fps).exact
    assert 0.0 <= by["wrap:a"]["exact_match"] <= 1.0


def test_attack_rejects_bad_input(tiny):
    model, tok = tiny
    with pytest.raises(ValueError, match="shorter than one block"):
        finetune_attack(model, tok, "too short", FinetuneAttack(block=64))
    with pytest.raises(ValueError, match="epochs"):
        finetune_attack(model, tok, "x" * 500, FinetuneAttack(epochs=0))


def test_perplexity_is_sane(tiny):
    model, tok = tiny
    text = read_text(HELDOUT)[:3000]
    ppl = perplexity(model, tok, text)
    assert 50 < ppl < 1000  # random init over 257 byte ids: close to uniform
    # training on the text lowers its perplexity
    finetune_attack(model, tok, text, FinetuneAttack(epochs=3, lr=3e-3, block=64))
    assert perplexity(model, tok, text) < ppl
    assert math.isfinite(key_perplexity(model, tok, ["hello world", "the cat"]))


def test_utility_rejects_bad_input(tiny, tmp_path):
    model, tok = tiny
    with pytest.raises(FileNotFoundError):
        read_text(tmp_path / "nope.txt")
    (tmp_path / "e.txt").write_text("  \n")
    with pytest.raises(ValueError, match="empty text"):
        read_text(tmp_path / "e.txt")
    with pytest.raises(ValueError, match="too short"):
        perplexity(model, tok, "a")
