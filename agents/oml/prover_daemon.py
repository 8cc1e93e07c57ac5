"""`loyal oml prover`: the prover as its own OS process, safe to SIGKILL.

It wraps `prover.Prover` (probing and the fingerprint tree) and files each claim in resumable steps,
so a restarted prover finishes a claim instead of starting another:

1. probe a target host with an unspent key of its subset (`Prover.probe`); on a match without a
   permission, write the *intent* (host, key, response, block, and the host's signed answer, or
   the endpoint for a sealed claim when it signs nothing) to its state file (atomic);
2. `commit` (or `commitSealed`, the opening sealed to every verifier), unless
   `Claims.commits(prover, commitment)` already holds it. The salt is derived from the prover's
   key, the host and the fingerprint key, so a restart recomputes the same commitment;
3. approve the bond (only if the allowance is short, or to move the chain past the commit block);
4. `reveal` with the signed answer (or, sealed, `revealLeak` once the sealed-to verifiers
   observed), unless the key is already spent, in which case the claim id is read from the
   `ClaimRevealed` event carrying this commitment (looked up from the intent's block on).

Each target is probed again every `probe_every` seconds until a claim against it is revealed.
Leak endpoints (URLs that are no licensed host's service) are probed with one key of every host's
subset (`Prover.probe_leak`); a reproduced fingerprint names the host whose copy leaked, and the
leak claim (`leakCommitment`, `revealLeak` with both proofs) is filed in the same resumable steps.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from eth_abi import encode as abi_encode
from eth_utils import keccak

from agents.core.events import fetch_events
from common.files import atomic_write_json
from ml.oml.commitment import FingerprintTree

from .answers import SignedAnswer
from .matching import HostQueryError
from .prover import PendingLeak, Prover
from .sealed import Opening, seal

log = logging.getLogger("loyal.oml.prover")


class ProverDaemon:
    def __init__(self, prover: Prover, targets: dict[str, str], state_path: Path, *, probe_every: float = 600.0,
                 leak_endpoints: list[str] = ()):
        self.prover = prover
        self.chain = prover.chain
        self.targets = targets  # host address -> URL of its service
        self.leak_endpoints = list(leak_endpoints)
        self.state_path = state_path
        self.probe_every = probe_every
        self.state = json.loads(state_path.read_text()) if state_path.exists() else {"claims": {}, "probed": {}}
        self.state.setdefault("leaks", {})  # endpoint -> {host, key, response, from_block[, claim_id]} or {}
        self._claims = self.chain.contract("Claims")
        self._token = self.chain.contract("LoyalToken")

    def _save(self) -> None:
        atomic_write_json(self.state_path, self.state, indent=None)

    def salt(self, host: str, key: str) -> bytes:
        """Derived from the prover's private key: the same commitment after a restart, unguessable to others."""
        return keccak(abi_encode(["bytes32", "address", "bytes32"],
                                 [keccak(bytes(self.prover.signer.key)), host, keccak(key.encode())]))

    @property
    def done(self) -> bool:
        """Every target has a revealed claim against it, or was probed at least once without one."""
        return all(self.state["claims"].get(h, {}).get("claim_id") or
                   (h in self.state["probed"] and h not in self.state["claims"]) for h in self.targets) and \
            all(e in self.state["leaks"] and (not self.state["leaks"][e] or self.state["leaks"][e].get("claim_id"))
                for e in self.leak_endpoints)

    def step(self) -> int:
        sent = 0
        for host, url in self.targets.items():
            c = self.state["claims"].get(host)
            if c and c.get("claim_id"):
                continue
            if c is None:
                if time.time() - self.state["probed"].get(host, 0) < self.probe_every:
                    continue
                try:
                    p = self.prover.probe(url, host)
                except HostQueryError as e:
                    log.warning("host %s at %s gave no answer (%s)", host, url, e)
                    self.state["probed"][host] = time.time()
                    self._save()
                    continue
                except LookupError as e:
                    log.info("host %s: %s", host, e)
                    self.state["probed"][host] = time.time()
                    self._save()
                    continue
                self.state["probed"][host] = time.time()
                log.info("probed %s with key %r: answered %r (fingerprint %s, permission %s)", host, p.key, p.served,
                         "matches" if p.fingerprint_match else "absent", "found" if p.permitted else "missing")
                if not (p.fingerprint_match and not p.permitted):
                    self._save()
                    continue
                c = {"key": p.key, "response": p.response, "from_block": self.chain.w3.eth.block_number}
                if p.answer is not None:  # the host's valid signature over its answer: a signed claim
                    c.update(answer=p.answer.to_json(), completion=p.served)
                elif host in self.prover.subsets:  # it signs nothing: a sealed claim at its own endpoint
                    c["endpoint"] = url
                else:
                    log.warning("host %s served a fingerprint unsigned and its subset is unknown: no claim (%s)",
                                host, p.unsigned_reason)
                    self._save()
                    continue
                self.state["claims"][host] = c
                self._save()
            sent += self._file(host, c)
        for url in self.leak_endpoints:
            sent += self._leak_step(url)
        return sent

    def _leak_step(self, url: str) -> int:
        c = self.state["leaks"].get(url)
        if c is not None and (not c or c.get("claim_id")):
            return 0  # probed without a match, or claimed
        if c is None:
            try:
                p = self.prover.probe_leak(url)
            except HostQueryError as e:
                log.warning("leak endpoint %s gave no answer (%s)", url, e)
                return 0
            if p is None or p.permitted:
                log.info("leak endpoint %s reproduced no unpermitted fingerprint", url)
                self.state["leaks"][url] = {}
                self._save()
                return 0
            log.info("leak endpoint %s answered key %r with %r: host %s's copy", url, p.key, p.served, p.host)
            c = {"host": p.host, "key": p.key, "response": p.response, "from_block": self.chain.w3.eth.block_number,
                 "endpoint": url, "leak_of": url}
            self.state["leaks"][url] = c
            self._save()
        return self._file(c["host"], c)

    def _file(self, host: str, c: dict, endpoint: str | None = None) -> int:
        """Commit / approve / reveal a claim, skipping what the chain already holds; records the claim
        id in `c`. A claim with the host's signed answer (`c["answer"]`) is revealed with it; without
        one (`endpoint`: a leak endpoint, or the host's own service when it signs nothing) the
        commitment's opening is sealed to every verifier (`Claims.commitSealed`) and revealed once
        they observed the endpoint (or `observe_timeout` passed), as `Prover.file_leak` does."""
        key, response = c["key"], c["response"]
        endpoint = endpoint or c.get("endpoint")
        salt = self.salt(host, key)
        opening = Opening(key, response, host, endpoint, salt) if endpoint else None
        commitment = opening.commitment() if opening else \
            self.chain.call(self._claims.functions.claimCommitment(key, response, host, salt))
        if self.chain.call(self._claims.functions.keySpent(self.prover.model_id, keccak(key.encode()))):
            ev = next((e for e in fetch_events(self.chain, from_block=c["from_block"], contracts=["Claims"],
                                               names=["ClaimRevealed"])
                       if bytes(e.args["commitment"]) == commitment), None)
            if ev is None:
                log.warning("key %r against %s was spent by someone else's claim; dropping it", key, host)
                if c.get("leak_of"):
                    del self.state["leaks"][c["leak_of"]]
                else:
                    del self.state["claims"][host]
                    self.state["probed"].pop(host, None)
                self._save()
                return 0
            c["claim_id"] = int(ev.args["claimId"])
            self._save()
            log.info("claim %d against %s was revealed before a restart; recorded", c["claim_id"], host)
            return 0
        sent = 0
        me = self.prover.signer.address
        committed = self.chain.call(self._claims.functions.commits(me, commitment))[0]
        if committed == 0:
            if opening:
                keys = self.prover.verifier_keys()
                c["sealed_to"], c["commit_time"] = list(keys), time.time()
                self._save()  # before the transaction: a restart waits for these verifiers
                fn = self._claims.functions.commitSealed(commitment, seal(opening, keys))
            else:
                fn = self._claims.functions.commit(commitment)
            receipt = self.chain.transact(self.prover.signer, fn)
            committed = receipt["blockNumber"]
            sent += 1
            log.info("committed to a %sclaim against %s (block %d)", "sealed " if opening else "", host, committed)
        bond = self.chain.call(self._claims.functions.claimBond())
        if self.chain.call(self._token.functions.allowance(me, self._claims.address)) < bond \
                or self.chain.w3.eth.block_number <= committed:
            self.chain.transact(self.prover.signer, self._token.functions.approve(self._claims.address, bond))
            sent += 1
        while self.chain.w3.eth.block_number <= committed:
            time.sleep(0.2)  # interval mining: the reveal must land in a later block than the commit
        proof = self.prover.tree.proof(key, response)
        if opening:
            pending = PendingLeak(opening, commitment, committed, tuple(c.get("sealed_to", ())))
            if len(self.prover.observed_by(pending)) < len(pending.sealed_to) \
                    and time.time() - c.get("commit_time", 0) < self.prover.observe_timeout:
                return sent  # the verifiers are still observing; the next step looks again
            subset_proof = FingerprintTree(self.prover.subsets[host]).proof(key, response)
            fn = self._claims.functions.revealLeak((self.prover.model_id, host, endpoint, key, response, salt, proof,
                                                   subset_proof))
        else:
            answer = SignedAnswer.from_json(c["answer"])
            fn = self._claims.functions.reveal((self.prover.model_id, host, key, response, salt, proof,
                                                answer.as_struct(), c["completion"], answer.signature))
        receipt = self.chain.transact(self.prover.signer, fn)
        ev = next(e for e in self.chain.decode_events(receipt) if e.name == "ClaimRevealed")
        c["claim_id"] = int(ev.args["claimId"])
        self._save()
        log.info("%s %d filed against %s (key %r%s)", "leak claim" if opening else "claim", c["claim_id"], host, key,
                 f", served at {endpoint}" if endpoint else "")
        return sent + 1
