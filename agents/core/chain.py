"""Chain client: connect by RPC URL, send signed transactions, decode custom errors and events.

One `Chain` per process. It keeps a local nonce per signer (so a burst of transactions from one
account needs no round trip per nonce) and re-syncs it from the node when the node disagrees.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
import requests
from web3 import HTTPProvider, Web3
from web3.types import RPCEndpoint
from web3._utils.events import get_event_data
from web3.exceptions import (ContractCustomError, ContractLogicError, ContractPanicError, TransactionNotFound,
                             Web3RPCError)

from common.files import atomic_write_json

from .artifacts import Artifacts, abi_type
from common.config import current
from common.errors import (DeploymentMissing, InsufficientFunds, LoyalError, Reverted, RpcUnreachable,
                           TransactionTimeout, TransientError)

GAS_MARGIN = 1.25  # estimate * margin: estimates are exact on Anvil but storage refunds can make them tight
FEE_TTL = 2.0  # seconds a fee quote is reused (one quote per burst of transactions, not per transaction)
DEFAULT_TIP = 10**9  # 1 gwei priority fee when the node cannot suggest one
RECEIPT_POLL = 0.02  # first receipt poll interval (s), growing to 1 s
REBROADCAST_AFTER = 15.0  # seconds without a receipt before checking the node still holds the transaction
DEV_CHAIN_IDS = frozenset({31337})


@dataclass(frozen=True)
class Event:
    """A decoded log from one of the suite's contracts."""
    contract: str
    name: str
    args: dict[str, Any]
    address: str
    block: int
    log_index: int
    tx: str
    block_hash: str = ""  # 0x-hex of the block the log was read from (reorg checks); "" if the node gave none

    def to_json(self) -> dict:
        def enc(v):
            if isinstance(v, (bytes, bytearray)):
                return "0x" + bytes(v).hex()
            if isinstance(v, (list, tuple)):
                return [enc(x) for x in v]
            if isinstance(v, dict):
                return {k: enc(x) for k, x in v.items()}
            return v
        return {"block": self.block, "log_index": self.log_index, "tx": self.tx, "contract": self.contract,
                "address": self.address, "event": self.name, "args": enc(dict(self.args))}


@dataclass
class AddressBook:
    """<deployments>/<chainId>.json: where each suite contract lives on one chain."""
    path: Path
    chain_id: int
    contracts: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, chain_id: int) -> "AddressBook":
        if path.exists():
            data = json.loads(path.read_text())
            if data.get("chainId") != chain_id:
                raise DeploymentMissing(f"address book {path} is for chain {data.get('chainId')}, not {chain_id}")
            return cls(path, chain_id, data.get("contracts", {}))
        return cls(path, chain_id)

    def save(self) -> None:
        atomic_write_json(self.path, {"chainId": self.chain_id, "contracts": self.contracts})

    def address(self, name: str) -> str:
        entry = self.contracts.get(name)
        if not entry:
            raise DeploymentMissing(f"{name} is not deployed on chain {self.chain_id} (address book {self.path}): run `loyal deploy`")
        return entry["address"]


def default_book_path(chain_id: int) -> Path:
    """`<deployments setting>/<chainId>.json` (default `$LOYAL_HOME/deployments`)."""
    return current().book_path(chain_id)


class NonceConflict(TransientError):
    """Another transaction from the same key took the nonce (another process, a replaced tx)."""


class NodeRefused(LoyalError):
    """The node rejected a signed transaction for a reason that retrying will not fix."""


class LoyalHTTPProvider(HTTPProvider):
    """web3's HTTP provider that reports a lost node as `RpcUnreachable` (a transient error daemons
    retry) instead of a raw `requests` exception, and caches the chain id (asked once, not per call)."""

    def __init__(self, url: str, timeout: float):
        # eth_chainId is answered from the cache after the first request (web3 asks for it before
        # every eth_call/eth_estimateGas to validate the transaction's chain id)
        super().__init__(url, request_kwargs={"timeout": timeout}, cache_allowed_requests=True,
                         cacheable_requests={RPCEndpoint("eth_chainId"), RPCEndpoint("net_version")},
                         request_cache_validation_threshold=None)
        self.url = url

    def make_request(self, method, params):
        try:
            return super().make_request(method, params)
        except (requests.ConnectionError, requests.Timeout) as e:
            raise RpcUnreachable(f"no JSON-RPC node answers at {self.url} ({type(e).__name__})") from None


