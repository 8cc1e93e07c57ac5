"""The overview: contracts, event counts, recent events, stakes and slashes by account."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ..rows import Row, Rows


@dataclass
class Stake:
    account: str
    staked: int = 0
    unstake_requested: int = 0
    withdrawn: int = 0
    slashed: int = 0
    locked: int = 0  # the latest lockedTotal
    slashes: list[Row] = field(default_factory=list)

    @property
    def held(self) -> int:
        """Stake still in the pool (active + unbonding): staked - withdrawn - slashed."""
        return self.staked - self.withdrawn - self.slashed


def stakes(rows: Rows) -> list[Stake]:
    by: dict[str, Stake] = {}
    for r in rows.events("Staking", ("Staked", "UnstakeRequested", "Withdrawn", "Slashed", "StakeLocked",
                                     "StakeUnlocked")):
        a = r.args
        s = by.setdefault(a["account"], Stake(a["account"]))
        if r.event == "Staked":
            s.staked += int(a["amount"])
        elif r.event == "UnstakeRequested":
            s.unstake_requested += int(a["amount"])
        elif r.event == "Withdrawn":
            s.withdrawn += int(a["amount"])
        elif r.event == "Slashed":
            s.slashed += int(a["amount"])
            s.slashes.append(r)
        else:
            s.locked = int(a["lockedTotal"])
    return sorted(by.values(), key=lambda s: -s.held)


def slashes_by_module(rows: Rows) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for r in rows.events("Staking", "Slashed"):
        out[r.args["module"]] += int(r.args["amount"])
    return dict(out)
