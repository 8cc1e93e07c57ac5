"""DAO figures: gas per proposal / vote / vote by signature / execution, against a stock OpenZeppelin
Governor on the same actions (tests/dao/OzGovernorBaseline.sol: settings, simple counting,
ERC20Votes, quorum fraction; no types, no allow-lists); gas of each emergency power executed by an
Emergency vote; credit purchase; OTK issuance, consumption, reclaim; attestations, challenge
answers and missed challenges; the Ape scripts' wall time per call; wall time of `loyal dao demo`."""
import json
import os
import statistics
import subprocess
import time

from eth_utils import keccak

from agents.core.artifacts import REPO
from agents.core.anvil import Anvil
from agents.core.chain import Chain
from agents.core.signers import dev_signer
from agents.core.token import Token
from agents.dao.datacenter import Datacenter
from agents.dao.demo import HARDWARE_KEY, MEASUREMENT, OPERATOR, members, run_demo
from agents.dao.governance import Action, Dao

from . import devnet, write

REPORTS = [(b"\x11" * 32, b"\x22" * 32), (b"\x33" * 32, b"\x44" * 32), (b"\x55" * 32, b"\x66" * 32)]
VOTERS = ("safety1", "safety2", "policy1", "policy3")  # direct votes; safety3, policy2 by signature


def _g(r) -> int:
    return r["gasUsed"]


def _med(xs: list[int]) -> dict:
    return {"n": len(xs), "median": int(statistics.median(xs)), "max": max(xs)}


def oz_baseline(chain: Chain, dao: Dao) -> dict:
    """The same 3 actions (PersonnelRegistry.fileReport, open to anyone) through a stock OZ Governor."""
    m = members()
    holders = [m[v].address for v in (*VOTERS, "safety3", "policy2")]
    art = json.loads((REPO / "build/forge/OzGovernorBaseline.sol/OzVotesToken.json").read_text())
    factory = chain.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]["object"])
    token = chain.w3.eth.contract(address=chain.transact(dev_signer(0), factory.constructor(holders))["contractAddress"],
                                  abi=art["abi"])
    art = json.loads((REPO / "build/forge/OzGovernorBaseline.sol/OzGovernorBaseline.json").read_text())
    factory = chain.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]["object"])
    gov = chain.w3.eth.contract(address=chain.transact(dev_signer(0), factory.constructor(token.address))[
        "contractAddress"], abi=art["abi"])
    for v in (*VOTERS, "safety3", "policy2"):
        chain.transact(m[v], token.functions.delegate(m[v].address))
    dao.advance_past(dao.now())
    targets = [dao.personnel.address] * 3
    calldatas = [bytes.fromhex(dao.personnel.encode_abi("fileReport", args=list(r))[2:]) for r in REPORTS]
    r = chain.transact(m["policy2"], gov.functions.propose(targets, [0] * 3, calldatas, "baseline"))
    pid = chain.w3.codec.decode(["uint256"], r["logs"][0]["data"][:32])[0]
    propose = _g(r)
    dao.advance_past(chain.call(gov.functions.proposalSnapshot(pid)))
    votes = [_g(chain.transact(m[v], gov.functions.castVote(pid, 1))) for v in VOTERS]
    dao.advance_past(chain.call(gov.functions.proposalDeadline(pid)))
    execute = _g(chain.transact(m["policy1"], gov.functions.execute(targets, [0] * 3, calldatas, keccak(text="baseline"))))
    return {"propose_3_actions": propose, "castVote": _med(votes), "execute_3_actions": execute}


def governance_gas(chain: Chain, dao: Dao) -> dict:
    m = members()
    operator = dev_signer(OPERATOR)
    dao.advance_past(dao.now())
    actions = [Action.call(dao.personnel, "fileReport", *r) for r in REPORTS]
    p = dao.propose(m["policy2"], "review", actions, "bench: three reports")
    dao.advance_past(p.vote_start)
    votes = [_g(dao.vote(m[v], p, "for")) for v in VOTERS]
    sigs = [_g(dao.vote_by_sig(operator, m[v].address, p, "for", dao.sign_ballot(m[v], p, "for")))
            for v in ("safety3", "policy2")]
    dao.advance_past(p.vote_end)
    return {"propose_3_actions": p.gas_used, "castVote": _med(votes), "castVoteBySig": _med(sigs),
            "execute_3_actions": _g(dao.execute(operator, p))}


