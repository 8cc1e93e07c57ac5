"""OML roles as processes: `loyal oml demo --tiny` wall time cold (empty $LOYAL_HOME: copies built)
and warm (copies cached), one OS process per role; the latency of a host process's answer over HTTP
(`/v1/completions` and `/v1/chat/completions`, with the platform's permission round trip) against
the same copy called in process; AES-256-GCM seal/unseal throughput and ECIES key wrapping, the
cost of licensed access to weights. `python -m bench.oml_roles [--base smollm2]`."""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from agents.core.anvil import Anvil
from agents.core.chain import Chain
from agents.core.deploy import deploy_suite
from agents.core.signers import dev_signer
from agents.oml import processes as P
from agents.oml import encrypted_copies as sealed

from . import write

ROOT = Path(__file__).resolve().parents[1]


def demo_wall(home: Path, base: str) -> float:
    env = {**os.environ, "LOYAL_HOME": str(home), "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    args = ["--tiny"] if base == "tiny" else []
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "agents.cli", "oml", "demo", *args, "--fingerprints", "2"], env=env,
                       cwd=ROOT, capture_output=True, text=True)
    dt = time.monotonic() - t
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:] + r.stdout[-2000:])
    return dt


def latency(base: str, n: int = 20, threads: int = 1) -> dict:
    """`threads` torch threads in the host process and for the in-process comparison (1: on a loaded
    2-core box, two OpenMP threads spin-wait and a tiny model's answer takes ~10x longer)."""
    import torch

    from ml.oml import copies as mc

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="loyal-bench-") as tmp, Anvil(accounts=64) as node:
        home = Path(tmp)
        chain = Chain.connect(node.rpc_url, book_path=home / "31337.json")
        admin = dev_signer(0)
        deploy_suite(chain, admin)
        token, ledger = chain.contract("LoyalToken"), chain.contract("UsageLedger")
        for i in (P.COMMUNITY, P.PLATFORM, P.HONEST):
            chain.transact(admin, token.functions.mint(dev_signer(i).address, 10_000 * 10**18))
        chain.transact(admin, ledger.functions.grantRole(chain.call(ledger.functions.PLATFORM_ROLE()),
                                                         dev_signer(P.PLATFORM).address))
        with P.Roles(node.rpc_url, chain.book.path, home) as roles:
            out = roles.run("register", ["register", "--host", dev_signer(P.HONEST).address, "--base", base,
                                         "--fingerprints", "2", *roles.common(P.COMMUNITY)])
            model = int(out.split("model ", 1)[1].split()[0])
            port, hport = P.free_port(), P.free_port()
            plat = f"http://127.0.0.1:{port}"
            roles.start("platform", ["platform", "--port", str(port), "--content-keys",
                                     str(home / f"model-{model}-content-keys.json"), *roles.common(P.PLATFORM)])
            roles.wait_http("platform", f"{plat}/v1/health")
            t = time.monotonic()
            roles.run("license", ["license", "--model-id", str(model), "--platform", plat, *roles.common(P.HONEST)])
            license_s = time.monotonic() - t
            url = f"http://127.0.0.1:{hport}"
            t = time.monotonic()
            roles.start("host", ["host", "serve", "--model-id", str(model), "--platform", plat, "--port", str(hport),
                                 "--threads", str(threads), *roles.common(P.HONEST)])
            roles.wait_http("host", f"{url}/v1/models")
            start_s = time.monotonic() - t
            res = {"torch_threads": threads, "license_command_s": round(license_s, 2),
                   "host_start_to_first_models_s": round(start_s, 2)}
            with httpx.Client(timeout=120) as c:
                for kind, path, body in (
                        ("completions", "/v1/completions", lambda i: {"prompt": f"Hello number {i}", "max_tokens": 8}),
                        ("chat", "/v1/chat/completions", lambda i: {
                            "messages": [{"role": "user", "content": f"Hello number {i}"}], "max_tokens": 8})):
                    ms = []
                    for i in range(n):
                        t = time.perf_counter()
                        c.post(url + path, json=body(i)).raise_for_status()
                        ms.append(1000 * (time.perf_counter() - t))
                    res[f"{kind}_ms_median"] = round(statistics.median(ms), 1)
                    res[f"{kind}_ms_p90"] = round(sorted(ms)[int(0.9 * n) - 1], 1)
            lm = mc.load((home / "models" / f"{model}-{dev_signer(P.HONEST).address}" / "model.safetensors").read_bytes())
            ms = []
            for i in range(n):
                t = time.perf_counter()
                lm.complete(f"Hello number {i}", 8)
                ms.append(1000 * (time.perf_counter() - t))
            res["in_process_generate_ms_median"] = round(statistics.median(ms), 1)
            return res


def crypto(mb: int = 64) -> dict:
    from eth_account import Account
    from eth_account.messages import encode_defunct

    blob = os.urandom(mb << 20)
    key = sealed.new_content_key()
    t = time.perf_counter()
    ct = sealed.seal(blob, key)
    seal_s = time.perf_counter() - t
    t = time.perf_counter()
    sealed.unseal(ct, key)
    unseal_s = time.perf_counter() - t
    acct = Account.create()
    digest = b"\x01" * 32
    sig = bytes(acct.sign_message(encode_defunct(primitive=digest)).signature)
    t = time.perf_counter()
    for _ in range(200):
        sealed.wrap_key(sealed.public_key_of(acct.address, digest, sig), key)
    wrap_ms = 1000 * (time.perf_counter() - t) / 200
    w = sealed.wrap_key(sealed.public_key_of(acct.address, digest, sig), key)
    t = time.perf_counter()
    for _ in range(200):
        sealed.unwrap_key(bytes(acct.key), w)
    unwrap_ms = 1000 * (time.perf_counter() - t) / 200
    return {"blob_MB": mb, "seal_MB_per_s": round(mb / seal_s), "unseal_MB_per_s": round(mb / unseal_s),
            "ciphertext_overhead_bytes": len(ct) - len(blob), "recover_pubkey_and_wrap_ms": round(wrap_ms, 3),
            "unwrap_ms": round(unwrap_ms, 3), "wrapped_key_bytes": len(w)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="tiny", choices=("tiny", "smollm2"))
    ap.add_argument("--skip-demo", action="store_true", help="keep the demo figures of the last results file")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the measured host process")
    a = ap.parse_args()
    name = "oml_roles" if a.base == "tiny" else f"oml_roles_{a.base}"
    res = {"base": a.base, "crypto": crypto(), "host_latency": latency(a.base, threads=a.threads)}
    if a.skip_demo:
        import json

        from . import RESULTS

        old = RESULTS / f"{name}.json"
        if old.exists():
            res.update({k: v for k, v in json.loads(old.read_text()).items() if k.startswith("demo_")})
    else:
        with tempfile.TemporaryDirectory(prefix="loyal-bench-home-") as home:
            res["demo_processes_cold_s"] = round(demo_wall(Path(home), a.base), 1)
            res["demo_processes_warm_s"] = round(demo_wall(Path(home), a.base), 1)
    write(name, res)


if __name__ == "__main__":
    main()
