"""Ledger agent throughput: ops/s one user agent sustains (SFT step + encrypt + store + record on
Anvil), and the time to verify the op chain (rebuild + checks + Merkle proofs). Default: a tiny
random GPT-2 and 100 ops (`ledger_agent.json`); `--model smollm2 --ops 20` runs the same flow on
SmolLM2-135M-Instruct (`ledger_agent_smollm2.json`, also `python -m bench ledger_smollm2`)."""
import argparse
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from agents.core.signers import dev_signer  # noqa: E402
from agents.core.store import LocalStore  # noqa: E402
from agents.ledger.agent import UserAgent  # noqa: E402
from ml.ledger.base import load_base  # noqa: E402
from ml.ledger.blocksig import BlockSigningKey, verify_block  # noqa: E402
from ml.ledger.crypto import UserKey  # noqa: E402
from ml.ledger.rebuild import RecordedOp, rebuild  # noqa: E402
from ml.ledger.trainer import ForkTrainer, Interaction  # noqa: E402
from ml.ledger.tiny import make_tiny_lm  # noqa: E402

from . import devnet, write  # noqa: E402


def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as a float32 Hugging Face directory (dequantised from the GGUF once)."""
    from ml.lm import load_smollm2, smollm2_cache_dir

    load_smollm2()
    return smollm2_cache_dir()


def mldsa_timings(chain_id: int, ledger: str, n: int = 200) -> dict:
    """ML-DSA-65 (pqcrypto) sign and verify of one block root, median of `n`."""
    import statistics

    key = BlockSigningKey.generate()
    root = os.urandom(32)
    sign, verify = [], []
    for b in range(1, n + 1):
        t0 = time.perf_counter()
        sig = key.sign_block(chain_id, ledger, b, root)
        t1 = time.perf_counter()
        ok = verify_block(key.public_key, sig, chain_id, ledger, b, root)
        t2 = time.perf_counter()
        assert ok
        sign.append(t1 - t0)
        verify.append(t2 - t1)
    return {"sign_ms_median": round(1e3 * statistics.median(sign), 3),
            "verify_ms_median": round(1e3 * statistics.median(verify), 3), "samples": n,
            "signature_bytes": len(sig), "public_key_bytes": len(key.public_key)}


def measure(model: str = "tiny", n_ops: int = 100, lr: float = 0.5) -> dict:
    warnings.filterwarnings("ignore")
    with devnet() as (chain, tmp, _):
        model_dir = make_tiny_lm(tmp / "tiny") if model == "tiny" else smollm2_dir()
        store = LocalStore(tmp / "store")
        admin = UserAgent(chain, dev_signer(0), store, None, tmp / "admin")
        base_model, _ = load_base(model_dir)
        n_params = sum(p.numel() for p in base_model.parameters())
        base_id, _ = admin.register_base(base_model, model_dir.name)
        alice = UserAgent(chain, dev_signer(1), store, UserKey.generate(), tmp / "alice")
        fid = alice.fork(base_id)
        trainer = alice.attach(fid, *load_base(model_dir), lr=lr)
        its = [Interaction(f"question number {i}: what is loyal?", f"community owned ai, answer {i}") for i in range(n_ops)]

        t0 = time.perf_counter()
        results = [alice.train(fid, it) for it in its]
        train_record_s = time.perf_counter() - t0

        solo = ForkTrainer(*load_base(model_dir), lr=lr)
        t0 = time.perf_counter()
        for it in its:
            solo.step(it)
        step_only_s = time.perf_counter() - t0

        blocks = admin.ledger.seal_all(dev_signer(0))
        alice.export(fid)
        alice._block_key = BlockSigningKey.generate()
        alice.register_block_key()
        t0 = time.perf_counter()
        signed = alice.sign_blocks(fid)
        sign_blocks_s = time.perf_counter() - t0
        mldsa = mldsa_timings(chain.chain_id, alice.ledger.address)
        t0 = time.perf_counter()
        report = alice.verify(fid)
        verify_s = time.perf_counter() - t0

        f = alice.ledger.fork(fid)
        ops = [RecordedOp(o.op_id, o.fields(), o.op_hash) for o in alice.ledger.fork_ops(fid)]
        t0 = time.perf_counter()
        rebuild(chain.chain_id, alice.ledger.address, f.genesis, ops, store.get, alice.fork_key(fid))
        rebuild_s = time.perf_counter() - t0

        delta_bytes = len(store.get(results[-1].delta_cid))
        adapter = sum(t.numel() for t in trainer.state.values())
        return {
            "model": (f"random-init GPT-2, {n_params} params, LoRA r=4 on c_attn ({adapter} adapter params)"
                      if model == "tiny" else
                      f"SmolLM2-135M-Instruct (float32), {n_params} params, LoRA r=4, peft default targets "
                      f"({adapter} adapter params)"),
            "ops": n_ops,
            "train_and_record_s": round(train_record_s, 2),
            "ops_per_s": round(n_ops / train_record_s, 2),
            "sft_step_only_ops_per_s": round(n_ops / step_only_s, 2),
            "delta_ciphertext_bytes": delta_bytes,
            "record_gas_mean": round(sum(r.gas_used for r in results) / n_ops),
            "verify_s": round(verify_s, 2),
            "verify_breakdown": "rebuild (fetch, AES-GCM, commitments, fold) + export check + Merkle proof per op",
            "rebuild_only_s": round(rebuild_s, 2),
            "sealed_ops_proven": report["sealed_ops_proven"],
            "blocks": len(blocks),
            "sign_blocks_s": round(sign_blocks_s, 3),
            "sign_blocks_per_block_s": round(sign_blocks_s / max(1, len(signed)), 3),
            "sign_blocks_breakdown": ("per block: decrypt and check each of the fork's ops in it, ML-DSA-65 sign, "
                                      "verify, store, submitBlockSignature transaction"),
            "mldsa65": mldsa,
            "caveat": "2 shared CPU cores (other agents running), CPU only; Anvil automine",
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        }


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.ledger_agent")
    ap.add_argument("--model", choices=["tiny", "smollm2"], default="tiny")
    ap.add_argument("--ops", type=int, default=None, help="ops to record (default 100 tiny, 20 smollm2)")
    ap.add_argument("--lr", type=float, default=None)
    a = ap.parse_args()
    smol = a.model == "smollm2"
    result = measure(a.model, a.ops or (20 if smol else 100), a.lr or (0.05 if smol else 0.5))
    write("ledger_agent_smollm2" if smol else "ledger_agent", result)


if __name__ == "__main__":
    main()