def compute_gas(chain: Chain, dao: Dao) -> dict:
    m = members()
    operator, hw_key = dev_signer(OPERATOR), dev_signer(HARDWARE_KEY)
    token = Token(chain)
    dao.advance_past(dao.now())  # proposers are read at clock() - 1
    r = chain.transact(operator, dao.models.functions.submit(keccak(text="w"), "ipfs://w"))
    model_id = next(e for e in chain.decode_events(r) if e.name == "ModelSubmitted").args["modelId"]
    r = chain.transact(operator, dao.models.functions.submit(keccak(text="w2"), "ipfs://w2"))
    model2 = next(e for e in chain.decode_events(r) if e.name == "ModelSubmitted").args["modelId"]
    r = chain.transact(operator, dao.hardware.functions.register(hw_key.address, MEASUREMENT, "node"))
    hw_id = next(e for e in chain.decode_events(r) if e.name == "HardwareRegistered").args["hardwareId"]
    until = dao.now() + 86400 * 365
    p = dao.propose(m["policy2"], "review", [
        Action.call(dao.models, "approve", model_id, 2, 0, "bench", 10**9, until),
        Action.call(dao.models, "approve", model2, 2, 0, "bench", 10**9, until),
        Action.call(dao.hardware, "approve", hw_id, 10**9)], "bench setup")
    dao.pass_proposal(p, [m["policy1"], m["policy2"]], operator)

    token.transfer(dev_signer(0), operator.address, 10_000 * 10**18)
    price = chain.call(dao.credits.functions.creditPrice())
    approve = _g(token.approve(operator, dao.credits.address, 10**6 * price))
    buy = _g(chain.transact(operator, dao.credits.functions.buy(10**6, price)))

    dc = Datacenter(chain, operator, hw_key, hw_id, MEASUREMENT, secret=b"b" * 32)
    attest_ok = [_g(dc.attest()[1]) for _ in range(5)]
    r = chain.transact(operator, dao.issuer.functions.openRun(
        (model_id, hw_id, keccak(b"bench"), 2, 0, "bench", 10**6, 100, dao.now() + 86400 * 30, 3600)))
    open_gas = _g(r)
    run_id = next(e for e in chain.decode_events(r) if e.name == "RunOpened").args["runId"]
    report = dc.run(run_id, interval_s=60, max_intervals=24, wait=chain.advance_time)
    # the answers to the challenges the drip opened are attestations with the challenge's seed
    answers = [_g(chain.w3.eth.get_transaction_receipt(e.tx)) for e in _events(chain, "ChallengeAnswered")]
    # a missed challenge, counted by anyone after the window
    missed = _missed_challenge(chain, dao, dc, model_id)

    # A key left unconsumed when its run closes: anyone reclaims its units for the budgets.
    run2 = dc.open_run(model_id, b"bench2", 1000, 100, 86400, 3600, tier=2)
    dc.attest()
    chain.transact(operator, dao.issuer.functions.drip(run2, keccak(b"k" * 32)))
    if bytes(dc.health().challenge) != b"\0" * 32:
        dc.attest()
    chain.transact(operator, dao.issuer.functions.closeRun(run2))
    reclaim_gas = _g(chain.transact(dev_signer(1), dao.issuer.functions.reclaim(keccak(b"k" * 32))))

    emergency = _emergency_gas(chain, dao, dc, model2)
    attest_fail = []  # failing attestations until the unit is revoked (the missed challenge counted one)
    while chain.call(dao.hardware.functions.statusOf(dc.hardware_id)) == 2:
        attest_fail.append(_g(dc.attest(tampered=True)[1]))
    return {
        "approve_for_credits": approve,
        "buy_credits": buy,
        "openRun": open_gas,
        "drip_otk_issuance": {**_med(report.gas["drip"]), "first": report.gas["drip"][0]},
        "consume_otk": _med(report.gas["consume"]),
        "reclaim_unconsumed_otk": reclaim_gas,
        "attest_passing": _med(attest_ok + report.gas["attest"]),
        "challenge_answer": _med(answers) if answers else None,
        "challenges_in_24_rations": report.challenges,
        "expire_missed_challenge": missed,
        "attest_failing": attest_fail[0],
        "attest_failing_and_revoking": attest_fail[-1],
        "emergency_execute": emergency,
    }


def _events(chain: Chain, name: str):
    from agents.core.events import fetch_events

    return fetch_events(chain, names=[name])


def _missed_challenge(chain: Chain, dao: Dao, dc: Datacenter, model_id: int) -> int:
    """Draw rations until one opens a challenge, let its window pass, count it as a failure."""
    run_id = dc.open_run(model_id, b"missed", 10_000, 100, 86400, 86400 * 30, tier=2)
    for i in range(64):
        dc.attest()
        chain.transact(dc.operator, dao.issuer.functions.drip(run_id, keccak(dc.derive_key(run_id, i))))
        if bytes(dc.health().challenge) != b"\0" * 32:
            break
    window = chain.call(dao.hardware.functions.challengeWindow())
    chain.advance_time(window + 1)
    return _g(chain.transact(dev_signer(1), dao.hardware.functions.expireChallenge(dc.hardware_id)))


