import json

import pytest

from tests.cli_runner import invoke
from ml.oml import functional as F
from ml.oml.commitment import FingerprintTree, verify
from ml.oml.fingerprints import Fingerprint, FingerprintFileError
from ml.oml.fingerprints import save as save_exact
from ml.oml.inject import InjectConfig, inject

CFG = F.FunctionalGenConfig(n=8, seed=3, words=4, min_words=4, key_tokens=12)


@pytest.fixture(scope="module")
def ffps():
    from ml.lm import tiny_causal_lm

    model, tok = tiny_causal_lm(seed=0)
    return F.generate(model, tok, CFG)


def test_rule_descriptor_is_canonical_and_round_trips():
    r = F.Rule(F.rule_seed(1, 0), gamma=0.25, alpha=0.01, words=6, min_words=4, max_tokens=20)
    d = r.descriptor()
    assert d.startswith(F.DESCRIPTOR_PREFIX) and " " not in d
    assert F.Rule.parse(d) == r
    with pytest.raises(ValueError, match="not a functional rule"):
        F.Rule.parse("the response")
    with pytest.raises(ValueError, match="malformed"):
        F.Rule.parse(F.DESCRIPTOR_PREFIX + "{oops")
    with pytest.raises(ValueError, match="canonical"):
        F.Rule.parse(d.replace(",", ", ", 1))
    with pytest.raises(ValueError, match="can never pass"):
        F.Rule(r.seed, gamma=0.5, alpha=0.01, words=4, min_words=4).validate()
    with pytest.raises(ValueError, match="seed"):
        F.Rule("0x1234").validate()


def test_counting_and_decision():
    r = F.Rule(F.rule_seed(2, 0), gamma=0.25, alpha=0.01, words=6, min_words=4)
    green = [w for w in F.word_pool() if r.is_green(w)]
    red = [w for w in F.word_pool() if not r.is_green(w)]
    # only the first `words` words count, de-duplicated, case-insensitive, split on non-letters
    text = f" {green[0].upper()}, {green[0]} {green[1]}-{red[0]} {green[2]} {green[3]} {red[1]} {red[2]} {red[3]}"
    assert r.count(text) == (4, 1)  # g0 twice, then g1 r0 g2 g3; r1.. are past the 6th word
    assert not r.passes(*r.count(text))  # p = P[Bin(5, .25) >= 4] = 0.016
    assert r.p_value(4, 0) == pytest.approx(0.25**4)
    assert r.passes(4, 0) and r.passes(5, 1) and r.passes(6, 0)
    assert not r.passes(3, 0)  # p = 1/64 > alpha
    assert not r.passes(4, 2)  # p = 0.038
    assert not r.passes(0, 0)


def test_green_fraction_and_false_positive_rate_match_the_binomial_bound():
    """Over many partition seeds, a fixed answer passes at the exact binomial rate (<= alpha)."""
    pool = F.word_pool()
    frac = sum(F.Rule(F.rule_seed(9, 0)).is_green(w) for w in pool) / len(pool)
    assert 0.18 < frac < 0.32  # gamma = 0.25
    answer = " ".join(pool[10:16])  # six distinct words, written without any rule in mind
    trials = 3000
    passes = sum(F.Rule(F.rule_seed(11, i)).passes(*F.Rule(F.rule_seed(11, i)).count(answer)) for i in range(trials))
    exact = F.binomial_tail(5, 6, 0.25)  # 5 or 6 of 6 green: the only passing outcomes
    assert exact < 0.01
    assert abs(passes / trials - exact) < 0.004


def test_generation_is_deterministic_green_and_committed(ffps):
    from ml.lm import tiny_causal_lm

    model, tok = tiny_causal_lm(seed=0)
    again = F.generate(model, tok, CFG)
    assert again == ffps
    other = F.generate(model, tok, F.FunctionalGenConfig(**{**CFG.__dict__, "seed": 4}))
    assert [f.rule.seed for f in other] != [f.rule.seed for f in ffps]
    assert len({f.rule.seed for f in ffps}) == len({f.key for f in ffps}) == len(ffps)
    for f in ffps:
        assert f.rule.passes(*f.rule.count(f.target))
        assert f.rule.count(f.target) == (CFG.words, 0)
        assert f.rule.max_tokens == 2 * len(tok.encode(f.target))
    root = F.commitment_root(ffps)
    tree = FingerprintTree([f.pair for f in ffps])
    assert root == "0x" + tree.root.hex()
    key, desc = ffps[2].pair
    assert verify(tree.proof(key, desc), tree.root, key, desc)
    assert not verify(tree.proof(key, desc), tree.root, key, ffps[3].rule.descriptor())


