"""Participant daemon: trains locally on its own shard (which never leaves it) and submits the
update CID each round; claims its reward and bond after scoring.

Local training is `ml.din.client.train_update`, a Flower NumPyClient's `fit`: the chain replaces
the Flower server's coordination. A poisoner trains on flipped labels (demo and tests only).
"""
from __future__ import annotations

from ml.din import client as flwr_client
from ml.din import data

from .contracts import Stage
from .daemon import DinDaemon


class ParticipantDaemon(DinDaemon):
    role = "participant"

    def __init__(self, *a, shard: data.Shard, poisoner: bool = False, **kw):
        super().__init__(*a, **kw)
        self.shard = data.flip_labels(shard) if poisoner else shard
        self.poisoner = poisoner

    def act(self, stage: Stage, round_: int) -> int:
        din, task, me = self.din, self.task, self.address
        if stage == Stage.Registration:
            if not din.is_participant(task, me):
                din.register(self.signer, task)
                self.note("registered")
                return 1
            return 0
        if not din.is_participant(task, me):
            return 0
        if stage == Stage.Submit:
            if din.update_hash(task, round_, me) != b"\x00" * 32:
                return 0  # already on-chain (e.g. submitted just before a restart)
            global_bytes = self.store.get(self.global_cid_before(round_))
            update = flwr_client.train_update(global_bytes, self.shard, {"seed": round_})
            cid = self.store.put(update)
            din.submit_update(self.signer, task, round_, cid)
            self.note(f"round {round_}: submitted {cid}")
            return 1
        if stage == Stage.Settle:
            return self._claim()
        return 0

    def _claim(self) -> int:
        din, task, me = self.din, self.task, self.address
        sent = 0
        if din.totals(task)["settled"] == din.participant_count(task):
            if not din.reward_claimed(task, me) and din.reward_of(task, me) > 0:
                din.claim_reward(self.signer, task)
                self.note("claimed reward")
                sent += 1
        if not din.bond_returned(task, me):
            din.withdraw_bond(self.signer, task)
            sent += 1
        return sent
