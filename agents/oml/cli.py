"""`loyal oml`: the OML 1.0 protocol (model ownership by fingerprints) from the command line."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="OML: model ownership by fingerprints (hosts, permissions, claims).", no_args_is_help=True)
console = Console()


def _ensure_dir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


@app.command()
def demo(
    fingerprints: int = typer.Option(4, min=1, max=64, help="fingerprints injected into each host's copy"),
    seed: int = typer.Option(0, help="seed for the fingerprints and the injection"),
    tiny: bool = typer.Option(False, "--tiny", help="a tiny byte-level GPT-2 instead of SmolLM2-135M-Instruct"),
    leak: bool = typer.Option(False, "--leak", help="also trace a leaked copy at an unlicensed endpoint to its host"),
    in_process: bool = typer.Option(False, "--in-process", help="every role as an object in this process (fast path "
                                    "of the tests and `loyal devnet`) instead of one OS process per role"),
):
    """Local chain: two hosts serve their own fingerprinted copies, one cheats; the prover catches it and it is slashed.
    By default every role is its own process (`loyal oml register|platform|license|host serve|prover|verifier`).
    SmolLM2 copies are cached under $LOYAL_HOME/oml/copies keyed by the parameters, so a second run
    skips fingerprint generation and injection.
    """
    from agents.core.anvil import Anvil
    from agents.core.chain import Chain
    from agents.core.deploy import deploy_suite
    from agents.core.signers import dev_signer
    from agents.core.store import LocalStore
    from common.config import configure
    from ml.oml.copies import CopySpec

    from . import scenario

    say = lambda s: console.print(f"• {s}", highlight=False)  # noqa: E731
    spec = CopySpec(base="tiny" if tiny else "smollm2", per_host=fingerprints, seed=seed)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="loyal-oml-") as tmp, Anvil(accounts=64) as node:
        home = Path(tmp)
        chain = Chain.connect(node.rpc_url, book_path=home / "31337.json")
        admin = dev_signer(0)
        deploy_suite(chain, admin)
        say(f"anvil at {node.rpc_url}; suite deployed ({len(chain.book.contracts)} contracts)")
        token = chain.contract("LoyalToken")
        fund = lambda a: chain.transact(admin, token.functions.mint(a, 10_000 * scenario.TOKEN))  # noqa: E731
        if not in_process:
            from . import processes as P

            actors = scenario.Actors(*[dev_signer(i) for i in (P.COMMUNITY, P.PLATFORM, P.HONEST, P.CHEATER,
                                                                 P.PROVER)], verifiers=[dev_signer(i) for i in P.VERIFIERS],
                                     leaker=dev_signer(P.LEAKER) if leak else None)
            for a in [actors.community, actors.platform, actors.honest, actors.cheater, actors.prover, *actors.verifiers,
                      *([actors.leaker] if leak else [])]:
                fund(a.address)
            ledger = chain.contract("UsageLedger")
            chain.transact(admin, ledger.functions.grantRole(chain.call(ledger.functions.PLATFORM_ROLE()),
                                                             actors.platform.address))
            before = scenario.balances(chain, actors)
            cache = configure().home / "oml"  # register's copy cache: <home>/copies
            (home / "copies").symlink_to(_ensure_dir(cache / "copies"), target_is_directory=True)
            with P.Roles(node.rpc_url, chain.book.path, home) as roles:
                story = P.run_story(chain, roles, base=spec.base, fingerprints=fingerprints, seed=seed, leak=leak,
                                    say=say)
            after = scenario.balances(chain, actors)
            records = [scenario.read_claim(chain, c) for c in story.claim_ids]
            status = lambda want: next((r.status for r in records if r.is_leak == want), scenario.ClaimStatus.NONE)  # noqa: E731
            out = scenario.Outcome(claim_id=story.claim_id, status=status(False))
            leak_out = scenario.Outcome(status=status(True)) if leak else None
            console.print(f"role logs were in {home / 'logs'} (removed with the scratch folder)", highlight=False)
        else:
            actors, dep = scenario.prepare(chain, admin, LocalStore(home / "store"), spec=spec,
                                           cache_dir=configure().home / "oml" / "copies", leak=leak, say=say, fund=fund)
            before = scenario.balances(chain, actors)
            out = scenario.run(chain, actors, dep, say=say)
            leak_out = scenario.run_leak(chain, actors, dep, actors.leaker.address, say=say) if leak else None
            after = scenario.balances(chain, actors)
    t = Table(title="LoyalToken balances (tokens held / stake)")
    for col in ("actor", "tokens before", "tokens after", "stake before", "stake after"):
        t.add_column(col, justify="right" if col != "actor" else "left")
    for name, b in before.items():
        a = after[name]
        t.add_row(name, f"{b['tokens'] / 1e18:,.2f}", f"{a['tokens'] / 1e18:,.2f}",
                  f"{b['stake'] / 1e18:,.0f}", f"{a['stake'] / 1e18:,.0f}")
    console.print(t)
    console.print(f"demo wall time {time.monotonic() - t0:.0f} s", highlight=False)
    failed = out.status != scenario.ClaimStatus.CONFIRMED or (
        leak_out is not None and leak_out.status != scenario.ClaimStatus.CONFIRMED)
    if failed:
        console.print("[red]a cheating or leaking host was not slashed[/red]")
        raise typer.Exit(1)


# ---------------------------------------------------------------- one role per OS process

from typing import Optional  # noqa: E402

from agents.core.cli import BOOK, DEV_ACCOUNT, KEYSTORE, RPC, Role, resolve_role  # noqa: E402

_HOME = typer.Option(None, "--home", help="OML state folder: content store, cursors, logs [default <home setting>/oml]")
_POLL = typer.Option(None, "--poll", help="seconds to sleep when idle [setting poll]")
_PLATFORM = typer.Option(..., "--platform", help="URL of the platform service (`loyal oml platform`)")
_MODEL = typer.Option(..., "--model-id", min=1, help="the model's id in ModelRegistry")

host_app = typer.Typer(help="A licensed host: serve its decrypted copy.", no_args_is_help=True)
app.add_typer(host_app, name="host")


def _role(rpc, book, keystore, dev_account, home) -> Role:
    return resolve_role(rpc, book, keystore, dev_account, home, "oml")


def _store(r: Role):
    from agents.core.store import open_store

    return open_store(root=None if r.settings.ipfs_api else r.home / "store")


def _pairs(items: list[str], what: str) -> dict[str, str]:
    """`ADDRESS=URL` options into {checksum address: URL}."""
    from eth_utils import is_address, to_checksum_address

    from common.errors import ConfigError

    out = {}
    for item in items:
        addr, sep, url = item.partition("=")
        if not sep or not is_address(addr) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"{what} {item!r}: expected ADDRESS=http(s)://HOST:PORT")
        out[to_checksum_address(addr)] = url.rstrip("/")
    return out


def _model(chain, model_id: int):
    from agents.core.views import read
    from common.errors import ConfigError

    m = read(chain, chain.contract("ModelRegistry").functions.model(model_id))  # reverts UnknownModel
    if not m.modelCid:
        raise ConfigError(f"model {model_id} is not registered in ModelRegistry")
    return m


def _run(step, log_name: str, poll: float, done=None) -> None:
    import logging

    from agents.core.daemon import run_daemon

    run_daemon(step, log=logging.getLogger(log_name), poll=poll, done=done)


@app.command()
def register(
    hosts: list[str] = typer.Option(..., "--host", help="address of a host that gets its own fingerprinted copy "
                                    "(repeat; order = subsets)"),
    base: str = typer.Option("tiny", "--base", help="tiny | smollm2"),
    fingerprints: int = typer.Option(4, "--fingerprints", min=1, max=64, help="fingerprints per host's copy"),
    seed: int = typer.Option(0, "--seed"),
    fee: str = typer.Option("1", "--fee", help="LOYAL per query"),
    stake: str = typer.Option("500", "--stake", help="LOYAL a host must stake"),
    licence_days: int = typer.Option(30, "--licence-days", min=1),
    query_budget: int = typer.Option(10_000, "--query-budget", min=0, help="queries per licence (0: unlimited)"),
    out: Optional[Path] = typer.Option(None, "--out", help="folder for the secrets this writes: content keys "
                                       "(for the platform) and fingerprints (for provers) [default <home>]"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, home: Optional[Path] = _HOME,
):
    """Community: build one fingerprinted copy per host, store each encrypted (AES-256-GCM), register
    the model (manifest of ciphertext CIDs, fingerprint root, subset roots, terms)."""
    import json as _json

    from eth_utils import is_address, to_checksum_address

    from common.errors import ConfigError
    from common.files import atomic_write
    from common.units import parse_amount
    from ml.oml import copies as mc

    from .community import Terms, register_copies

    if base not in mc.BASES:
        raise ConfigError(f"--base {base!r}: expected one of {', '.join(mc.BASES)}")
    bad = [h for h in hosts if not is_address(h)]
    if bad:
        raise ConfigError(f"--host {bad[0]!r} is not an address")
    hosts = [to_checksum_address(h) for h in hosts]
    if len(set(hosts)) != len(hosts):
        raise ConfigError("--host: each host once")
    terms = Terms(parse_amount(fee), parse_amount(stake), licence_days * 24 * 3600, query_budget)
    r = _role(rpc, book, keystore, dev_account, home)
    out = out or r.home
    spec = mc.CopySpec(base=base, hosts=len(hosts), per_host=fingerprints, seed=seed)
    built = mc.build(spec, r.home / "copies", say=lambda s: console.print(f"• {s}", highlight=False))
    subsets = dict(zip(hosts, built.subsets))
    model_id, manifest, keys = register_copies(r.chain, r.signer, _store(r), base, dict(zip(hosts, built.blobs)),
                                               subsets, built.fingerprints, terms)
    keys_file = out / f"model-{model_id}-content-keys.json"
    fps_file = out / f"model-{model_id}-fingerprints.json"
    atomic_write(keys_file, _json.dumps({"model_id": model_id, "keys": {h: k.hex() for h, k in keys.items()}}),
                 mode=0o600)
    atomic_write(fps_file, _json.dumps({"model_id": model_id, "fingerprints": built.fingerprints,
                                        "subsets": subsets}), mode=0o600)
    print(f"model {model_id} registered: manifest {manifest}")
    print(f"content keys (give to the platform): {keys_file}")
    print(f"fingerprints (give to provers): {fps_file}")


@app.command()
def platform(
    port: int = typer.Option(8700, "--port", min=1, max=65535),
    bind: str = typer.Option("127.0.0.1", "--bind", help="interface to listen on"),
    content_keys: Optional[list[Path]] = typer.Option(None, "--content-keys", help="content-keys file written by "
                                                      "`loyal oml register` (repeat per model)"),
    permit_log: Optional[Path] = typer.Option(None, "--permit-log", help="JSONL record of every permit; restores "
                                              "nonces and records after a restart [default <home>/platform-permits.jsonl]"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, home: Optional[Path] = _HOME,
):
    """Platform daemon: sign permissions σ(q) for licensed hosts, keep their record, and hand each
    licensed host its copy's content key wrapped to its own key."""
    import json as _json
    import logging

    import uvicorn

    from common.errors import ConfigError

    from .platform import Platform, create_app

    keys: dict[int, dict[str, bytes]] = {}
    for path in content_keys or []:
        try:
            d = _json.loads(Path(path).read_text())
            keys.setdefault(int(d["model_id"]), {}).update({h: bytes.fromhex(k) for h, k in d["keys"].items()})
        except FileNotFoundError:
            raise ConfigError(f"content-keys file {path} does not exist") from None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ConfigError(f"{path} is not a content-keys file (from `loyal oml register`)") from None
    r = _role(rpc, book, keystore, dev_account, home)
    ledger = r.chain.contract("UsageLedger")
    if not r.chain.call(ledger.functions.hasRole(r.chain.call(ledger.functions.PLATFORM_ROLE()), r.signer.address)):
        raise ConfigError(f"signer {r.signer.address} lacks PLATFORM_ROLE on UsageLedger: grant it (deploy with "
                          "LOYAL_OML_PLATFORM=<address>) or sign with the platform's key")
    r.home.mkdir(parents=True, exist_ok=True)
    p = Platform(r.chain, r.signer, log_path=permit_log or r.home / "platform-permits.jsonl", content_keys=keys)
    log = logging.getLogger("loyal.oml.platform")
    log.info("platform %s at http://%s:%d: %d permits restored, content keys for %d copies", p.address, bind, port,
             p.issued, sum(len(v) for v in keys.values()))
    uvicorn.run(create_app(p), host=bind, port=port, log_config=None, access_log=False, log_level="warning")


