"""Training-ledger pages from the index: base models, forks (and what they forked from) with their op
chains, sealed blocks and who published ML-DSA signatures of them, exports and claimed rewards."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..rows import Row, Rows


@dataclass
class Fork:
    id: int
    forked: Row
    ops: list[Row] = field(default_factory=list)  # TrainingRecorded, in seq order
    exports: list[Row] = field(default_factory=list)
    rewards: list[Row] = field(default_factory=list)  # TrainingRewardsClaimed
    recorders: list[Row] = field(default_factory=list)

    @property
    def chain_ok(self) -> bool:
        """Each op's prevOpHash is the previous op's opHash (the first: the fork's genesis)."""
        prev = self.forked.args["genesis"]
        for op in self.ops:
            if op.args["prevOpHash"] != prev:
                return False
            prev = op.args["opHash"]
        return True

    @property
    def claimed(self) -> int:
        return sum(int(r.args["amount"]) for r in self.rewards)


@dataclass
class Ledger:
    bases: list[Row]
    forks: list[Fork]
    blocks: list[Row]  # BlockSealed
    funding: list[Row]  # RewardsFunded, RewardPerOpSet
    signatures: list[Row] = field(default_factory=list)  # BlockSigned (verified off chain by `loyal ledger verify`)

    def signatures_of(self, block_id) -> list[Row]:
        return [s for s in self.signatures if int(s.args["blockId"]) == int(block_id)]

    def sealed_in(self, op_id: int) -> Row | None:
        for b in self.blocks:
            first = int(b.args["firstOpId"])
            if first <= op_id < first + int(b.args["opCount"]):
                return b
        return None


def ledger(rows: Rows) -> Ledger:
    evs = rows.events("TrainingLedger")
    forks: dict[int, Fork] = {}
    for r in evs:
        if r.event == "ModelForked":
            forks[r.int("userModelId")] = Fork(r.int("userModelId"), r)
    for r in evs:
        f = forks.get(int(r.args["userModelId"])) if "userModelId" in r.args else None
        if f is None:
            continue
        if r.event == "TrainingRecorded":
            f.ops.append(r)
        elif r.event == "ModelExported":
            f.exports.append(r)
        elif r.event == "TrainingRewardsClaimed":
            f.rewards.append(r)
        elif r.event == "RecorderSet":
            f.recorders.append(r)
    for f in forks.values():
        f.ops.sort(key=lambda r: int(r.args["seq"]))
    return Ledger([r for r in evs if r.event == "BaseModelRegistered"], [forks[i] for i in sorted(forks)],
                  [r for r in evs if r.event == "BlockSealed"],
                  [r for r in evs if r.event in ("RewardsFunded", "RewardPerOpSet")],
                  [r for r in evs if r.event == "BlockSigned"])
