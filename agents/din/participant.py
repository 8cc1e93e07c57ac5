"""Participant daemon: trains locally on its own data (which never leaves it), commits to the
update's CID in the Submit stage and reveals it in UpdateReveal; claims its reward and bond after
scoring.

The update's bytes are published to the store only when the CID is revealed (`cid_for` computes
the CID locally for the commitment, `publish` stores the bytes at the reveal), so nobody can fetch,
copy or (with secure aggregation) unmask an update before its commitment window has closed.
Between commit and reveal the bytes stay in memory; a daemon restarted in between trains again
(deterministic for the round's seed on one machine) and reveals only if it gets the committed CID
back.

Local training is a Flower NumPyClient's `fit` through `ml.din.client.fit_update`: the built-in
digits client on `shard` (on `device`), or the participant's own `client` (`--client module:attr`,
`ml/din/client_loader.py`), checked against the task's layout every round. The chain replaces the
Flower server's coordination. The model
a round trains from is `global_before(round)` (an unavailable accepted global model is skipped);
a genesis model this daemon cannot fetch stops it with the fix (`ModelUnavailable`).

Secure-aggregation tasks: at registration the daemon publishes its X25519 mask key (derived from
its signer key, so it survives restarts); each round it uploads `secagg.mask_update(...)` of its
update instead of the update, masked with every member of its subgroup under the context
(chain id, DinTasks, task, round, subgroup); after the reveal deadline it posts its pair seeds
with exactly the members the chain shows as not having revealed (never for anyone who did), and
refuses to when fewer than two members survived. Dishonest participants (a dropout, a withholder,
a near-copier) are subclasses in `adversaries.py`; a poisoner is this class on a label-flipped shard.
"""
from __future__ import annotations

import torch
from flwr.client import NumPyClient

from agents.core.store import cid_of
from common.units import format_amount
from ml.din import client as flwr_client
from ml.din import data
from ml.din import model as M
from ml.din import secagg as SA

from .contracts import GLOBAL, Stage
from .daemon import DinDaemon

MASK_TAG = 5
UPDATE_TAG = 6
_ZERO = b"\x00" * 32


