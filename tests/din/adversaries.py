"""Test-only DIN actors: participants whose committed and revealed CID names an unusable update, and a Runner
that puts them into a task. Production daemons know nothing of them."""
from __future__ import annotations

import json
import random

import httpx
import torch

from agents.core.store import cid_of
from agents.din.participant import ParticipantDaemon
from agents.din.scenario import Runner
from ml.din import model as M

#: How a bad participant spoils its update, each round.
BAD_KINDS = ("never-stored", "not-a-cid", "malformed", "nan", "wrong-shape", "oversized",
             "malformed-dag-pb")  # the last needs an IPFS daemon (KuboStore)


class BadBlobParticipant(ParticipantDaemon):
    """Trains like everyone, then commits to (and reveals) a CID whose blob is unusable in the way `kind` says."""

    def __init__(self, *a, kind: str, **kw):
        super().__init__(*a, **kw)
        if kind not in BAD_KINDS:
            raise ValueError(kind)
        self.kind = kind
        self.submitted_cids: list[str] = []

    def cid_for(self, update: bytes) -> str:
        """The bad CID it commits to (whatever it names is stored now, or never)."""
        cid = self._bad_cid(update)
        self.submitted_cids.append(cid)
        return cid

    def publish(self, update: bytes, cid: str) -> None:
        """Nothing to publish at the reveal: the bad CID's blob, if any, was stored by `cid_for`."""

    def _bad_cid(self, update: bytes) -> str:
        if self.kind == "never-stored":  # a well-formed CID of bytes nobody ever stored
            return cid_of(b"never stored: " + self.address.encode() + update)
        if self.kind == "not-a-cid":
            return "not-a-cid"
        if self.kind == "malformed":  # stored, but not a tensor blob
            return self.store.put(b"\x00 not safetensors " * 64)
        if self.kind == "malformed-dag-pb":  # a block under a dag-pb CID that is not protobuf
            r = httpx.post(self.store.location + "/api/v0/block/put",
                           params={"format": "dag-pb", "mhtype": "sha2-256", "version": "1"},
                           files={"file": ("b", b"\xff\xfe not protobuf " + self.address.encode(), "application/octet-stream")})
            return json.loads(r.text)["Key"]
        state = M.from_bytes(update)
        if self.kind == "nan":
            state["fc1.weight"][0, 0] = float("nan")
        elif self.kind == "wrong-shape":
            state["fc1.weight"] = state["fc1.weight"][:-1].clone()
        elif self.kind == "oversized":  # larger than any blob of the task's model can be
            return self.store.put(random.Random(self.address).randbytes(200_000))
        return self.store.put(M.to_bytes({k: torch.as_tensor(v) for k, v in state.items()}))


class BadParticipantsRunner(Runner):
    """A Runner whose participant i is a BadBlobParticipant of kind `bad[i]`."""

    def __init__(self, *a, bad: dict[int, str], **kw):
        super().__init__(*a, **kw)
        self.bad = bad

    def participant_daemon(self, i: int) -> ParticipantDaemon:
        if i not in self.bad:
            return super().participant_daemon(i)
        return BadBlobParticipant(self.chain, self.store, self.participants[i], self.task,
                                  self.cursor(f"participant{i}"), shard=self.split.shards[i],
                                  start_block=self.start_block, kind=self.bad[i])