def _emergency_gas(chain: Chain, dao: Dao, dc: Datacenter, model_id: int) -> dict:
    """Gas of executing a one-action Emergency proposal, per emergency power."""
    m = members()
    run_id = dc.open_run(model_id, b"emergency", 1000, 100, 86400, 86400 * 30, tier=2)
    out = {}
    for name, action in (
            ("haltRun", Action.call(dao.issuer, "haltRun", run_id)),
            ("freezeBudget_model", Action.call(dao.models, "freezeBudget", model_id, b"\1" * 32)),
            ("cutBudget_model", Action.call(dao.models, "cutBudget", model_id, 10**6)),
            ("revoke_model", Action.call(dao.models, "revoke", model_id, b"\2" * 32)),
            ("freezeBudget_hardware", Action.call(dao.hardware, "freezeBudget", dc.hardware_id, b"\3" * 32)),
            ("cutBudget_hardware", Action.call(dao.hardware, "cutBudget", dc.hardware_id, 10**8)),
            ("unfreezeBudget_hardware", Action.call(dao.hardware, "unfreezeBudget", dc.hardware_id))):
        p = dao.propose(m["safety3"], "emergency", [action], f"bench: {name}")
        dao.advance_past(p.vote_start)
        dao.vote(m["safety3"], p)
        dao.vote(m["policy3"], p)
        dao.advance_past(p.vote_end)
        out[name] = {"propose": p.gas_used, "execute": _g(dao.execute(dc.operator, p))}
    return out


def ape_wall_time(chain: Chain, node: Anvil, runs: int = 3) -> dict | None:
    """Seconds per `tools/ape/ape run` call (process start, Ape, connect, one transaction)."""
    if not (REPO / ".venv-ape" / "bin" / "ape").exists():
        return None
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update(LOYAL_DEPLOYMENTS=str(chain.book.path.parent))
    net = ["--network", node.rpc_url]

    def ape(*args) -> tuple[float, str]:
        t0 = time.perf_counter()
        res = subprocess.run([str(REPO / "tools/ape/ape"), "run", *args, *net], env=env, capture_output=True,
                             text=True, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
        return time.perf_counter() - t0, res.stdout.strip()

    times: dict[str, list[float]] = {"dao_propose": [], "dao_vote": [], "dao_vote_by_sig": [], "dao_execute": []}
    dao = Dao(chain)
    dao.advance_past(dao.now())
    for i in range(runs):
        t, pid = ape("dao_propose", "--account", "23", "--type", "review", "--call", "PersonnelRegistry.fileReport",
                     json.dumps(["0x" + f"{i:064x}", "0x" + "22" * 32]), "--description", f"ape bench {i}", "--id-only")
        times["dao_propose"].append(t)
        times["dao_vote"].append(ape("dao_vote", "--account", "20", "--proposal", pid, "--wait")[0])
        ape("dao_vote", "--account", "21", "--proposal", pid)
        times["dao_vote_by_sig"].append(ape("dao_vote_by_sig", "--signer", "24", "--relayer", "26", "--proposal",
                                            pid)[0])
        times["dao_execute"].append(ape("dao_execute", "--account", "26", "--proposal", pid, "--wait")[0])
    chain.reset_nonces()
    return {k: round(statistics.median(v), 2) for k, v in times.items()}


def demo_wall_time(runs: int = 3) -> dict:
    times, chain_times = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        with devnet(accounts=40) as (chain, _, _):
            s = run_demo(chain, log=lambda _: None)
        times.append(time.perf_counter() - t0)
        chain_times.append(s["seconds"])
    return {"runs": runs, "start_deploy_demo_s_median": round(statistics.median(times), 2),
            "demo_flow_s_median": round(statistics.median(chain_times), 2)}


def main() -> None:
    with devnet(accounts=40) as (chain, _, node):
        dao = Dao(chain)
        snap = chain.snapshot()  # an Anvil snapshot is used up by its revert: take it again each time
        base = oz_baseline(chain, dao)
        chain.revert_to(snap)
        snap = chain.snapshot()
        ours = governance_gas(chain, dao)
        chain.revert_to(snap)
        snap = chain.snapshot()
        compute = compute_gas(chain, dao)
        chain.revert_to(snap)
        ape = ape_wall_time(chain, node)
    ratio = {k: round((ours[k]["median"] if isinstance(ours[k], dict) else ours[k])
                      / (base[k]["median"] if isinstance(base[k], dict) else base[k]), 3)
             for k in ("propose_3_actions", "castVote", "execute_3_actions")}
    write("dao_gas", {"gas": {**ours, **compute}, "oz_governor_baseline": base, "ratio_to_oz_governor": ratio,
                      "ape_seconds_per_call": ape, "demo": demo_wall_time()})


if __name__ == "__main__":
    main()
