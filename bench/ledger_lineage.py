"""Verify time of a 3-generation lineage with 100 ops (tiny random GPT-2): alice's fork (40 ops,
exported at op 40), bob's fork of it at op 40 (30 ops, exported), carol's fork of bob's at op 30
(30 ops). Every owner registers an ML-DSA-65 key and signs its blocks; `verify` on carol's fork
rebuilds it from the base through both fork points (100 deltas decrypted, commitments, exports
compared byte for byte), proves the 100 ops in their blocks on and off chain and checks every
block signature of the three owners."""
import os
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from agents.core.signers import dev_signer  # noqa: E402
from agents.core.store import LocalStore  # noqa: E402
from agents.ledger.agent import UserAgent  # noqa: E402
from ml.ledger.base import load_base  # noqa: E402
from ml.ledger.blocksig import BlockSigningKey  # noqa: E402
from ml.ledger.crypto import UserKey  # noqa: E402
from ml.ledger.tiny import make_tiny_lm  # noqa: E402
from ml.ledger.trainer import Interaction  # noqa: E402

from . import devnet, write  # noqa: E402

PLAN = ((1, 40), (2, 30), (3, 30))  # (dev account, ops) per generation


def main() -> None:
    warnings.filterwarnings("ignore")
    with devnet() as (chain, tmp, _):
        model_dir = make_tiny_lm(tmp / "tiny")
        store = LocalStore(tmp / "store")
        admin = UserAgent(chain, dev_signer(0), store, None, tmp / "admin")
        base_id, _ = admin.register_base(load_base(model_dir)[0], "tiny")
        agents, forks = [], []
        t0 = time.perf_counter()
        for g, (account, n) in enumerate(PLAN):
            a = UserAgent(chain, dev_signer(account), store, UserKey.generate(), tmp / f"u{account}",
                          block_key=BlockSigningKey.generate())
            a.register_block_key()
            for prev, fid in zip(agents, forks):  # every earlier generation's key, to train on and verify
                a.add_fork_key(fid, prev.share_fork_key(fid))
            fid = a.fork(base_id) if g == 0 else a.fork_from(forks[-1], PLAN[g - 1][1])
            a.attach(fid, *load_base(model_dir), lr=0.5)
            for i in range(n):
                a.train(fid, Interaction(f"gen {g + 1} question {i}", f"answer {i} from generation {g + 1}"))
            a.export(fid)
            agents.append(a)
            forks.append(fid)
        build_s = time.perf_counter() - t0
        admin.ledger.seal_all(dev_signer(0))
        for a, fid in zip(agents, forks):
            a.sign_blocks(fid)
        carol, c = agents[-1], forks[-1]
        t0 = time.perf_counter()
        report = carol.verify(c)
        verify_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        carol.rebuild_lineage(c)
        rebuild_s = time.perf_counter() - t0
        write("ledger_lineage", {
            "model": "random-init GPT-2 (tiny), LoRA r=4",
            "generations": len(PLAN),
            "lineage_ops": report["lineage_ops"],
            "blocks": report["blocks"],
            "blocks_signed": report["blocks_signed"],
            "verify_s": round(verify_s, 2),
            "rebuild_lineage_only_s": round(rebuild_s, 2),
            "train_record_export_s": round(build_s, 2),
            "verify_covers": ("3 genesis hashes, 100 links and op hashes, 100 deltas fetched + AES-GCM + commitments, "
                              "2 fork-point exports + the final export compared byte for byte, 100 Merkle proofs "
                              "(local + verifyOpInclusion), ML-DSA-65 signatures of every block by each owner"),
            "caveat": "2 shared CPU cores, CPU only; Anvil automine",
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        })


if __name__ == "__main__":
    main()
