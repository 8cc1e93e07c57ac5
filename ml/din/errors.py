"""Errors of DIN's ML half; each names the offending participant or value in one line."""
from __future__ import annotations

from common.errors import LoyalError


class BadUpdate(LoyalError):
    """An update cannot be used: unparsable bytes, wrong tensor names/shapes/dtype, NaN/inf, or
    values outside the fixed-point range. `who` names the participant when known."""

    def __init__(self, reason: str, who: str | None = None):
        self.reason, self.who = reason, who
        super().__init__(f"bad update from {who}: {reason}" if who else f"bad update: {reason}")


class RecoveryImpossible(LoyalError):
    """Secure aggregation cannot remove the masks of dropped members: `missing` lists the
    (survivor, dropped) pairs whose pairwise seed was not revealed, `too_few` is set when fewer
    than the minimum number of members survived (the sum would expose an individual update)."""

    def __init__(self, message: str, missing: list[tuple[str, str]] | None = None,
                 survivors: list[str] | None = None):
        self.missing = missing or []
        self.survivors = survivors or []
        super().__init__(message)


class ClientError(LoyalError):
    """A participant's training client failed or returned something that is not an update of the
    task's model; `client` names it (e.g. `--client mypkg.train:client_fn`)."""

    def __init__(self, client: str, reason: str):
        self.client, self.reason = client, reason
        super().__init__(f"client {client}: {reason}")