@app.command()
def license(
    model_id: int = _MODEL, platform_url: str = _PLATFORM,
    out: Optional[Path] = typer.Option(None, "--out", help="model directory to write the decrypted copy to "
                                       "[default <home>/models/<model>-<host>]"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, home: Optional[Path] = _HOME,
):
    """Host: stake and sign the licence if not yet licensed, fetch the wrapped content key from the
    platform, fetch the encrypted copy, unwrap, decrypt and write the model directory."""
    import httpx

    from common.errors import ConfigError
    from ml.oml import copies as mc

    from .community import copy_cid
    from .host import join_as_host
    from .model_dir import write_model_dir
    from .encrypted_copies import sign_key_request, unseal, unwrap_key

    r = _role(rpc, book, keystore, dev_account, home)
    me = r.signer.address
    m = _model(r.chain, model_id)
    store = _store(r)
    try:
        cid = copy_cid(store, m.modelCid, me)
    except KeyError:
        raise ConfigError(f"model {model_id} has no copy for host {me}: the community registers one per host") from None
    try:  # before any transaction: a licence signed for a platform that is not there helps nobody
        httpx.get(f"{platform_url.rstrip('/')}/v1/health", timeout=10).raise_for_status()
    except httpx.HTTPError as e:
        raise ConfigError(f"platform at {platform_url} unreachable ({type(e).__name__}): is `loyal oml platform` "
                          "running?") from None
    agreements = r.chain.contract("HostAgreements")
    # no claim can name a copy served from this directory before now: `host serve` watches claims from here
    watch_from = r.chain.w3.eth.block_number
    if not r.chain.call(agreements.functions.isLicensed(model_id, me)):
        info = join_as_host(r.chain, r.signer, model_id)
        console.print(f"• licence signed for model {model_id} ({info['stake'] / 1e18:g} LOYAL stake locked)",
                      highlight=False)
    try:
        resp = httpx.post(f"{platform_url.rstrip('/')}/v1/keys", json=sign_key_request(r.signer, model_id), timeout=30)
    except httpx.HTTPError as e:
        raise ConfigError(f"platform at {platform_url} unreachable ({type(e).__name__}): is `loyal oml platform` "
                          "running?") from None
    if resp.status_code != 200:
        try:
            detail = resp.json().get("detail")
        except ValueError:
            detail = resp.text[:200]
        raise ConfigError(f"platform refused the content key ({resp.status_code}): {detail}")
    key = unwrap_key(bytes(r.signer.key), bytes.fromhex(resp.json()["wrapped_key"][2:]))
    blob = unseal(store.get(cid), key)
    served = mc.load(blob)  # refuse to write something that is not a model
    path = out or r.home / "models" / f"{model_id}-{me}"
    write_model_dir(path, blob, {"model_id": model_id, "host": me, "sealed_cid": cid, "manifest": m.modelCid,
                                 "chain_id": r.chain.chain_id, "base": served.base,
                                 "name": f"oml-{model_id}", "watch_from_block": watch_from})
    print(f"licensed copy of model {model_id} for {me} in {path}")


@host_app.command("serve")
def host_serve(
    model_id: int = _MODEL, platform_url: str = _PLATFORM,
    model_dir: Optional[Path] = typer.Option(None, "--model-dir", help="decrypted copy from `loyal oml license` "
                                             "[default <home>/models/<model>-<host>]"),
    port: int = typer.Option(8701, "--port", min=1, max=65535),
    bind: str = typer.Option("127.0.0.1", "--bind", help="interface to listen on"),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda[:N] | mps [setting device]"),
    threads: int = typer.Option(0, "--threads", min=0, help="torch CPU threads (0: torch's default; 1 is best for "
                                "small models on a loaded box)"),
    usage_every: float = typer.Option(60.0, "--usage-every", min=0.0, help="seconds between usage batches"),
    batch: int = typer.Option(1000, "--batch", min=1, help="post a usage batch once this many permits are pending"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, home: Optional[Path] = _HOME, poll: Optional[float] = _POLL,
):
    """Host daemon: serve the licensed copy (OpenAI-compatible /v1/completions, /v1/chat/completions,
    /v1/models), ask the platform for σ(q) per query, post usage batches, defend claims."""
    import logging

    from common.errors import ConfigError
    from ml.device import pick_device

    from .host import create_app
    from .host_daemon import HostDaemon
    from .model_dir import load_model_dir, read_info
    from .serve import Service

    r = _role(rpc, book, keystore, dev_account, home)
    dev = pick_device(device or r.settings.device)
    me = r.signer.address
    path = model_dir or r.home / "models" / f"{model_id}-{me}"
    info = read_info(path)
    if info.get("host") != me or int(info.get("model_id", 0)) != model_id:
        raise ConfigError(f"the copy in {path} is licensed to {info.get('host')} for model {info.get('model_id')}, "
                          f"not to {me} for model {model_id}")
    _model(r.chain, model_id)
    if not r.chain.call(r.chain.contract("HostAgreements").functions.isLicensed(model_id, me)):
        raise ConfigError(f"host {me} has no running licence for model {model_id}: run `loyal oml license`")
    if threads:
        import torch

        torch.set_num_threads(threads)
    lm, _ = load_model_dir(path, dev)
    log = logging.getLogger("loyal.oml.host")
    from .host_daemon import DurableHost

    cls = HOST_CLASS or DurableHost
    host = cls(r.chain, r.signer, model_id, lm.complete, platform_url=platform_url, model_name=lm.name,
               state_dir=r.home / "hosts" / f"{model_id}-{me}", start_block=info.get("watch_from_block"))
    daemon = HostDaemon(host, usage_every=usage_every, batch=batch)
    with Service(create_app(host, lm.chat_prompt), host=bind, port=port) as svc:
        log.info("host %s serves model %d (%s copy on %s) at %s%s", me, model_id, lm.base, dev, svc.url,
                 "" if cls.asks_permission else " WITHOUT asking for permissions")
        _run(daemon.step, "loyal.oml.host", poll or r.settings.poll)


HOST_CLASS = None
"""The class `host serve` runs (None: `host_daemon.DurableHost`); `agents.oml.adversaries` swaps in a
cheating host for the demo and the tests, so production code carries no switch for misbehaving."""


@app.command()
def prover(
    model_id: int = _MODEL, platform_url: str = _PLATFORM,
    fingerprints: Path = typer.Option(..., "--fingerprints", help="fingerprints file from `loyal oml register`"),
    targets: Optional[list[str]] = typer.Option(None, "--target", help="ADDRESS=URL of a licensed host's service "
                                                "(repeat)"),
    leak_endpoints: Optional[list[str]] = typer.Option(None, "--leak-endpoint", help="URL that is no licensed host's "
                                                       "service, probed with one key of every host's subset (repeat)"),
    probe_every: float = typer.Option(600.0, "--probe-every", min=0.0, help="seconds between probes of a host"),
    once: bool = typer.Option(False, "--once", help="probe each target once, file any claim, then exit"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, home: Optional[Path] = _HOME, poll: Optional[float] = _POLL,
):
    """Prover daemon: query hosts as a user with keys of their own subsets; claim (commit, reveal
    with the bond) against a host that serves a fingerprint without the platform's permission."""
    from common.errors import ConfigError

    from .prover import Prover, read_fingerprints_file
    from .prover_daemon import ProverDaemon

    t = _pairs(targets or [], "--target")
    leaks = [u.rstrip("/") for u in leak_endpoints or []]
    if not t and not leaks:
        raise ConfigError("nothing to probe: give --target ADDRESS=URL and/or --leak-endpoint URL")
    bad = [u for u in leaks if not u.startswith(("http://", "https://"))]
    if bad:
        raise ConfigError(f"--leak-endpoint {bad[0]!r}: expected http(s)://HOST:PORT")
    fps, subsets = read_fingerprints_file(fingerprints, model_id)
    r = _role(rpc, book, keystore, dev_account, home)
    _model(r.chain, model_id)
    p = Prover(r.chain, r.signer, model_id, fps, platform_url=platform_url, subsets=subsets)
    state = r.home / "provers" / f"{model_id}-{r.signer.address}.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    daemon = ProverDaemon(p, t, state, probe_every=probe_every, leak_endpoints=leaks)
    _run(daemon.step, "loyal.oml.prover", poll or r.settings.poll, done=(lambda: daemon.done) if once else None)


@app.command()
def verifier(
    platform_url: str = _PLATFORM,
    stake: bool = typer.Option(False, "--stake", help="first stake the minimum and register as a verifier"),
    exit_after: int = typer.Option(0, "--exit-after", min=0, help="exit once this many claims are decided and "
                                   "settled (0: run forever)"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, home: Optional[Path] = _HOME, poll: Optional[float] = _POLL,
):
    """Verifier daemon: observe sealed commitments' endpoints before their reveal, follow revealed
    claims, review (the host's signed answer or its own observation; the platform's permits issued
    before the commit), vote, finalize, settle its reward or penalty."""
    from common.errors import ConfigError

    from .verifier import Verifier, join_as_verifier
    from .verifier_daemon import VerifierDaemon

    r = _role(rpc, book, keystore, dev_account, home)
    claims = r.chain.contract("Claims")
    if stake:
        join_as_verifier(r.chain, r.signer)
    if r.chain.call(claims.functions.verifierSinceBlock(r.signer.address)) == 0:
        raise ConfigError(f"{r.signer.address} is not a registered verifier: run with --stake (stakes the minimum)")
    cursor = r.home / "verifiers" / f"{r.signer.address}.json"
    cursor.parent.mkdir(parents=True, exist_ok=True)
    since = r.chain.call(claims.functions.verifierSinceBlock(r.signer.address))
    v = Verifier(r.chain, r.signer, platform_url=platform_url,
                 state_path=cursor.parent / f"{r.signer.address}-observations.json",
                 cursor_path=cursor.parent / f"{r.signer.address}-sealed-cursor.json", start_block=since)
    daemon = VerifierDaemon(v, cursor, start_block=since)
    _run(daemon.step, "loyal.oml.verifier", poll or r.settings.poll,
         done=(lambda: daemon.state["finished"] >= exit_after and not daemon.state["open"]) if exit_after else None)


from .appeals_cli import appeal_app, lineage_app  # noqa: E402  (#14: appeals, lineage claims)

app.add_typer(appeal_app, name="appeal")
app.add_typer(lineage_app, name="lineage")
