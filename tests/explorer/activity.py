"""Chain activity for the explorer's tests and benchmark: many suite events, made cheaply.

`TransferBatch` (tests/explorer/TransferBatch.sol, compiled by `forge build` with the tests) sends
LoyalToken transfers from itself in a loop, so one transaction makes thousands of `Transfer`
events of the suite's token.
"""
from __future__ import annotations

import json

from agents.core.artifacts import DEFAULT_BUILD_DIR
from agents.core.chain import Chain

RECIPIENTS = [f"0x{i:040x}" for i in range(0x1001, 0x1011)]  # 16 fixed addresses


class TransferBatch:
    def __init__(self, chain: Chain, admin):
        data = json.loads((DEFAULT_BUILD_DIR / "TransferBatch.sol" / "TransferBatch.json").read_text())
        factory = chain.w3.eth.contract(abi=data["abi"], bytecode=data["bytecode"]["object"])
        receipt = chain.transact(admin, factory.constructor())
        self.chain, self.admin = chain, admin
        self.contract = chain.w3.eth.contract(address=receipt["contractAddress"], abi=data["abi"])
        self.token = chain.contract("LoyalToken")
        chain.transact(admin, self.token.functions.mint(self.contract.address, 10**30))

    def spray(self, n: int) -> dict:
        """One transaction making `n` Transfer events (1 wei each, to 16 fixed addresses)."""
        recipients = [self.chain.w3.to_checksum_address(a) for a in RECIPIENTS]
        return self.chain.transact(self.admin, self.contract.functions.spray(self.token.address, recipients, 1, n),
                                   gas=min(30_000_000, 60_000 + 12_000 * n))

    def events(self, total: int, per_tx: int = 1000) -> int:
        """`total` Transfer events in ceil(total / per_tx) transactions (one block each on automine)."""
        done = 0
        while done < total:
            k = min(per_tx, total - done)
            self.spray(k)
            done += k
        return done


