"""TrainingLedger gas: per recorded op, per block seal (by batch size), export, fork, claim."""
import os
import statistics
import tempfile
from pathlib import Path

from agents.core.anvil import Anvil
from agents.core.chain import Chain
from agents.core.deploy import deploy_suite
from agents.core.signers import dev_signer
from agents.core.store import cid_of
from ml.ledger.ophash import OpFields, op_hash

from . import write


def _record(chain, c, signer, fid):
    fork = chain.call(c.functions.getFork(fid))
    icid, dcid = cid_of(os.urandom(64)), cid_of(os.urandom(64))  # real CIDv1 strings (59 chars)
    f = OpFields(fid, fork[2] + 1, bytes(fork[5]), icid, dcid, os.urandom(32), os.urandom(32))
    h = op_hash(chain.chain_id, c.address, f)
    return chain.transact(signer, c.functions.recordTraining(fid, icid, dcid, f.delta_commitment, f.state_commitment, h))


def main() -> None:
    with Anvil() as node, tempfile.TemporaryDirectory() as tmp:
        chain = Chain.connect(node.rpc_url, book_path=Path(tmp) / "b.json")
        admin, alice = dev_signer(0), dev_signer(1)
        deploy_suite(chain, admin)
        c = chain.contract("TrainingLedger")
        g = lambda r: r["gasUsed"]  # noqa: E731
        base_rcpt = chain.transact(admin, c.functions.registerBaseModel(cid_of(b"base"), "bench"))
        fork_rcpt = chain.transact(alice, c.functions.forkModel(1))
        first = g(_record(chain, c, alice, 1))
        later = [g(_record(chain, c, alice, 1)) for _ in range(20)]
        chain.transact(admin, c.functions.forkModel(1))
        first_other_user = g(_record(chain, c, admin, 2))
        chain.transact(admin, c.functions.sealBlock())  # seal what is there so batches below are exact
        seal = {}
        for n in (1, 8, 16, 32, 64):
            for _ in range(n):
                _record(chain, c, alice, 1)
            r = chain.transact(admin, c.functions.sealBlock())
            seal[str(n)] = {"gas": g(r), "gas_per_op": round(g(r) / n)}
        export = g(chain.transact(alice, c.functions.exportModel(1, cid_of(b"state"))))
        ids = list(range(1, 21))
        claim20 = g(chain.transact(alice, c.functions.claimTrainingRewards(1, ids)))
        write("ledger_gas", {
            "note": "Anvil (cancun), optimizer 200 runs; CIDs are 59-char CIDv1 strings stored on chain",
            "registerBaseModel": g(base_rcpt),
            "forkModel": g(fork_rcpt),
            "recordTraining_first_op_of_fork": first,
            "recordTraining_first_op_of_new_user": first_other_user,
            "recordTraining_later_ops_median": int(statistics.median(later)),
            "sealBlock_by_batch_size": seal,
            "exportModel": export,
            "claimTrainingRewards_20_ops": claim20,
            "claim_gas_per_op": round(claim20 / 20),
        })


if __name__ == "__main__":
    main()
