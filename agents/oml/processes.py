"""The OML story with every role in its own OS process (`loyal oml demo`, the process tests, the benchmark).

`Roles` starts `loyal oml ...` subprocesses against one chain (each with its own dev account, its
log file under `home/logs/`, the shared `--home` for the content store) and stops them. The cheating
host is `python -m agents.oml.adversaries host serve ...`: the production command with the class
that skips permissions swapped in. `run_story` is what the demo runs: register, platform, licences,
two hosts, three verifiers, user traffic over plain HTTP, the prover, the clock moved past the
challenge window, votes, finalize, settlement.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx

from agents.core.chain import Chain
from common.errors import LoyalError

ROOT = Path(__file__).resolve().parents[2]
Say = Callable[[str], None]


class RoleFailed(LoyalError):
    """A role process exited with an error or did not reach the expected state in time."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Roles:
    rpc: str
    book: Path
    home: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    args: dict[str, list[str]] = field(default_factory=dict)

    def _cmd(self, args: list[str], module: str = "agents.cli") -> list[str]:
        return [sys.executable, "-m", module, "oml", *args] if module == "agents.cli" else \
            [sys.executable, "-m", module, *args]

    def _env(self) -> dict:
        return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "LOYAL_LOG_LEVEL": os.environ.get("LOYAL_LOG_LEVEL", "INFO")}

    def common(self, account: int) -> list[str]:
        return ["--rpc", self.rpc, "--book", str(self.book), "--home", str(self.home), "--dev-account", str(account)]

    def log(self, name: str) -> Path:
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        return self.home / "logs" / f"{name}.log"

    def run(self, name: str, args: list[str], timeout: float = 600) -> str:
        """Run a one-shot command to completion; its stdout, or RoleFailed with its last error line."""
        r = subprocess.run(self._cmd(args), env=self._env(), cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        with self.log(name).open("a") as f:
            f.write(r.stderr + r.stdout)
        if r.returncode != 0:
            raise RoleFailed(f"`loyal oml {args[0]}` ({name}) failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
        return r.stdout

    def start(self, name: str, args: list[str], module: str = "agents.cli") -> subprocess.Popen:
        self.args[name] = [module, *args]
        p = subprocess.Popen(self._cmd(args, module), env=self._env(), cwd=ROOT, stdout=self.log(name).open("ab"),
                             stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = p
        return p

    def restart(self, name: str) -> subprocess.Popen:
        module, *args = self.args[name]
        return self.start(name, args, module)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        p = self.procs[name]
        if p.poll() is None:
            p.send_signal(sig)
        p.wait(timeout=30)

    def check_alive(self, *names: str) -> None:
        for n in names or list(self.procs):
            p = self.procs[n]
            if p.poll() is not None and p.returncode != 0:
                raise RoleFailed(f"{n} exited with {p.returncode}: " + self.log(n).read_text()[-1500:])

    def wait_http(self, name: str, url: str, timeout: float = 120) -> None:
        self.wait(name, lambda: _answers(url), f"{name} to answer at {url}", timeout)

    def wait(self, name: str | None, cond: Callable[[], bool], what: str, timeout: float = 180) -> None:
        t0 = time.monotonic()
        while not cond():
            self.check_alive(*([name] if name else []))
            if time.monotonic() - t0 > timeout:
                raise RoleFailed(f"gave up waiting for {what}")
            time.sleep(0.2)

    def stop_all(self) -> None:
        for n, p in self.procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def __enter__(self) -> "Roles":
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# dev accounts of the process story (anvil must fund at least up to VERIFIERS[-1])
COMMUNITY, PLATFORM, HONEST, CHEATER, PROVER = 40, 41, 42, 43, 44
VERIFIERS = (45, 46, 47)
LEAKER = 48  # with `leak`: a licensed host whose copy also runs at an unlicensed endpoint


@dataclass
class Story:
    model_id: int = 0
    claim_id: int | None = None
    claim_ids: list = field(default_factory=list)
    usage_batches: int = 0
    answers: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)


def run_story(chain: Chain, roles: Roles, *, base: str = "tiny", fingerprints: int = 2, seed: int = 0,
              leak: bool = False, say: Say = lambda s: None) -> Story:
    """The whole OML story, every role a process (the chain's admin already funded the actors and
    granted PLATFORM_ROLE to dev account `PLATFORM`). With `leak`, a third host (`LEAKER`) serves
    honestly, and its copy also runs at a rogue endpoint (the cheating host process with the
    leaker's key and model directory) that the prover traces to it."""
    from agents.core.signers import dev_signer

    st = Story()
    t0 = time.monotonic()
    addr = {i: dev_signer(i).address for i in (COMMUNITY, PLATFORM, HONEST, CHEATER, PROVER, LEAKER, *VERIFIERS)}
    hosts = (HONEST, CHEATER) + ((LEAKER,) if leak else ())
    out = roles.run("register", ["register", *(x for h in hosts for x in ("--host", addr[h])), "--base", base,
                                 "--fingerprints", str(fingerprints), "--seed", str(seed), *roles.common(COMMUNITY)])
    st.model_id = int(out.split("model ", 1)[1].split()[0])
    home = roles.home
    keys, fps = home / f"model-{st.model_id}-content-keys.json", home / f"model-{st.model_id}-fingerprints.json"
    st.seconds["register"] = time.monotonic() - t0
    say(f"community registered model {st.model_id}: each host's copy encrypted (AES-256-GCM) in the store; "
        f"content keys in {keys.name}, fingerprints in {fps.name}")
    threads = ["--threads", "1"] if base == "tiny" else []  # a tiny model: one thread, no OpenMP spin-waiting
    ports = {n: free_port() for n in ("platform", "honest", "cheater", "leaker", "rogue")}
    plat = f"http://127.0.0.1:{ports['platform']}"
    roles.start("platform", ["platform", "--port", str(ports["platform"]), "--content-keys", str(keys),
                             *roles.common(PLATFORM)])
    roles.wait_http("platform", f"{plat}/v1/health")
    say(f"platform {addr[PLATFORM]} listens at {plat} (process {roles.procs['platform'].pid})")
    vnames = [f"verifier{i + 1}" for i in range(len(VERIFIERS))]
    urls = {HONEST: f"http://127.0.0.1:{ports['honest']}", CHEATER: f"http://127.0.0.1:{ports['cheater']}",
            LEAKER: f"http://127.0.0.1:{ports['leaker']}"}
    rogue = f"http://127.0.0.1:{ports['rogue']}"
    for name, acct in zip(vnames, VERIFIERS):
        roles.start(name, ["verifier", "--platform", plat, "--stake", "--exit-after", "2" if leak else "1",
                           "--poll", "0.3", *roles.common(acct)])
    claims = chain.contract("Claims")
    names = {HONEST: "honest", CHEATER: "cheater", LEAKER: "leaker"}
    for h in hosts:
        roles.run(f"license-{names[h]}", ["license", "--model-id", str(st.model_id), "--platform", plat,
                                         *roles.common(h)])
    say(f"{'all three' if leak else 'both'} hosts staked, signed their licences, got their content keys wrapped to "
        "their own keys (ECIES) from the platform and decrypted their copies")
    roles.start("honest", ["host", "serve", "--model-id", str(st.model_id), "--platform", plat,
                           "--port", str(ports["honest"]), "--usage-every", "1", "--poll", "0.3", *threads,
                           *roles.common(HONEST)])
    roles.start("cheater", ["host", "serve", "--model-id", str(st.model_id), "--platform", plat,
                            "--port", str(ports["cheater"]), "--usage-every", "1", "--poll", "0.3", *threads,
                            *roles.common(CHEATER)], module="agents.oml.adversaries")
    if leak:
        roles.start("leaker", ["host", "serve", "--model-id", str(st.model_id), "--platform", plat,
                               "--port", str(ports["leaker"]), "--usage-every", "1", "--poll", "0.3", *threads,
                               *roles.common(LEAKER)])
        # the leaked copy: the leaker's decrypted model directory served elsewhere, asking nobody
        common = roles.common(LEAKER)
        common[common.index("--home") + 1] = str(roles.home / "rogue")
        roles.start("rogue", ["host", "serve", "--model-id", str(st.model_id), "--platform", plat,
                              "--port", str(ports["rogue"]), "--model-dir",
                              str(roles.home / "models" / f"{st.model_id}-{addr[LEAKER]}"), "--poll", "0.3", *common],
                    module="agents.oml.adversaries")
        roles.wait_http("rogue", f"{rogue}/v1/models")
    for h in hosts:
        roles.wait_http(names[h], f"{urls[h]}/v1/models")
    roles.wait(None, lambda: all(chain.call(claims.functions.verifierSinceBlock(addr[v])) for v in VERIFIERS),
               "verifiers to register")
    chain.mine(1)
    st.seconds["roles_up"] = time.monotonic() - t0
    say(f"honest host at {urls[HONEST]}, cheating host at {urls[CHEATER]} (skips permissions), "
        f"{len(VERIFIERS)} verifiers staked and following claims")
    for i in range(3):  # user traffic, as an OpenAI client sends it
        for h in (HONEST, CHEATER):
            r = httpx.post(f"{urls[h]}/v1/chat/completions", timeout=120, json={
                "model": "oml", "messages": [{"role": "user", "content": f"Hello number {i}, what is new?"}],
                "max_tokens": 8})
            r.raise_for_status()
            st.answers.setdefault(h, []).append(r.json()["choices"][0]["message"]["content"])
    ledger = chain.contract("UsageLedger")
    roles.wait("honest", lambda: chain.call(ledger.functions.batchCount()) > 0, "the honest host's usage batch")
    st.usage_batches = chain.call(ledger.functions.batchCount())
    say("users chatted with both hosts (POST /v1/chat/completions); the honest host posted its usage batch")
    roles.start("prover", ["prover", "--model-id", str(st.model_id), "--platform", plat, "--fingerprints", str(fps),
                           # not the leaker's own service: a probe there gets its key permitted, and the
                           # same first unspent key is what the leak probe sends to the rogue endpoint
                           "--once", *(x for h in (HONEST, CHEATER) for x in ("--target", f"{addr[h]}={urls[h]}")),
                           *(["--leak-endpoint", rogue] if leak else []), "--poll", "0.3", *roles.common(PROVER)])
    roles.wait("prover", lambda: roles.procs["prover"].poll() is not None, "the prover to finish")
    roles.check_alive("prover")
    from .claims import ClaimStatus, read_claim

    st.claim_ids = list(range(1, chain.call(claims.functions.claimCount()) + 1))
    st.claim_id = st.claim_ids[0] if st.claim_ids else None
    if st.claim_id is None:
        say("the prover filed no claim")
        return st
    who = {addr[HONEST]: "the HONEST host", addr[CHEATER]: "the cheating host", addr[LEAKER]: "the leaker"}
    say("prover probed the honest and the cheating host with a key of each one's own subset"
        + (f", and {rogue} (no licensed host's service) with one key of every subset" if leak else ""))
    for cid in st.claim_ids:
        c = read_claim(chain, cid)
        say(f"{'leak claim' if c.is_leak else 'claim'} {cid} filed against {who[c.host]}"
            + (" (its copy answers at the rogue endpoint)" if c.is_leak else ""))
    chain.advance_time(chain.call(claims.functions.challengeWindow()) + 1)
    chain.mine(1)
    say("challenge window over (chain clock moved); the verifier processes review, vote and finalize")
    roles.wait(None, lambda: all(read_claim(chain, c).status != ClaimStatus.OPEN for c in st.claim_ids),
               "the verifiers to decide the claims", 300)
    window = chain.call(chain.contract("ClaimAppeals").functions.appealWindow())
    chain.advance_time(window + 1)
    chain.mine(1)
    say("appeal window over without an appeal (chain clock moved): the verifiers release the held payouts "
        "and settle")
    roles.wait(None, lambda: all(roles.procs[n].poll() is not None for n in vnames), "the verifiers to settle", 300)
    for n in vnames:
        roles.check_alive(n)
    st.seconds["total"] = time.monotonic() - t0
    return st
