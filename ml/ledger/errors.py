"""Errors the ledger's ML side raises; each names the problem in one line."""
from __future__ import annotations

from common.errors import LoyalError


class LedgerDataError(LoyalError):
    """Base of every integrity failure found while building or checking a fork."""


class NonCanonicalTensors(LedgerDataError):
    """Bytes are not the canonical safetensors layout of a float32 adapter state or delta."""


class DecryptionFailed(LedgerDataError):
    """AES-GCM refused a blob: wrong key, wrong context (fork/op/kind) or altered ciphertext."""


class DeltaHashMismatch(LedgerDataError):
    """A delta's keyed commitment does not match the one recorded in its op."""


class StateMismatch(LedgerDataError):
    """A folded adapter state does not match the recorded commitment or the exported bytes."""


class ChainBroken(LedgerDataError):
    """An op does not link to its predecessor or its op hash does not match its fields."""


class BaseModelMismatch(LedgerDataError):
    """The base model's weights do not hash to the CID registered on chain."""