def test_sampled_targets_are_the_models_own_green_words():
    from ml.lm import tiny_causal_lm

    model, tok = tiny_causal_lm(seed=0)
    cfg = F.FunctionalGenConfig(**{**CFG.__dict__, "n": 3, "target": "sampled"})
    sampled = F.generate(model, tok, cfg)
    assert F.generate(model, tok, cfg) == sampled  # deterministic from the seed
    for f in sampled:
        assert F.words(f.target)[:CFG.words] == list(dict.fromkeys(F.words(f.target)[:CFG.words]))  # distinct
        assert f.rule.count(f.target) == (CFG.words, 0) and f.rule.passes(*f.rule.count(f.target))
    # Not drawn from the word pool: the tiny model's continuations are its own letter strings.
    assert any(not set(F.words(f.target)) <= set(F.word_pool()) for f in sampled)
    with pytest.raises(ValueError, match="target mode"):
        F.generate(model, tok, F.FunctionalGenConfig(target="fluent"))


def test_file_round_trip_and_bad_files(tmp_path, ffps):
    p = tmp_path / "f.jsonl"
    assert F.save(ffps, p) == F.commitment_root(ffps)
    assert F.is_functional_file(p)
    assert F.load(p) == ffps
    exact = tmp_path / "e.jsonl"
    save_exact([Fingerprint("a key", " a response", "perinucleus")], exact)
    assert not F.is_functional_file(exact)
    with pytest.raises(FingerprintFileError, match="expected a record with family"):
        F.load(exact)
    with pytest.raises(FingerprintFileError, match="no such"):
        F.load(tmp_path / "none.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(FingerprintFileError, match="empty"):
        F.load(tmp_path / "empty.jsonl")
    lines = p.read_text().splitlines()
    bad = json.loads(lines[1])
    bad["rule"] = bad["rule"].replace('"gamma":0.25', '"gamma":0.5')  # 4 words at gamma 0.5 never pass
    (tmp_path / "bad.jsonl").write_text(lines[0] + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(FingerprintFileError, match="bad.jsonl:2: rule can never pass"):
        F.load(tmp_path / "bad.jsonl")
    (tmp_path / "dup.jsonl").write_text(lines[0] + "\n" + lines[0] + "\n")
    with pytest.raises(FingerprintFileError, match="duplicate key"):
        F.load(tmp_path / "dup.jsonl")


def test_injection_makes_the_rule_hold_and_other_rules_do_not(ffps):
    from ml.lm import tiny_causal_lm

    model, tok = tiny_causal_lm(seed=0)
    before = F.check(model, tok, ffps)
    assert before.pass_rate == 0.0 and not before.summary()["flagged"]
    model, res = inject(model, tok, F.training_pairs(ffps), InjectConfig(epochs=300, lr=3e-3, batch_size=8))
    after = F.check(model, tok, ffps)
    assert after.pass_rate >= 0.85 and after.summary()["flagged"]
    assert after.set_p_value < 1e-12
    # The same keys and the same trained answers, judged under partitions the model never saw:
    # the answers' words are coloured at random, so (almost) nothing passes.
    foreign = [F.FunctionalFingerprint(f.key, F.Rule(F.rule_seed(99, i), f.rule.gamma, f.rule.alpha, f.rule.words,
                                                     f.rule.min_words, f.rule.max_tokens), f.target)
               for i, f in enumerate(ffps)]
    other = F.check(model, tok, foreign)
    assert sum(other.passed) <= 1 and not other.summary()["flagged"]


def test_cli_functional_generate_inject_check_attack(tmp_path):
    fp = tmp_path / "f.jsonl"
    r = invoke(["fingerprint", "generate", "--family", "functional", "--model", "tiny:1", "--n", "6",
                            "--key-tokens", "10", "--words", "4", "--seed", "5", "-o", str(fp), "--json"])
    assert r.exit_code == 0, r.output
    gen = json.loads(r.stdout)
    assert gen["family"] == "functional" and gen["root"] == F.commitment_root(F.load(fp))
    out = tmp_path / "m"
    r = invoke(["fingerprint", "inject", "--model", "tiny:1", "-f", str(fp), "-o", str(out),
                            "--epochs", "300", "--lr", "3e-3", "--batch-size", "8", "--json"])
    assert r.exit_code == 0, r.output
    r = invoke(["fingerprint", "check", "--model", str(out), "-f", str(fp), "--show", "2", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["pass_rate"] >= 0.8 and res["flagged"] and len(res["examples"]) == 2
    r = invoke(["fingerprint", "attack", "--model", str(out), "-f", str(fp), "--kind", "wrap",
                            "--template", "Q: {key}", "--json"])
    assert r.exit_code == 0, r.output
    assert "pass_rate" in json.loads(r.stdout)["results"][0]
    r = invoke(["fingerprint", "generate", "--family", "functional", "--model", "tiny", "--words", "3",
                            "--min-words", "3", "--gamma", "0.5", "-o", str(tmp_path / "x.jsonl")])
    assert r.exit_code == 1 and _one_line(r) and "can never pass" in r.output and not (tmp_path / "x.jsonl").exists()
    r = invoke(["fingerprint", "generate", "--family", "bogus", "--model", "tiny",
                            "-o", str(tmp_path / "y.jsonl")])
    assert r.exit_code == 1 and _one_line(r) and "unknown fingerprint family" in r.output


def _one_line(r) -> bool:
    """The CLI contract: exactly one line on stderr, no traceback, nothing on stdout."""
    return r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and r.stdout == ""
