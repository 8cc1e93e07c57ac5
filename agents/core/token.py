"""LoyalToken and Staking for operators and agents: balances, transfers, and paying a contract.

`Token.pay_and_call` is how every agent hands tokens to a protocol contract (a deposit, a bond, a
stake, a claim bond). ERC-20 needs two transactions (approve, then the call that pulls), so a
refused call could leave an approval behind. It never does when the refusal is knowable in
advance: the call is first simulated with the approval already in place (an `eth_call` state
override of the token's allowance slot), and the signer's LOYAL and gas money are checked, all
before the approval is sent. Only a state change between the two transactions (another party's
transaction in between) can still strand an approval of exactly the amount, never more.
"""
from __future__ import annotations

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError

from common.errors import InsufficientFunds
from common.units import format_amount

from .chain import DEV_CHAIN_IDS, GAS_MARGIN, Chain


class Token:
    """The suite's LoyalToken (and Staking) on one chain."""

    def __init__(self, chain: Chain):
        self.chain = chain
        self.contract = chain.contract("LoyalToken")

    # -- reads -------------------------------------------------------------------------------
    def balance(self, who: str) -> int:
        return self.chain.call(self.contract.functions.balanceOf(to_checksum_address(who)))

    def allowance(self, owner: str, spender: str) -> int:
        return self.chain.call(self.contract.functions.allowance(owner, spender))

    def require_balance(self, who: str, amount: int, purpose: str) -> None:
        """Raise `InsufficientFunds` naming the fix when `who` holds fewer than `amount` LOYAL."""
        have = self.balance(who)
        if have < amount:
            raise InsufficientFunds(
                f"account {who} has {format_amount(have)}, {purpose} needs {format_amount(amount)}: "
                f"`loyal token transfer {who} {format_amount(amount - have, '')}` from a funded key")

    # -- writes ------------------------------------------------------------------------------
    def transfer(self, signer: LocalAccount, to: str, amount: int) -> dict:
        self.require_balance(signer.address, amount, "the transfer")
        return self.chain.transact(signer, self.contract.functions.transfer(to_checksum_address(to), amount))

    def approve(self, signer: LocalAccount, spender: str, amount: int) -> dict:
        return self.chain.transact(signer, self.contract.functions.approve(to_checksum_address(spender), amount))

    def pay_and_call(self, signer: LocalAccount, spender: str, amount: int, fn, *, purpose: str) -> dict:
        """Let `spender` pull `amount` LOYAL from `signer`, then send `fn`; no approval is sent for a
        call that would be refused (see the module docstring). Returns `fn`'s receipt."""
        spender = to_checksum_address(spender)
        if amount == 0 or self.allowance(signer.address, spender) >= amount:
            return self.chain.transact(signer, fn)
        self.require_balance(signer.address, amount, purpose)
        override = {self.contract.address: {"stateDiff": {self._allowance_slot(signer.address, spender):
                                                          "0x" + amount.to_bytes(32, "big").hex()}}}
        try:  # the call as it would run after the approval; a refusal raises Reverted now, nothing sent
            gas_call = self.chain.w3.eth.estimate_gas({"from": signer.address, "to": fn.address,
                                                       "data": fn._encode_transaction_data()}, "latest", override)
        except (ContractCustomError, ContractLogicError, ContractPanicError) as e:
            raise self.chain.revert_error(e) from None
        approve = self.contract.functions.approve(spender, amount)
        gas_approve = approve.estimate_gas({"from": signer.address})
        self._require_gas_money(signer.address, int((gas_call + gas_approve) * GAS_MARGIN))
        self.chain.transact(signer, approve)
        return self.chain.transact(signer, fn)

    # -- internals ---------------------------------------------------------------------------
    def _allowance_slot(self, owner: str, spender: str) -> str:
        """Storage slot of `_allowances[owner][spender]` (OpenZeppelin ERC20's mapping, located
        through the compiler's storage layout, never assumed)."""
        base = self.chain.artifacts.storage_slot("LoyalToken", "_allowances")
        inner = keccak(abi_encode(["address", "uint256"], [owner, base]))
        return "0x" + keccak(abi_encode(["address", "bytes32"], [spender, inner])).hex()

    def _require_gas_money(self, who: str, gas: int) -> None:
        fees = self.chain.fees()
        need = gas * fees.get("maxFeePerGas", fees.get("gasPrice", 0))
        have = self.chain.w3.eth.get_balance(who)
        if have < need:
            hint = f"`loyal chain fund {who}`" if self.chain.chain_id in DEV_CHAIN_IDS \
                else "send it some of the chain's native coin"
            raise InsufficientFunds(f"account {who} has {have / 1e18:.6g} ETH for gas, needs about "
                                    f"{need / 1e18:.6g}: {hint}")


class Stakes:
    """Staking for an operator: stake (paying through `Token.pay_and_call`), unstake, withdraw."""

    def __init__(self, chain: Chain):
        self.chain = chain
        self.token = Token(chain)
        self.contract = chain.contract("Staking")

    def info(self, who: str) -> dict:
        active, unbonding, unlock_at = self.chain.call(self.contract.functions.stakeInfo(to_checksum_address(who)))
        unlocked = self.chain.call(self.contract.functions.unlockedOf(to_checksum_address(who)))
        return {"active": active, "unbonding": unbonding, "unlock_at": unlock_at, "unlocked": unlocked}

    def stake(self, signer: LocalAccount, amount: int) -> dict:
        return self.token.pay_and_call(signer, self.contract.address, amount,
                                       self.contract.functions.stake(amount), purpose="staking")

    def request_unstake(self, signer: LocalAccount, amount: int) -> dict:
        return self.chain.transact(signer, self.contract.functions.requestUnstake(amount))

    def withdraw(self, signer: LocalAccount) -> dict:
        return self.chain.transact(signer, self.contract.functions.withdraw())
