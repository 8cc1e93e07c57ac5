"""Ledger agent throughput: ops/s one user agent sustains (SFT step + encrypt + store + record on
Anvil) on a tiny GPT-2, and the time to verify a 100-op chain (rebuild + checks + Merkle proofs)."""
import os
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from agents.core.anvil import Anvil  # noqa: E402
from agents.core.chain import Chain  # noqa: E402
from agents.core.deploy import deploy_suite  # noqa: E402
from agents.core.signers import dev_signer  # noqa: E402
from agents.core.store import LocalStore  # noqa: E402
from agents.ledger.agent import UserAgent  # noqa: E402
from ml.ledger.base import load_base  # noqa: E402
from ml.ledger.crypto import UserKey  # noqa: E402
from ml.ledger.rebuild import RecordedOp, rebuild  # noqa: E402
from ml.ledger.trainer import ForkTrainer, Interaction  # noqa: E402
from ml.ledger.tiny import make_tiny_lm  # noqa: E402

from . import write  # noqa: E402

N_OPS = 100


def main() -> None:
    warnings.filterwarnings("ignore")
    with Anvil() as node, tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = make_tiny_lm(tmp / "tiny")
        chain = Chain.connect(node.rpc_url, book_path=tmp / "b.json")
        deploy_suite(chain, dev_signer(0))
        store = LocalStore(tmp / "store")
        admin = UserAgent(chain, dev_signer(0), store, None, tmp / "admin")
        model, tok = load_base(model_dir)
        n_params = sum(p.numel() for p in model.parameters())
        base_id, _ = admin.register_base(model, "tiny")
        alice = UserAgent(chain, dev_signer(1), store, UserKey.generate(), tmp / "alice")
        fid = alice.fork(base_id)
        trainer = alice.attach(fid, *load_base(model_dir), lr=0.5)
        its = [Interaction(f"question number {i}: what is loyal?", f"community owned ai, answer {i}") for i in range(N_OPS)]

        t0 = time.perf_counter()
        results = [alice.train(fid, it) for it in its]
        train_record_s = time.perf_counter() - t0

        solo = ForkTrainer(*load_base(model_dir), lr=0.5)
        t0 = time.perf_counter()
        for it in its:
            solo.step(it)
        step_only_s = time.perf_counter() - t0

        admin.ledger.seal_all(dev_signer(0))
        alice.export(fid)
        t0 = time.perf_counter()
        report = alice.verify(fid)
        verify_s = time.perf_counter() - t0

        f = alice.ledger.fork(fid)
        ops = [RecordedOp(o.op_id, o.fields(), o.op_hash) for o in alice.ledger.fork_ops(fid)]
        t0 = time.perf_counter()
        rebuild(chain.chain_id, alice.ledger.address, f.genesis, ops, store.get, alice.key)
        rebuild_s = time.perf_counter() - t0

        delta_bytes = len(store.get(results[-1].delta_cid))
        write("ledger_agent", {
            "model": f"random-init GPT-2, {n_params} params, LoRA r=4 on c_attn "
                     f"({sum(t.numel() for t in trainer.state.values())} adapter params)",
            "ops": N_OPS,
            "train_and_record_s": round(train_record_s, 2),
            "ops_per_s": round(N_OPS / train_record_s, 2),
            "sft_step_only_ops_per_s": round(N_OPS / step_only_s, 2),
            "delta_ciphertext_bytes": delta_bytes,
            "record_gas_mean": round(sum(r.gas_used for r in results) / N_OPS),
            "verify_100_ops_s": round(verify_s, 2),
            "verify_breakdown": "rebuild (fetch, AES-GCM, commitments, fold) + export check + Merkle proof per op",
            "rebuild_only_100_ops_s": round(rebuild_s, 2),
            "sealed_ops_proven": report["sealed_ops_proven"],
            "caveat": "2 shared CPU cores (other agents running), CPU only; Anvil automine",
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        })


if __name__ == "__main__":
    main()
