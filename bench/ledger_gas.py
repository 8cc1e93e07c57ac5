"""TrainingLedger gas: per recorded op (first of a fork, first of a new user, later ops), per block
seal by batch size, fork, export, ML-DSA key registration and block-signature pointer, a reward
claim (submit + finalize, one call for any number of ops); and, on the same Anvil, the floor a recorded op is compared
with: `HashChainFloor.append` (tests/ledger/HashChainFloor.sol), a contract-enforced hash-chain
append with the same calldata that stores only the new head and emits the op.

`bench/results/ledger_gas_before.json` is this benchmark's run before issue #17 (ops kept in
storage); `ledger_gas.json` is the current one, with that run's figures beside it."""
import json
import os
import statistics
from pathlib import Path

from eth_abi import encode
from eth_utils import keccak

from agents.core.artifacts import DEFAULT_BUILD_DIR
from agents.core.signers import dev_signer
from agents.core.store import cid_of
from agents.core.views import read
from ml.ledger.ophash import OpFields, op_hash

from . import RESULTS, devnet, write


def _record(chain, c, signer, fid):
    fork = read(chain, c.functions.getFork(fid))
    icid, dcid = cid_of(os.urandom(64)), cid_of(os.urandom(64))  # real CIDv1 strings (59 chars)
    f = OpFields(fid, fork.opCount + 1, fork.head, icid, dcid, os.urandom(32), os.urandom(32))
    h = op_hash(chain.chain_id, c.address, f)
    r = chain.transact(signer, c.functions.recordTraining(fid, icid, dcid, f.delta_commitment, f.state_commitment, h))
    return r, f


def _fields_tuple(f: OpFields):
    return (f.prev_op_hash, keccak(f.interaction_cid.encode()), keccak(f.delta_cid.encode()), f.delta_commitment,
            f.state_commitment)


def _floor(chain, signer, n: int) -> list[int]:
    """Gas of `n` appends to one HashChainFloor chain (after its start)."""
    art = json.loads((DEFAULT_BUILD_DIR / "HashChainFloor.sol" / "HashChainFloor.json").read_text())
    factory = chain.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]["object"])
    addr = chain.transact(signer, factory.constructor())["contractAddress"]
    floor = chain.w3.eth.contract(address=addr, abi=art["abi"])
    head = keccak(b"genesis")
    chain.transact(signer, floor.functions.start(1, head))
    out = []
    for _ in range(n):
        icid, dcid, dc, sc = cid_of(os.urandom(64)), cid_of(os.urandom(64)), os.urandom(32), os.urandom(32)
        h = keccak(encode(["bytes32"] * 5, [head, keccak(icid.encode()), keccak(dcid.encode()), dc, sc]))
        out.append(chain.transact(signer, floor.functions.append(1, icid, dcid, dc, sc, h))["gasUsed"])
        head = h
    return out


def _claim(chain, c, owner, op_id, op: OpFields, tmp: Path):
    """Submit a claim for ops 1..op.seq of fork 1 with a staked evaluator's attestation, then finalize it."""
    from agents.core.token import Stakes
    from agents.ledger import rewards
    from agents.ledger.agent import UserAgent

    evaluator = dev_signer(4)
    chain.transact(dev_signer(0), chain.contract("LoyalToken").functions.transfer(evaluator.address, 10**21))
    Stakes(chain).stake(evaluator, 10**21)
    agent = UserAgent(chain, evaluator, None, None, tmp / "evaluator")
    cid = cid_of(b"held-out set")
    att = rewards.sign(agent, rewards.Attestation(
        evaluator.address, 1, 1, op.seq, op_hash(chain.chain_id, c.address, op), keccak(cid.encode()),
        5 * 10**9, 4 * 10**9, cid, b"", chain.chain_id, c.address))
    submit = chain.transact(owner, c.functions.submitRewardClaim(att.as_arg(), att.signature, cid, op_id,
                                                                 _fields_tuple(op)))
    chain.advance_time(read(chain, c.functions.qualityPolicy()).challengeWindow)
    return submit, chain.transact(owner, c.functions.finalizeRewardClaim(1))


def main() -> None:
    with devnet() as (chain, tmp, _):
        admin, alice = dev_signer(0), dev_signer(1)
        c = chain.contract("TrainingLedger")
        g = lambda r: r["gasUsed"]  # noqa: E731
        base_rcpt = chain.transact(admin, c.functions.registerBaseModel(cid_of(b"base"), "bench"))
        fork_rcpt = chain.transact(alice, c.functions.forkModel(1))
        first = g(_record(chain, c, alice, 1)[0])
        later = [g(_record(chain, c, alice, 1)[0]) for _ in range(20)]
        chain.transact(admin, c.functions.forkModel(1))
        first_other_user = g(_record(chain, c, admin, 2)[0])
        chain.transact(admin, c.functions.sealBlock())  # seal what is there so batches below are exact
        seal = {}
        for n in (1, 8, 16, 32, 64):
            for _ in range(n):
                last_rcpt, last = _record(chain, c, alice, 1)
            r = chain.transact(admin, c.functions.sealBlock())
            seal[str(n)] = {"gas": g(r), "gas_per_op": round(g(r) / n)}
        export = g(chain.transact(alice, c.functions.exportModel(1, cid_of(b"state"), _fields_tuple(last))))
        last_id = [e for e in chain.decode_events(last_rcpt) if e.name == "TrainingRecorded"][0].args["opId"]
        key_rcpt = chain.transact(alice, c.functions.registerBlockKey(os.urandom(32), cid_of(os.urandom(1952))))
        sig_rcpt = chain.transact(alice, c.functions.submitBlockSignature(2, cid_of(os.urandom(3309))))
        claim_rcpt, final_rcpt = _claim(chain, c, alice, last_id, last, tmp)
        floor = _floor(chain, admin, 21)
        record_later = int(statistics.median(later))
        floor_later = int(statistics.median(floor[1:]))
        before = json.loads((RESULTS / "ledger_gas_before.json").read_text())
        write("ledger_gas", {
            "note": ("Anvil (cancun), optimizer 200 runs; CIDs are 59-char CIDv1 strings, in calldata and events "
                     "(not stored); floor = HashChainFloor.append on the same chain"),
            "registerBaseModel": g(base_rcpt),
            "forkModel": g(fork_rcpt),
            "recordTraining_first_op_of_fork": first,
            "recordTraining_first_op_of_new_user": first_other_user,
            "recordTraining_later_ops_median": record_later,
            "floor_hash_chain_append_median": floor_later,
            "recordTraining_over_floor": round(record_later / floor_later, 2),
            "sealBlock_by_batch_size": seal,
            "exportModel": export,
            "registerBlockKey": g(key_rcpt),
            "submitBlockSignature": g(sig_rcpt),
            f"submitRewardClaim_{last.seq}_ops": g(claim_rcpt),
            "finalizeRewardClaim": g(final_rcpt),
            "before": {k: before[k] for k in ("forkModel", "recordTraining_first_op_of_fork",
                                              "recordTraining_first_op_of_new_user",
                                              "recordTraining_later_ops_median", "sealBlock_by_batch_size",
                                              "exportModel", "claim_gas_per_op")},
        })


if __name__ == "__main__":
    main()
