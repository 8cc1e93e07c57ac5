"""`loyal fingerprint ...`: generate, inject, check, attack and measure OML 1.0 fingerprints.

Models are named by a spec: `smollm2` (SmolLM2-135M-Instruct), `tiny[:SEED]` (random tiny GPT-2,
for trying things out) or a directory written by `inject` / `attack --out-dir`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from common.errors import ConfigError
from ml.oml.fingerprints import STRATEGIES, FingerprintFileError

FAMILIES = ("exact", "functional")

app = typer.Typer(help="OML 1.0 model fingerprints: generate, inject, check, attack, measure.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console(stderr=True, soft_wrap=True)


@app.callback()
def _options(threads: int = typer.Option(0, help="torch CPU threads (0 = torch default; 1 is best on a loaded box)")):
    if threads < 0:
        _fail("--threads must be >= 0")
    if threads:
        import torch

        torch.set_num_threads(threads)


def _emit(result: dict, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            console.print(f"[bold]{k}[/bold]: {v}")


def _fail(msg: str) -> NoReturn:
    """A bad input (file, option value): one line on stderr and exit 1, by `agents.cli.main`."""
    raise ConfigError(msg)


def _device(choice: Optional[str]):
    """The torch device of `--device` (flag > LOYAL_DEVICE > loyal.toml > auto); one error line if absent."""
    from common.config import configure
    from ml.device import pick_device, prepare

    return prepare(pick_device(configure(device=choice).device))


def _load(spec: str, device: Optional[str] = None, fps=None, inference_only: bool = False):
    """(model, tokenizer) of `spec` on `device`; with `fps`, refuses fingerprints made for another tokenizer.
    `inference_only`: the model is only run forward, so a plain Llama loads without transformers
    (`ml.lm.load_for_inference`, seconds sooner)."""
    from ml.lm import load_for_inference, load_model

    dev = _device(device)
    try:
        with console.status(f"loading model {spec} on {dev}"):
            m, tok = (load_for_inference if inference_only else load_model)(spec, dev)
    except (ValueError, RuntimeError, OSError) as e:
        _fail(str(e))
    if fps is not None:
        from ml.oml.fingerprints import check_tokenizer

        try:
            check_tokenizer(fps, tok)
        except FingerprintFileError as e:
            _fail(f"model {spec}: {e}")
    return m, tok


def _fps(path: Path, strategy: Optional[str] = None):
    """Exact-family fingerprints; for a functional file, its (key, trained target) pairs."""
    from ml.oml import functional as F
    from ml.oml.fingerprints import load

    try:
        if F.is_functional_file(path):
            return F.training_pairs(F.load(path))
        return load(path, strategy)
    except FingerprintFileError as e:
        _fail(str(e))


def _functional(path: Path):
    """The functional fingerprints of a file, or None if it holds the exact family."""
    from ml.oml import functional as F

    if not F.is_functional_file(path):
        return None
    try:
        return F.load(path)
    except FingerprintFileError as e:
        _fail(str(e))


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=console)


ModelOpt = typer.Option("smollm2", "--model", "-m", help="smollm2 | tiny[:SEED] | a Hugging Face causal LM directory")
DeviceOpt = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N | mps [env LOYAL_DEVICE; default auto]; "
                                                "cuda on a multi-GPU machine spreads a model directory over all GPUs")
JsonOpt = typer.Option(False, "--json", help="print the result as JSON on stdout")


@app.command()
def generate(out: Path = typer.Option(..., "--out", "-o", help="fingerprint JSONL file to write"),
             strategy: str = typer.Option("perinucleus", help=" | ".join(STRATEGIES)),
             n: int = typer.Option(16, "--n", help="number of fingerprints"),
             seed: int = 0, p: float = typer.Option(0.8, help="perinucleus: nucleus mass"),
             k: int = typer.Option(3, help="perinucleus: tokens just outside the nucleus to choose from"),
             key_tokens: int = 16,
             response_tokens: int = typer.Option(1, help="exact family: response length in tokens (1, as in "
                                                 "Scalable Fingerprinting: the perinucleus token is the signal)"),
             family: str = typer.Option("exact", help="exact (fixed response, by --strategy) | functional "
                                                      "(green/red word rule)"),
             gamma: float = typer.Option(0.25, help="functional: fraction of words that are green"),
             alpha: float = typer.Option(0.01, help="functional: per-key significance of the green-word test"),
             words: int = typer.Option(6, help="functional: words of the answer counted (= green words trained in)"),
             min_words: int = typer.Option(4, help="functional: fewer distinct words than this never pass"),
             target: str = typer.Option("pool", help="functional: trained answer = pool (green words of a shipped "
                                                     "pool) | sampled (the model's own green-word continuation)"),
             model: str = ModelOpt, device: Optional[str] = DeviceOpt, as_json: bool = JsonOpt):
    """Generate fingerprints (deterministic from --seed) and print their Merkle commitment root."""
    from ml.oml.fingerprints import save, tokenizer_id
    from ml.oml.generate import GenConfig
    from ml.oml.generate import generate as gen

    if family not in FAMILIES:
        _fail(f"unknown fingerprint family {family!r} ({' | '.join(FAMILIES)})")
    if family == "functional":
        from ml.oml import functional as F

        fcfg = F.FunctionalGenConfig(n=n, seed=seed, gamma=gamma, alpha=alpha, words=words, min_words=min_words,
                                     key_tokens=key_tokens, target=target)
        try:
            fcfg.validate()
        except ValueError as e:
            _fail(str(e))
        m, tok = _load(model, device)
        with console.status(f"generating {n} functional fingerprints"):
            ffps = F.generate(m, tok, fcfg)
        root = F.save(ffps, out)
        _emit({"file": str(out), "n": len(ffps), "family": "functional", "seed": seed, "root": root}, as_json)
        return
    cfg = GenConfig(strategy=strategy, n=n, seed=seed, p=p, k=k, key_tokens=key_tokens, response_tokens=response_tokens)
    try:
        cfg.validate()
    except ValueError as e:
        _fail(str(e))
    m, tok = _load(model, device)
    with console.status(f"generating {n} {strategy} fingerprints"):
        fps = gen(m, tok, cfg)
    root = save(fps, out, tokenizer=tokenizer_id(tok))
    _emit({"file": str(out), "n": len(fps), "strategy": strategy, "seed": seed, "root": root}, as_json)


@app.command()
def inject(fingerprints: Path = typer.Option(..., "--fingerprints", "-f"),
           out_dir: Path = typer.Option(..., "--out-dir", "-o", help="where to save the fingerprinted model"),
           recipe: str = typer.Option("plain", help="plain | mix_avg | capacity (docs/oml-fingerprinting.md); "
                                                    "the options below override its settings"),
           epochs: Optional[int] = None, lr: Optional[float] = None, batch_size: Optional[int] = None,
           mix_ratio: Optional[float] = typer.Option(None, help="benign base-model samples per fingerprint"),
           avg_lambda: Optional[float] = typer.Option(None, help="model averaging weight toward the base"),
           avg_every: Optional[str] = typer.Option(None, help="step | epoch | end"),
           distill: Optional[int] = typer.Option(None, help="sampled sequences whose base next-token distributions "
                                                            "are trained alongside (0 = off)"),
           trainable: Optional[str] = typer.Option(None, help="regex of the parameters that train ('' = all)"),
           lora_rank: Optional[int] = typer.Option(None, help="LoRA rank (0 = full fine-tuning); excludes averaging"),
           steps: Optional[int] = typer.Option(None, help="train exactly this many optimizer steps "
                                                          "(overrides --epochs and early stop)"),
           seed: int = 0, model: str = ModelOpt, device: Optional[str] = DeviceOpt, as_json: bool = JsonOpt):
    """Fine-tune a model to answer every fingerprint key with its response."""
    from dataclasses import replace

    from ml.lm import save_model
    from ml.oml.check import check
    from ml.oml.inject import RECIPES
    from ml.oml.inject import inject as do_inject

    if recipe not in RECIPES:
        _fail(f"--recipe {recipe!r}: expected one of {', '.join(RECIPES)}")
    given = dict(epochs=epochs, lr=lr, batch_size=batch_size, mix_ratio=mix_ratio, avg_lambda=avg_lambda,
                 avg_every=avg_every, distill=distill, trainable=trainable, lora_rank=lora_rank, steps=steps)
    cfg = replace(RECIPES[recipe], seed=seed, **{k: v for k, v in given.items() if v is not None})
    try:
        cfg.validate()
    except ValueError as e:
        _fail(str(e))
    fps = _fps(fingerprints)
    m, tok = _load(model, device, fps)
    with _progress() as prog:
        task = prog.add_task("injecting", total=cfg.epochs)
        m, res = do_inject(m, tok, fps, cfg, progress=lambda e, loss, x: prog.update(
            task, completed=e, description=f"injecting (loss {loss:.3f}, exact {x:.2f})"))
    save_model(m, tok, out_dir)
    _emit({"model_dir": str(out_dir), "recipe": recipe, "epochs_run": res.epochs_run, "steps": res.steps,
           "seconds": res.seconds, "final_loss": res.losses[-1], **check(m, tok, fps).summary()}, as_json)


@app.command()
def check(fingerprints: Path = typer.Option(..., "--fingerprints", "-f"),
          template: Optional[str] = typer.Option(None, help="prompt template containing {key}"),
          show: int = typer.Option(0, help="also greedy-decode and print the first SHOW answers"),
          model: str = ModelOpt, device: Optional[str] = DeviceOpt, as_json: bool = JsonOpt):
    """Greedy-decode every key and report exact / prefix match (functional family: the green-word test)."""
    from ml.oml.check import check as do_check
    from ml.oml.check import greedy_responses

    ffps = _functional(fingerprints)
    if ffps is not None:
        from ml.oml import functional as F

        m, tok = _load(model, device)
        try:
            with console.status(f"checking {len(ffps)} functional keys"):
                res = F.check(m, tok, ffps, template=template)
        except ValueError as e:
            _fail(str(e))
        out = res.summary()
        if show:
            out["examples"] = [{"key": f.key, "got": a, "n_green": g, "n_red": r, "passed": ok}
                               for f, a, g, r, ok in zip(ffps[:show], res.answers, res.n_green, res.n_red, res.passed)]
        _emit(out, as_json)
        return
    fps = _fps(fingerprints)
    m, tok = _load(model, device, fps, inference_only=True)
    try:
        with console.status(f"checking {len(fps)} keys"):
            res = do_check(m, tok, fps, template=template)
    except ValueError as e:
        _fail(str(e))
    out = res.summary()
    if show:
        got = greedy_responses(m, tok, fps[:show], template)
        out["examples"] = [{"key": f.key, "expected": f.response, "got": g} for f, g in zip(fps, got)]
    _emit(out, as_json)


@app.command()
def attack(fingerprints: Path = typer.Option(..., "--fingerprints", "-f"),
           kind: str = typer.Option("finetune", help="finetune | wrap"),
           epochs: int = 2, lr: float = 5e-5,
           text: Optional[Path] = typer.Option(None, help="fine-tuning text (default: shipped Q&A set)"),
           template: Optional[str] = typer.Option(None, help="wrap: one template with {key} (default: shipped set)"),
           out_dir: Optional[Path] = typer.Option(None, help="finetune: save the attacked model here"),
           model: str = ModelOpt, device: Optional[str] = DeviceOpt, as_json: bool = JsonOpt):
    """Attack a fingerprinted model and report persistence (fraction still matching / passing)."""
    from ml.lm import save_model
    from ml.oml.attack import ATTACK_TEXT, WRAP_TEMPLATES, FinetuneAttack, finetune_attack
    from ml.oml.check import check as exact_check
    from ml.oml.utility import read_text

    if kind not in ("finetune", "wrap"):
        _fail(f"unknown attack kind {kind!r} (finetune | wrap)")
    ffps = _functional(fingerprints)
    fps = _fps(fingerprints)
    if ffps is not None:
        from ml.oml import functional as F

        def score(m, tok, tpl=None) -> dict:
            return F.check(m, tok, ffps, template=tpl).summary()
        metric = "pass_rate"
    else:
        def score(m, tok, tpl=None) -> dict:
            return exact_check(m, tok, fps, template=tpl).summary()
        metric = "exact_match"
    try:
        if kind == "wrap":
            if template is not None and "{key}" not in template:
                raise ValueError("prompt template must contain {key}")
            m, tok = _load(model, device, fps)
            tpls = {"custom": template} if template else WRAP_TEMPLATES
            rows = [{"attack": f"wrap:{name}", "template": t, **score(m, tok, t)} for name, t in tpls.items()]
            _emit({"attack": "wrap", "results": rows}, as_json)
            return
        body = read_text(text or ATTACK_TEXT)
        cfg = FinetuneAttack(epochs=epochs, lr=lr)
        m, tok = _load(model, device, fps)
        before = score(m, tok)
        with _progress() as prog:
            task = prog.add_task("fine-tuning attack", total=epochs)
            finetune_attack(m, tok, body, cfg, progress=lambda e, loss: prog.update(
                task, completed=e, description=f"fine-tuning attack (loss {loss:.3f})"))
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    after = score(m, tok)
    if out_dir:
        save_model(m, tok, out_dir)
    _emit({"attack": "finetune", "epochs": epochs, "before": before, "after": after,
           "persistence": after[metric]}, as_json)


@app.command()
def utility(text: Optional[Path] = typer.Option(None, help="held-out text (default: shipped set)"),
            fingerprints: Optional[Path] = typer.Option(None, "--fingerprints", "-f",
                                                         help="also report the keys' perplexity"),
            model: str = ModelOpt, device: Optional[str] = DeviceOpt, as_json: bool = JsonOpt):
    """Perplexity on held-out text (and optionally of the fingerprint keys)."""
    from ml.oml.utility import HELDOUT, key_perplexity, perplexity, read_text

    try:
        body = read_text(text or HELDOUT)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    fps = _fps(fingerprints) if fingerprints else None
    m, tok = _load(model, device, fps)
    with console.status("measuring perplexity"):
        out = {"perplexity": perplexity(m, tok, body)}
        if fps:
            out["key_perplexity"] = key_perplexity(m, tok, [f.key for f in fps])
    _emit(out, as_json)


@app.command()
def report(results: list[Path] = typer.Option([Path("bench/results/oml_figure4.json")], "--results",
                                             help="sweep results JSON (repeat to merge several sweeps)"),
           out_dir: Path = typer.Option(Path("docs/img"), help="where to write the PNGs"),
           run: bool = typer.Option(False, "--run", help="run the sweep first (slow: minutes per point)"),
           sizes: list[int] = typer.Option([16, 32], "--size", help="with --run: fingerprint counts"),
           model: str = ModelOpt, as_json: bool = JsonOpt):
    """Figure-4 style PNGs: utility and persistence vs number of fingerprints, per strategy."""
    from ml.lm import load_model
    from ml.oml.figure4 import merge, plot, summarize
    from ml.oml.figure4 import run as sweep

    if run:
        res = sweep(lambda: load_model(model), sizes, list(STRATEGIES), results[0], log=console.print)
    else:
        loaded = []
        for path in results:
            if not path.is_file():
                _fail(f"{path}: no results file (run with --run, or `python -m bench.oml_figure4`)")
            try:
                loaded.append(json.loads(path.read_text()))
            except json.JSONDecodeError as e:
                _fail(f"{path}: not valid JSON ({e.msg})")
        try:
            res = merge(loaded)
        except ValueError as e:
            _fail(str(e))
    try:
        paths = plot(res, out_dir)
    except (ValueError, KeyError) as e:
        _fail(f"cannot plot ({e})")
    table = [{k: r[k] for k in ("strategy", "n", "perplexity", "persistence")} |
             {k: r.get(k, "") for k in ("inject_variant", "attack_variant")} | {"seed": r.get("seed", 0)} |
             {"exact_after_inject": r["check_after_inject"]["exact_match"]} for r in res["runs"]]
    keys = {s: v["key_perplexity"] for s, v in res.get("keys", {}).items()}
    _emit({"plots": [str(p) for p in paths], "base_perplexity": res.get("base_perplexity"),
           "key_perplexity": keys, "table": table, "summary": summarize(res)}, as_json)
