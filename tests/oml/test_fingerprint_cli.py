import json


from tests.cli_runner import invoke


def _run(*args):
    return invoke(["fingerprint", *args])


def test_generate_inject_check_attack_utility_report(tmp_path):
    fp = tmp_path / "fp.jsonl"
    r = _run("generate", "--model", "tiny:1", "--strategy", "perinucleus", "--n", "6", "--key-tokens", "10",
             "--response-tokens", "2", "--seed", "5", "--out", str(fp), "--json")
    assert r.exit_code == 0, r.output
    gen = json.loads(r.stdout)
    assert gen["n"] == 6 and gen["root"].startswith("0x") and len(gen["root"]) == 66
    assert len(fp.read_text().splitlines()) == 6

    out = tmp_path / "model"
    r = _run("inject", "--model", "tiny:1", "-f", str(fp), "-o", str(out), "--epochs", "150", "--lr", "3e-3",
             "--batch-size", "8", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["exact_match"] >= 0.8

    r = _run("check", "--model", str(out), "-f", str(fp), "--show", "2", "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["exact_match"] >= 0.8 and len(res["examples"]) == 2

    r = _run("attack", "--model", str(out), "-f", str(fp), "--kind", "wrap", "--template", "Q: {key}", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["results"][0]["attack"] == "wrap:custom"

    r = _run("attack", "--model", str(out), "-f", str(fp), "--epochs", "1", "--json")
    assert r.exit_code == 0, r.output
    att = json.loads(r.stdout)
    assert att["before"]["exact_match"] >= 0.8 and 0 <= att["persistence"] <= 1

    r = _run("utility", "--model", str(out), "-f", str(fp), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["perplexity"] > 1

    results = tmp_path / "res.json"
    results.write_text(json.dumps({
        "strategies": ["perinucleus", "random_tokens"], "base_perplexity": 20.0,
        "runs": [{"strategy": s, "n": n, "perplexity": 20 + n / 8, "persistence": 0.5,
                  "check_after_inject": {"exact_match": 1.0}} for s in ("perinucleus", "random_tokens") for n in (8, 16)]}))
    more = tmp_path / "res32.json"
    more.write_text(json.dumps({"strategies": ["perinucleus"], "base_perplexity": 20.0, "runs": [
        {"strategy": "perinucleus", "n": 32, "perplexity": 25, "persistence": 0.25,
         "check_after_inject": {"exact_match": 0.9}}]}))
    r = _run("report", "--results", str(results), "--results", str(more), "--out-dir", str(tmp_path / "img"), "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["table"]
    assert [(x["strategy"], x["n"]) for x in rows] == [
        ("perinucleus", 8), ("perinucleus", 16), ("perinucleus", 32), ("random_tokens", 8), ("random_tokens", 16)]
    for p in json.loads(r.stdout)["plots"]:
        assert open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_cli_bad_input_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    r = _run("check", "--model", "tiny", "-f", str(empty))
    assert r.exit_code == 1 and _one_line(r) and "empty fingerprint file" in r.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"key": "a", "response": "b", "strategy": "perinucleus"}\n{oops\n')
    r = _run("check", "--model", "tiny", "-f", str(bad))
    assert r.exit_code == 1 and _one_line(r) and "bad.jsonl:2: not valid JSON" in r.output
    r = _run("generate", "--model", "tiny", "--strategy", "bogus", "--out", str(tmp_path / "x.jsonl"))
    assert r.exit_code == 1 and _one_line(r) and "unknown strategy" in r.output and not (tmp_path / "x.jsonl").exists()
    r = _run("inject", "--model", "tiny", "-f", str(bad), "-o", str(tmp_path / "m"), "--lora-rank", "4",
             "--avg-lambda", "0.1")
    assert r.exit_code == 1 and _one_line(r) and "mutually exclusive" in r.output and not (tmp_path / "m").exists()
    r = _run("check", "--model", str(tmp_path), "-f", str(bad))
    assert r.exit_code == 1 and _one_line(r)
    r = _run("report", "--results", str(tmp_path / "none.json"))
    assert r.exit_code == 1 and _one_line(r) and "no results file" in r.output
    # a plain Llama directory (loaded without transformers by check) whose weights file is broken
    from ml.lm import save_model, tiny_causal_lm

    llama_dir = save_model(*tiny_causal_lm(0, arch="llama", tokenizer="chars", n_positions=64), tmp_path / "llama")
    good = tmp_path / "good.jsonl"
    good.write_text('{"key": "ab", "response": "c", "strategy": "perinucleus"}\n')
    (llama_dir / "model.safetensors").write_bytes(b"truncated")
    r = _run("check", "--model", str(llama_dir), "-f", str(good))
    assert r.exit_code == 1 and _one_line(r) and "cannot read model.safetensors" in r.output


def test_merge_keeps_runs_of_different_attacks_and_injections_apart(tmp_path):
    from ml.oml.figure4 import merge, plot

    def res(attack, inject, n, ppl, pers):
        return {"strategies": ["perinucleus"], "base_perplexity": 20.0, "attack": attack, "inject": inject,
                "runs": [{"strategy": "perinucleus", "n": n, "perplexity": ppl, "persistence": pers}]}
    mild = {"epochs": 1, "lr": 1e-4, "max_blocks": 16}
    strong = {"epochs": 3, "lr": 3e-4, "max_blocks": 0}
    plain, mixed = {"mix_ratio": 0.0, "avg_lambda": 0.0}, {"mix_ratio": 0.25, "avg_lambda": 0.01}
    m = merge([res(mild, plain, 16, 30.0, 1.0), res(strong, plain, 16, 30.0, 0.5), res(strong, mixed, 16, 25.0, 0.4),
               res(strong, plain, 16, 31.0, 0.6)])
    got = [(r["inject_variant"], r["attack_variant"], r["persistence"]) for r in m["runs"]]
    assert got == [("", "1 ep, 16 blocks, lr 0.0001", 1.0), ("", "3 ep, all text, lr 0.0003", 0.6),
                   ("mix 0.25 + avg 0.01", "3 ep, all text, lr 0.0003", 0.4)]
    assert all(p.stat().st_size > 0 for p in plot(m, tmp_path))


def test_seeds_stay_apart_and_summary_averages_them(tmp_path):
    from ml.oml.figure4 import merge, plot, summarize

    strong = {"epochs": 3, "lr": 3e-4, "max_blocks": 0}

    def res(seed, ppl, pers, steps=0):
        return {"strategies": ["perinucleus"], "base_perplexity": 20.0, "attack": strong,
                "inject": {"mix_ratio": 0.0, "avg_lambda": 0.0, "steps": steps}, "gen": {"seed": seed},
                "runs": [{"strategy": "perinucleus", "n": 16, "perplexity": ppl, "persistence": pers}]}
    m = merge([res(0, 30.0, 0.5), res(1, 34.0, 0.75), res(2, 32.0, 1.0), res(1, 40.0, 0.0, steps=30)])
    assert sorted((r["inject_variant"], r["seed"]) for r in m["runs"]) == [("", 0), ("", 1), ("", 2), ("30 steps", 1)]
    rows = {r["inject_variant"]: r for r in summarize(m)}
    assert rows[""]["seeds"] == [0, 1, 2]
    assert rows[""]["perplexity"] == 32.0 and rows[""]["perplexity_range"] == [30.0, 34.0]
    assert rows[""]["persistence"] == 0.75 and rows[""]["persistence_range"] == [0.5, 1.0]
    assert rows["30 steps"]["seeds"] == [1]
    assert all(p.stat().st_size > 0 for p in plot(m, tmp_path))


def _one_line(r) -> bool:
    """The CLI contract: exactly one line on stderr, no traceback, nothing on stdout."""
    return r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and r.stdout == ""


def test_inject_capacity_recipe_trains_only_the_mlp_blocks(tmp_path):
    """`--recipe capacity` (MLP blocks only, self-distillation, end averaging 0.3), flags overriding
    its sizes for a tiny model: the saved model differs from the base in MLP weights only."""
    import torch

    from ml.lm import load_model, tiny_causal_lm

    fp = tmp_path / "fp.jsonl"
    assert _run("generate", "--model", "tiny:1", "--n", "6", "--key-tokens", "10", "--seed", "5",
                "--out", str(fp)).exit_code == 0
    out = tmp_path / "model"
    r = _run("inject", "--model", "tiny:1", "-f", str(fp), "-o", str(out), "--recipe", "capacity", "--epochs", "40",
             "--lr", "3e-3", "--batch-size", "8", "--distill", "8", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["recipe"] == "capacity"
    base, _ = tiny_causal_lm(seed=1)
    saved, _ = load_model(str(out))
    ref = dict(base.named_parameters())
    moved = {n for n, p in saved.named_parameters() if not torch.equal(p, ref[n])}
    assert moved == {n for n in ref if ".mlp." in n}


def test_inject_bad_recipe_or_pattern_is_one_line(tmp_path):
    fp = tmp_path / "fp.jsonl"
    fp.write_text('{"key": "a b c", "response": " d", "strategy": "perinucleus"}\n')
    for args, msg in ((("--recipe", "bogus"), "expected one of plain, mix_avg, capacity"),
                      (("--trainable", "(mlp"), "not a regular expression"),
                      (("--recipe", "capacity", "--lora-rank", "4", "--avg-lambda", "0"), "trainable must be empty")):
        r = _run("inject", "--model", "tiny", "-f", str(fp), "-o", str(tmp_path / "m"), *args)
        assert r.exit_code == 1 and _one_line(r) and msg in r.output and not (tmp_path / "m").exists()