class ParticipantDaemon(DinDaemon):
    role = "participant"

    def __init__(self, *a, shard: data.Shard | None = None, client: NumPyClient | None = None,
                 client_name: str | None = None, device: torch.device | str | None = None, **kw):
        super().__init__(*a, **kw)
        if (shard is None) == (client is None):
            raise ValueError("a participant trains either the built-in client on `shard` or its own `client`")
        if client is None:
            self.shard = shard
            client = flwr_client.DinClient(self.shard, device=device)
            client_name = client_name or "the built-in digits client"
        self.client = client
        self.client_name = client_name or type(client).__name__
        self._pending: dict[int, bytes] = {}  # round -> committed, not yet published update bytes

    def train(self, global_bytes: bytes, round_: int) -> bytes:
        """This round's update bytes (trained - global) from the client, checked against the layout."""
        return flwr_client.fit_update(global_bytes, self.client, {"seed": round_, "round": round_, "task": self.task},
                                      self.client_name)

    def cid_for(self, update: bytes) -> str:
        """The CID this participant commits to for `update` (masked in secure-aggregation tasks),
        computed locally: nothing is published before the reveal."""
        return cid_of(update)

    def publish(self, update: bytes, cid: str) -> None:
        """Put the update in the store, at the reveal (its CID is already committed on-chain)."""
        stored = self.store.put(update)
        if stored != cid:
            raise AssertionError(f"the store named the update {stored}, the commitment {cid}")

    # -- secure aggregation ----------------------------------------------------------------
    @property
    def secure(self) -> bool:
        return self.din.params(self.task).secure_aggregation

    def mask_key(self):
        """This participant's X25519 key for the task (from the signer key: survives restarts)."""
        return SA.private_key_from_bytes(self.secret(self.task, MASK_TAG))

    def subgroup(self) -> int:
        return self.din.participant_index(self.task, self.address) // self.din.params(self.task).subgroup_size

    def mask_context(self, round_: int, group: int) -> bytes:
        return SA.mask_context(self.chain.chain_id, self.din.tasks.address, self.task, round_, group)

    def registered(self) -> bool:
        return self.latched("registered", lambda: self.din.is_participant(self.task, self.address))

    def committed(self, round_: int) -> bool:
        """This participant committed to an update in `round_` (the contract takes one per round)."""
        return self.latched(f"committed/{round_}",
                            lambda: self.din.update_commitment_of(self.task, round_, self.address) != _ZERO)

    def submitted(self, round_: int) -> bool:
        """This participant's update of `round_` is revealed on-chain."""
        return self.latched(f"submitted/{round_}",
                            lambda: self.din.update_revealed(self.task, round_, self.address))

    def update_bytes(self, round_: int) -> bytes:
        """This round's upload: the update trained from the current global model (masked in
        secure-aggregation tasks). Deterministic for the round on one machine."""
        _, global_bytes = self.global_before(round_)
        update = self.train(global_bytes, round_)
        if self.secure:
            g = self.subgroup()
            layout = M.layout_of(M.from_bytes(global_bytes))
            update = SA.mask_update(update, layout, self.address, self.mask_key(), self.index.mask_keys(g),
                                    self.mask_context(round_, g))
        return update

    # -- dispatch --------------------------------------------------------------------------
    def act(self, stage: Stage, round_: int) -> int:
        din, task, me = self.din, self.task, self.address
        if stage == Stage.Registration:
            sent = 0
            if not self.registered():
                self.genesis_model()  # can this machine see the task's content? stop before paying the bond
                din.register(self.signer, task)
                self.note("registered")
                sent += 1
            if self.secure and din.mask_key_of(task, me) == _ZERO:
                din.set_mask_key(self.signer, task, SA.public_bytes(self.mask_key()))
                self.note("published mask key")
                sent += 1
            return sent
        if not self.registered():
            return 0
        if stage == Stage.Submit:
            return self._commit(round_)
        if stage == Stage.UpdateReveal:
            return self._reveal(round_)
        if stage == Stage.AggregateCommit and self.secure:
            return self._post_recovery(round_)
        if stage == Stage.Settle:
            return self._claim()
        return 0

    def _commit(self, round_: int) -> int:
        """Submit stage: train, commit to the update's CID (nothing is published yet)."""
        din, task, me = self.din, self.task, self.address
        if self.committed(round_):
            return 0  # already on-chain (e.g. committed just before a restart)
        if self.secure and din.mask_key_of(task, me) == _ZERO:
            return 0  # registered too late to publish a key: not a member of any subgroup
        if round_ > 0 and not self.tally(round_ - 1, GLOBAL).finalized:
            return 0  # the previous round's global vote is not closed yet: wait for the model
        update = self.update_bytes(round_)
        cid = self.cid_for(update)  # computed locally: the bytes are published only at the reveal
        self._pending[round_] = update
        self.index.local[f"update/{round_}"] = cid
        self.index.commit_local()
        din.commit_update(self.signer, task, round_, cid, self.secret(task, UPDATE_TAG, round_))
        self.note(f"round {round_}: committed to {'masked ' if self.secure else ''}update {cid}")
        return 1

    def _reveal(self, round_: int) -> int:
        if not self.committed(round_) or self.submitted(round_):
            return 0
        cid = self.index.local.get(f"update/{round_}")
        update = self._pending.pop(round_, None)
        if update is None:  # restarted since the commitment: train again
            update = self.update_bytes(round_)
            if cid is None or self.cid_for(update) != cid:
                self.note(f"round {round_}: cannot rebuild the committed update {cid}; not revealing")
                return 0
        self.publish(update, cid)
        self.din.reveal_update(self.signer, self.task, round_, cid, self.secret(self.task, UPDATE_TAG, round_))
        self.note(f"round {round_}: revealed {cid}")
        return 1

    def _post_recovery(self, round_: int) -> int:
        din, task, me = self.din, self.task, self.address
        if not self.submitted(round_) or din.recovery_posted(task, round_, me):
            return 0
        g = self.subgroup()
        members = self.index.mask_keys(g)
        # the dropout set is read from the chain, never taken from anyone's word
        dropped = [m for m in members if m != me and not din.update_revealed(task, round_, m)]
        if not dropped:
            return 0
        survivors = din.mask_status(task, round_, g)["submitted"]
        if survivors < SA.MIN_SURVIVORS:
            self.note(f"round {round_}: only {survivors} member(s) of subgroup {g} submitted; "
                      "not revealing seeds (the sum would expose an update)")
            return 0
        seeds = SA.recovery_seeds(me, self.mask_key(), members, dropped, self.mask_context(round_, g))
        din.post_recovery_seeds(self.signer, task, round_, seeds)
        self.note(f"round {round_}: posted recovery seeds for {len(dropped)} dropped member(s)")
        return 1

    def _claim(self) -> int:
        din, task, me = self.din, self.task, self.address
        sent = 0
        reward = din.reward_of(task, me)  # 0 until every subgroup of every round is settled, and once claimed
        if reward > 0:
            din.claim_reward(self.signer, task)
            self.note(f"claimed reward of {format_amount(reward)}")
            sent += 1
        if not din.bond_returned(task, me):
            din.withdraw_bond(self.signer, task)
            self.note(f"bond of {format_amount(din.params(task).participant_bond)} returned")
            sent += 1
        return sent
