"""LOYAL amounts: wei (10^-18 LOYAL) on-chain, decimal LOYAL for people. Exact (no floats)."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from .errors import ConfigError

DECIMALS = 18
WEI_PER_TOKEN = 10**DECIMALS


def parse_amount(text: str | int | Decimal, unit: str = "LOYAL") -> int:
    """`"12.5"` -> 12500000000000000000 wei; refuses negatives, NaN and more than 18 decimals."""
    try:
        d = Decimal(str(text).strip().replace("_", ""))
    except InvalidOperation:
        raise ConfigError(f"bad amount {text!r}: expected a number of {unit}, e.g. 12.5") from None
    if not d.is_finite() or d < 0:
        raise ConfigError(f"bad amount {text!r}: must be a finite number >= 0")
    wei = d * WEI_PER_TOKEN
    if wei != wei.to_integral_value():
        raise ConfigError(f"bad amount {text!r}: at most {DECIMALS} decimals")
    return int(wei)


def format_amount(wei: int, unit: str = "LOYAL") -> str:
    """12500000000000000000 -> `"12.5 LOYAL"` (exact; trailing zeros dropped)."""
    d = (Decimal(int(wei)) / WEI_PER_TOKEN).normalize()
    text = f"{d:f}"
    return f"{text} {unit}" if unit else text
