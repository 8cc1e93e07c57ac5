"""Contract views read by member name (agents/core/views.py) against the deployed suite."""
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

import pytest

from agents.core.views import Record, read, record_as


def test_a_struct_view_reads_by_member_name_never_by_position(chain):
    emergency = read(chain, chain.contract("DaoGovernor").functions.typeConfig(3))
    assert (emergency.minProposerTier, emergency.votingDelay, emergency["votingPeriod"]) == (3, 0, 3600)
    with pytest.raises(TypeError, match="by member name"):
        emergency[0]
    with pytest.raises(AttributeError, match="no member 'nope'"):
        emergency.nope


def test_a_view_with_several_outputs_is_a_record(chain, signers):
    token, staking = chain.contract("LoyalToken"), chain.contract("Staking")
    chain.transact(signers[1], token.functions.approve(staking.address, 5))
    chain.transact(signers[1], staking.functions.stake(5))
    info = read(chain, staking.functions.stakeInfo(signers[1].address))
    assert info.active == 5 and info.unbonding == 0
    assert info.snake() == {"active": 5, "unbonding": 0, "unlock_at": 0}


class Status(IntEnum):
    NONE = 0
    OPEN = 1


@dataclass(frozen=True)
class ForkLike:
    fork_id: int
    op_count: int
    head_hash: bytes
    status: Status


class Pair(NamedTuple):
    best_hash: bytes
    accepted: bool


def test_record_as_builds_typed_views_and_refuses_a_drifted_struct():
    rec = Record({"opCount": 3, "headHash": b"\x01", "status": 1})
    view = record_as(ForkLike, rec, fork_id=7)
    assert view == ForkLike(7, 3, b"\x01", Status.OPEN) and isinstance(view.status, Status)
    assert record_as(Pair, Record({"bestHash": b"\x02", "accepted": True})).accepted is True
    with pytest.raises(TypeError, match="no member headHash"):
        record_as(ForkLike, Record({"opCount": 3, "status": 1}), fork_id=7)
    with pytest.raises(TypeError, match="no field for member.* extra"):
        record_as(ForkLike, Record({**rec, "extra": 1}), fork_id=7)