class Chain:
    def __init__(self, w3: Web3, artifacts: Artifacts, book: AddressBook):
        self.w3 = w3
        self.artifacts = artifacts
        self.book = book
        self.chain_id = book.chain_id
        self._nonces: dict[str, int] = {}
        self._lock = threading.Lock()
        self._fees: tuple[float, dict] | None = None
        self.rebroadcasts = 0  # dropped transactions sent again (see _await_receipt)
        self.rebroadcast_after = REBROADCAST_AFTER

    @classmethod
    def connect(cls, rpc_url: str, *, build_dir: Path | str | None = None, book_path: Path | str | None = None,
                timeout: float = 30.0) -> "Chain":
        w3 = Web3(LoyalHTTPProvider(rpc_url, timeout))
        try:
            chain_id = w3.eth.chain_id
        except RpcUnreachable:
            raise
        except Exception as e:  # a URL that is not a JSON-RPC endpoint, bad JSON, ...
            raise RpcUnreachable(f"no JSON-RPC node answers at {rpc_url} ({type(e).__name__})") from None
        artifacts = Artifacts(build_dir) if build_dir else Artifacts()
        book = AddressBook.load(Path(book_path) if book_path else default_book_path(chain_id), chain_id)
        return cls(w3, artifacts, book)

    # -- contracts -------------------------------------------------------------------------
    def contract_at(self, name: str, address: str):
        return self.w3.eth.contract(address=to_checksum_address(address), abi=self.artifacts.get(name).abi)

    def contract(self, name: str):
        address = self.book.address(name)
        return self.contract_at(name, address)

    def deploy(self, signer: LocalAccount, name: str, *args) -> tuple[str, dict]:
        art = self.artifacts.get(name)
        factory = self.w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
        receipt = self.transact(signer, factory.constructor(*args))
        return receipt["contractAddress"], receipt

    # -- transactions ----------------------------------------------------------------------
    def _next_nonce(self, address: str) -> int:
        with self._lock:
            n = self._nonces.get(address)
            if n is None:
                n = self.w3.eth.get_transaction_count(address, "pending")
            self._nonces[address] = n + 1
            return n

    def reset_nonces(self) -> None:
        """Forget cached nonces (after an evm_revert, or when another process used the key)."""
        with self._lock:
            self._nonces.clear()

    def fees(self) -> dict[str, int]:
        """EIP-1559 fee fields (legacy gasPrice on a chain without a base fee), cached for FEE_TTL s."""
        now = time.monotonic()
        if self._fees is None or now - self._fees[0] > FEE_TTL:
            base = self.w3.eth.get_block("latest").get("baseFeePerGas")
            if base is None:
                fees = {"gasPrice": self.w3.eth.gas_price}
            else:
                try:
                    tip = self.w3.eth.max_priority_fee
                except Web3RPCError:  # a node without eth_maxPriorityFeePerGas
                    tip = DEFAULT_TIP
                fees = {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}
            self._fees = (now, fees)
        return dict(self._fees[1])

    def transact(self, signer: LocalAccount, fn, *, value: int = 0, gas: int | None = None,
                 timeout: float | None = None) -> dict:
        """Sign and send `fn` (a contract function call or constructor), wait, return the receipt.

        Reverts raise `Reverted` (custom errors decoded by name) before anything is sent. An account
        that cannot pay for gas raises `InsufficientFunds` naming the fix. A transaction the node
        drops from its pool is re-broadcast; no receipt within `timeout` (default: the tx_timeout
        setting) raises `TransactionTimeout`.
        """
        params: dict[str, Any] = {"from": signer.address, "value": value, "chainId": self.chain_id}
        for attempt in range(2):
            try:
                if gas is None:
                    params["gas"] = int(fn.estimate_gas({"from": signer.address, "value": value}) * GAS_MARGIN)
                else:
                    params["gas"] = gas
                params.update(self.fees())
                params["nonce"] = self._next_nonce(signer.address)
                tx = fn.build_transaction(params)
                raw = signer.sign_transaction(tx).raw_transaction
                tx_hash = self.w3.eth.send_raw_transaction(raw)
                break
            except (ContractCustomError, ContractLogicError, ContractPanicError) as e:
                self.reset_nonces()
                raise self.revert_error(e) from None
            except Web3RPCError as e:
                self.reset_nonces()
                msg = str(e).lower()
                if "insufficient funds" in msg:
                    raise self._no_gas_money(signer.address, params) from None
                if attempt == 0 and "nonce" in msg:
                    continue  # another process used this key: re-sync the nonce once
                if "nonce" in msg or "underpriced" in msg or "already known" in msg:
                    raise NonceConflict(f"transaction from {signer.address} collided with another one "
                                        f"({_rpc_message(e)}); retrying re-reads the nonce") from None
                raise NodeRefused(f"the node refused the transaction from {signer.address}: {_rpc_message(e)}") from None
        return self._await_receipt(tx_hash, raw, tx, timeout)

    def _no_gas_money(self, address: str, params: dict) -> InsufficientFunds:
        have = self.w3.eth.get_balance(address)
        need = params.get("gas", 0) * params.get("maxFeePerGas", params.get("gasPrice", 0)) + params.get("value", 0)
        hint = f"`loyal chain fund {address}`" if self.chain_id in DEV_CHAIN_IDS else "send it some of the chain's native coin"
        return InsufficientFunds(f"account {address} has {have / 1e18:.6g} ETH for gas, needs up to "
                                 f"{need / 1e18:.6g}: {hint}")

    def _await_receipt(self, tx_hash, raw: bytes, tx: dict, timeout: float | None) -> dict:
        timeout = current().tx_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        next_check = time.monotonic() + self.rebroadcast_after
        poll = RECEIPT_POLL
        while True:
            try:
                receipt = dict(self.w3.eth.get_transaction_receipt(tx_hash))
                break
            except TransactionNotFound:
                pass
            now = time.monotonic()
            if now >= deadline:
                raise TransactionTimeout(
                    f"transaction {tx_hash.to_0x_hex()} (nonce {tx['nonce']}) has no receipt after {timeout:g} s; "
                    "it may still be mined: check it on the chain before sending it again") from None
            if now >= next_check:  # dropped from the node's pool (restart, eviction): send the same bytes again
                next_check = now + self.rebroadcast_after
                try:
                    self.w3.eth.get_transaction(tx_hash)
                except TransactionNotFound:
                    try:
                        self.w3.eth.send_raw_transaction(raw)
                        self.rebroadcasts += 1
                    except Web3RPCError:
                        pass  # known again, or the nonce was used meanwhile: the receipt check decides
            time.sleep(poll)
            poll = min(poll * 1.5, 1.0)
        if receipt["status"] != 1:
            # Mined but reverted (state changed between estimate and inclusion): replay as a call for the reason.
            try:
                self.w3.eth.call({k: v for k, v in tx.items() if k in ("from", "to", "data", "value", "gas")},
                                 receipt["blockNumber"] - 1)
            except (ContractCustomError, ContractLogicError, ContractPanicError) as e:
                raise self.revert_error(e) from None
            raise Reverted(f"transaction {tx_hash.to_0x_hex()} reverted")
        return receipt

    def call(self, fn, *, sender: str | None = None, block: int | str = "latest"):
        try:
            return fn.call({"from": sender} if sender else {}, block_identifier=block)
        except (ContractCustomError, ContractLogicError, ContractPanicError) as e:
            raise self.revert_error(e) from None

    # -- decoding --------------------------------------------------------------------------
    def revert_error(self, e: Exception) -> Reverted:
        data = getattr(e, "data", None)
        if isinstance(data, dict):
            data = data.get("data")
        if isinstance(e, ContractCustomError) and isinstance(data, str) and len(data) >= 10:
            raw = bytes.fromhex(data[2:] if data.startswith("0x") else data)
            item = self.artifacts.errors.get(raw[:4])
            if item is not None:
                types = [abi_type(i) for i in item.get("inputs", [])]
                values = abi_decode(types, raw[4:])
                args = {i["name"] or f"arg{n}": to_checksum_address(v) if t == "address" else _plain(v)
                        for n, (i, t, v) in enumerate(zip(item["inputs"], types, values))}
                shown = ", ".join(f"{k}={self._enum_name(i, v)}" for i, (k, v) in zip(item["inputs"], args.items()))
                return Reverted.named(item["name"])(f"reverted: {item['name']}({shown})", item["name"], args)
            return Reverted(f"reverted with unknown custom error {raw[:4].hex()}")
        msg = getattr(e, "message", None) or str(e)
        return Reverted(f"reverted: {msg}")

    def _enum_name(self, abi: dict, value) -> str:
        """An error argument as shown: an enum member by name (value kept in error_args), else plain."""
        from .enums import EnumNames, enum_type

        qualified = enum_type(abi.get("internalType"))
        if qualified and isinstance(value, int):
            try:
                return EnumNames(self.artifacts).name(qualified, value)
            except LoyalError:
                pass
        return _show(value)

    def decode_log(self, log) -> Event | None:
        if not log["topics"]:
            return None
        candidates = self.artifacts.events.get(bytes(log["topics"][0]), [])
        address = to_checksum_address(log["address"])
        known = {e["address"]: n for n, e in self.book.contracts.items()}
        candidates = sorted(candidates, key=lambda c: c[0] != known.get(address))
        for contract, abi in candidates:
            indexed = sum(1 for i in abi["inputs"] if i.get("indexed"))
            if indexed != len(log["topics"]) - 1:
                continue
            try:
                d = get_event_data(self.w3.codec, abi, log)
            except Exception:
                continue
            return Event(known.get(address, contract), d["event"], {k: _plain(v) for k, v in d["args"].items()},
                         address, d["blockNumber"], d["logIndex"], d["transactionHash"].to_0x_hex(),
                         d["blockHash"].to_0x_hex() if d.get("blockHash") else "")
        return None

    def decode_events(self, receipt: dict) -> list[Event]:
        return [e for e in (self.decode_log(log) for log in receipt["logs"]) if e is not None]

    # -- dev chain helpers (Anvil RPC) ----------------------------------------------------
    def snapshot(self) -> str:
        return self.w3.provider.make_request("evm_snapshot", [])["result"]

    def revert_to(self, snapshot_id: str) -> None:
        ok = self.w3.provider.make_request("evm_revert", [snapshot_id])["result"]
        if not ok:
            raise RuntimeError(f"evm_revert to snapshot {snapshot_id} failed")
        self.reset_nonces()

    def advance_time(self, seconds: int) -> None:
        self.w3.provider.make_request("evm_increaseTime", [int(seconds)])
        self.w3.provider.make_request("evm_mine", [])

    def mine(self, blocks: int = 1) -> None:
        self.w3.provider.make_request("anvil_mine", [hex(blocks)])


def _rpc_message(e: Exception) -> str:
    data = e.args[0] if e.args else e
    return data.get("message", str(data)) if isinstance(data, dict) else str(data)


def _plain(v):
    """web3 AttributeDicts/HexBytes -> plain Python (dict/bytes) for printing and JSON."""
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    if isinstance(v, (list, tuple)):
        return type(v)(_plain(x) for x in v)
    if hasattr(v, "items"):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _show(v) -> str:
    return "0x" + v.hex() if isinstance(v, bytes) else str(v)
