"""Core figures: devnet start-to-deployed time, gas of stake / unstake / withdraw / slash / payout."""
import statistics
import tempfile
import time
from pathlib import Path

from agents.core.anvil import Anvil
from agents.core.chain import Chain
from agents.core.deploy import deploy_suite
from agents.core.signers import dev_signer

from . import devnet, write


def start_to_deployed(runs: int = 5) -> dict:
    anvil_s, deploy_s = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            node = Anvil(accounts=32).start()
            t1 = time.perf_counter()
            chain = Chain.connect(node.rpc_url, book_path=Path(tmp) / "b.json")
            deploy_suite(chain, dev_signer(0))
            t2 = time.perf_counter()
            node.stop()
            anvil_s.append(t1 - t0)
            deploy_s.append(t2 - t1)
    return {"runs": runs, "anvil_start_s_median": round(statistics.median(anvil_s), 3),
            "deploy_suite_s_median": round(statistics.median(deploy_s), 3),
            "start_to_deployed_s_median": round(statistics.median(a + d for a, d in zip(anvil_s, deploy_s)), 3)}


def staking_gas() -> dict:
    with devnet() as (chain, _, _):
        admin, alice = dev_signer(0), dev_signer(1)
        token, staking = chain.contract("LoyalToken"), chain.contract("Staking")
        chain.transact(admin, token.functions.mint(alice.address, 10**24))
        chain.transact(admin, staking.functions.grantRole(chain.call(staking.functions.MODULE_ROLE()), admin.address))
        chain.transact(alice, token.functions.approve(staking.address, 10**24))
        g = lambda r: r["gasUsed"]  # noqa: E731
        out = {
            "stake_first": g(chain.transact(alice, staking.functions.stake(10**20))),
            "stake_again": g(chain.transact(alice, staking.functions.stake(10**20))),
            "requestUnstake": g(chain.transact(alice, staking.functions.requestUnstake(10**19))),
            "slash": g(chain.transact(admin, staking.functions.slash(alice.address, 10**19, "benchmark"))),
            "payOutSlashed": g(chain.transact(admin, staking.functions.payOutSlashed(admin.address, 10**19))),
        }
        chain.advance_time(chain.call(staking.functions.unstakeDelay()))
        out["withdraw"] = g(chain.transact(alice, staking.functions.withdraw()))
        return out


def main() -> None:
    write("core", {"devnet": start_to_deployed(), "gas": staking_gas()})


if __name__ == "__main__":
    main()
