"""DAO figures: gas per proposal / vote / vote by signature / execution, per OTK issuance and
consumption and reclaim, per attestation (passing, failing, revoking), and wall time of `loyal dao demo`."""
import statistics
import tempfile
import time
from pathlib import Path

from eth_utils import keccak

from agents.core.anvil import Anvil
from agents.core.chain import Chain
from agents.core.deploy import deploy_suite
from agents.core.signers import dev_signer
from agents.dao.datacenter import Datacenter
from agents.dao.demo import HARDWARE_KEY, MEASUREMENT, OPERATOR, members, run_demo
from agents.dao.governance import Action, Dao

from . import write


def _fresh(tmp: str, node: Anvil) -> Chain:
    chain = Chain.connect(node.rpc_url, book_path=Path(tmp) / "b.json")
    deploy_suite(chain, dev_signer(0))
    return chain


def governance_and_drip_gas() -> dict:
    g = lambda r: r["gasUsed"]  # noqa: E731
    with Anvil(accounts=40) as node, tempfile.TemporaryDirectory() as tmp:
        chain = _fresh(tmp, node)
        dao, m = Dao(chain), members()
        operator, hw_key = dev_signer(OPERATOR), dev_signer(HARDWARE_KEY)
        r = chain.transact(operator, dao.models.functions.submit(keccak(text="w"), "ipfs://w"))
        model_id = next(e for e in chain.decode_events(r) if e.name == "ModelSubmitted").args["modelId"]
        r = chain.transact(operator, dao.hardware.functions.register(hw_key.address, MEASUREMENT, "node"))
        hw_id = next(e for e in chain.decode_events(r) if e.name == "HardwareRegistered").args["hardwareId"]
        actions = [Action.call(dao.models, "approve", model_id, 1, "bench", 10**9, dao.now() + 86400 * 365),
                   Action.call(dao.hardware, "approve", hw_id, 10**9),
                   Action.call(dao.credits, "grant", operator.address, 10**12, b"\0" * 32)]
        dao.advance_past(dao.now())  # proposers are read at clock() - 1: leave the deployment's second
        p = dao.propose(m["policy2"], "review", actions, "bench setup")
        propose_gas = p.gas_used
        dao.advance_past(p.vote_start)
        votes = [g(dao.vote(m[v], p, "for")) for v in ("safety1", "safety2", "policy1", "policy3")]
        sigs = []
        for v in ("safety3", "policy2"):
            sig = dao.sign_ballot(m[v], p, "for")
            sigs.append(g(dao.vote_by_sig(operator, m[v].address, p, "for", sig)))
        dao.advance_past(p.vote_end)
        execute_gas = g(dao.execute(operator, p))

        dc = Datacenter(chain, operator, hw_key, hw_id, MEASUREMENT, secret=b"b" * 32)
        attest_ok = [g(dc.attest()[1]) for _ in range(5)]
        r = chain.transact(operator, dao.issuer.functions.openRun(model_id, hw_id, keccak(b"bench"), 10**6, 100,
                                                                  dao.now() + 86400 * 30, 3600))
        open_gas = g(r)
        run_id = next(e for e in chain.decode_events(r) if e.name == "RunOpened").args["runId"]
        report = dc.run(run_id, interval_s=60, max_intervals=20, wait=chain.advance_time)
        # A key left unconsumed when its run closes: anyone reclaims its units for the budgets.
        r = chain.transact(operator, dao.issuer.functions.openRun(model_id, hw_id, keccak(b"bench2"), 1000, 100,
                                                                  dao.now() + 86400, 3600))
        run2 = next(e for e in chain.decode_events(r) if e.name == "RunOpened").args["runId"]
        dc.attest()
        chain.transact(operator, dao.issuer.functions.drip(run2, keccak(b"k" * 32)))
        chain.transact(operator, dao.issuer.functions.closeRun(run2))
        reclaim_gas = g(chain.transact(dev_signer(1), dao.issuer.functions.reclaim(keccak(b"k" * 32))))
        attest_fail = [g(dc.attest(tampered=True)[1]) for _ in range(3)]  # the 3rd revokes
        return {
            "propose_typed_3_actions": propose_gas,
            "castVote": {"n": len(votes), "median": int(statistics.median(votes)), "max": max(votes)},
            "castVoteBySig": {"n": len(sigs), "median": int(statistics.median(sigs)), "max": max(sigs)},
            "execute_3_actions": execute_gas,
            "openRun": open_gas,
            "drip_otk_issuance": {"n": len(report.gas["drip"]), "median": int(statistics.median(report.gas["drip"])),
                                  "first": report.gas["drip"][0], "max": max(report.gas["drip"])},
            "consume_otk": {"n": len(report.gas["consume"]), "median": int(statistics.median(report.gas["consume"]))},
            "reclaim_unconsumed_otk": reclaim_gas,
            "attest_passing": {"n": len(attest_ok) + len(report.gas["attest"]),
                               "median": int(statistics.median(attest_ok + report.gas["attest"]))},
            "attest_failing": attest_fail[0],
            "attest_failing_and_revoking": attest_fail[2],
        }


def demo_wall_time(runs: int = 3) -> dict:
    times, chain_times = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        with Anvil(accounts=40) as node, tempfile.TemporaryDirectory() as tmp:
            chain = _fresh(tmp, node)
            s = run_demo(chain, log=lambda _: None)
        times.append(time.perf_counter() - t0)
        chain_times.append(s["seconds"])
    return {"runs": runs, "start_deploy_demo_s_median": round(statistics.median(times), 2),
            "demo_flow_s_median": round(statistics.median(chain_times), 2)}


def main() -> None:
    write("dao_gas", {"gas": governance_and_drip_gas(), "demo": demo_wall_time()})


if __name__ == "__main__":
    main()
