"""One deploy path for the devnet, the tests and the Ape scripts.

`deploy_suite` runs each subsystem's deploy hook (declared in its `SUBSYSTEM`) in dependency order. Hooks call `Deployer.ensure`, which
deploys a contract only if the address book has no live copy built from the same bytecode and
constructor arguments, so re-running a deploy is a no-op.
"""
from __future__ import annotations

from typing import Callable

from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from .chain import Chain
from .subsystem import resolve, subsystems

INITIAL_SUPPLY = 1_000_000_000 * 10**18
UNSTAKE_DELAY = 3 * 24 * 3600  # seconds between an unstake request and withdrawal


class Deployer:
    def __init__(self, chain: Chain, signer: LocalAccount):
        self.chain = chain
        self.signer = signer
        self.deployed: list[str] = []  # names deployed by this run (empty on an idempotent re-run)

    @property
    def admin(self) -> str:
        return self.signer.address

    def address(self, name: str) -> str:
        return self.chain.book.address(name)

    def _init_hash(self, name: str, args: tuple) -> str:
        art = self.chain.artifacts.get(name)
        factory = self.chain.w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
        return "0x" + keccak(hexstr=factory.constructor(*args).data_in_transaction).hex()

    def ensure(self, name: str, *args) -> str:
        """Address of `name` built from these constructor args, deploying it if needed."""
        book = self.chain.book
        init_hash = self._init_hash(name, args)
        entry = book.contracts.get(name)
        if entry and entry.get("init_hash") == init_hash and self.chain.w3.eth.get_code(entry["address"]):
            return entry["address"]
        address, receipt = self.chain.deploy(self.signer, name, *args)
        book.contracts[name] = {"address": address, "block": receipt["blockNumber"],
                                "tx": receipt["transactionHash"].to_0x_hex(), "init_hash": init_hash}
        book.save()  # after every contract: a failure later leaves a consistent, resumable book
        self.deployed.append(name)
        return address

    def grant_role(self, contract: str, role: str, account: str) -> None:
        """Grant AccessControl `role` (its constant name, e.g. "MINTER_ROLE") unless already held."""
        c = self.chain.contract(contract)
        role_id = self.chain.call(getattr(c.functions, role)())
        if not self.chain.call(c.functions.hasRole(role_id, account)):
            self.chain.transact(self.signer, c.functions.grantRole(role_id, account))

    def grant_module(self, account: str) -> None:
        """Let a protocol contract slash through Staking."""
        self.grant_role("Staking", "MODULE_ROLE", account)


def deploy_core(d: Deployer) -> None:
    token = d.ensure("LoyalToken", d.admin, INITIAL_SUPPLY)
    d.ensure("Staking", token, UNSTAKE_DELAY, d.admin)


def _hooks() -> list[Callable[[Deployer], None]]:
    return [resolve(s.deploy) for s in subsystems() if s.deploy]


def deploy_suite(chain: Chain, signer: LocalAccount) -> Deployer:
    """Deploy (or confirm) every suite contract; returns the Deployer (see `.deployed`)."""
    d = Deployer(chain, signer)
    for hook in _hooks():
        hook(d)
    return d
