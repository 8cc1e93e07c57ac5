"""Every failure a user can cause gets an exception that names the problem in one line."""
from __future__ import annotations

from typing import Any


class LoyalError(Exception):
    """Base of all Loyal errors; `str(e)` is a one-line explanation fit for a CLI."""


class ConfigError(LoyalError):
    """A setting (env var, flag, file) is missing or malformed."""


class TransientError(LoyalError):
    """A failure that may go away by itself (node down, congestion, a lost race for a nonce).

    Daemons back off and retry these; every other LoyalError is permanent: it names its fix once
    and the daemon stops instead of spinning.
    """


class RpcUnreachable(TransientError):
    """No Ethereum JSON-RPC node answers at the given URL."""


class TransactionTimeout(TransientError):
    """A sent transaction has no receipt within the timeout (it may still be mined later)."""


class InsufficientFunds(LoyalError):
    """The signer cannot pay for gas (native coin) or the tokens an action needs."""


class ArtifactsMissing(LoyalError):
    """Compiled contract artifacts are absent: run `make build`."""


class BadKeyFile(LoyalError):
    """A keystore file is missing, malformed, or its password is wrong."""


class DeploymentMissing(LoyalError):
    """The address book has no (live) address for a contract on this chain."""


class Reverted(LoyalError):
    """A transaction or call reverted. Custom Solidity errors are decoded by name.

    `Reverted.named("InsufficientStake")` is the subclass raised for that error, so callers can
    `except Reverted.named("InsufficientStake")` or `pytest.raises(Reverted.named(...))`.
    """

    _by_name: dict[str, type["Reverted"]] = {}
    error_name: str = ""

    def __init__(self, message: str, error_name: str = "", error_args: dict[str, Any] | None = None):
        super().__init__(message)
        self.error_name = error_name or type(self).error_name
        self.error_args = error_args or {}

    @classmethod
    def named(cls, name: str) -> type["Reverted"]:
        sub = cls._by_name.get(name)
        if sub is None:
            sub = type(name, (Reverted,), {"error_name": name, "__module__": __name__})
            cls._by_name[name] = sub
        return sub
