"""A licensed host: stakes, signs the licence (EIP-712), serves the model over an OpenAI-compatible
`POST /v1/completions` (and `/v1/chat/completions`), asks the platform for σ(q) before answering each query (a request signed
with the host's key, `platform.sign_request`), posts usage batches
(count + Merkle root of permission digests, fees paid to the community) and defends claims.
Every answer carries the host's EIP-712 signature (`answers.py`, `Host.sign_answer`) as
`loyal_signature` in the response JSON: a claim is judged on it, nobody asks the host again.

Claims against the host reach it through an `EventFollower` on `Claims.ClaimRevealed` (the
process's shared event source; no rescan of the chain): `defend_all()` answers those revealed
since its last call. With `cursor_path` the position survives restarts (it is written once per
block range that brought a claim against this host); a defence replayed after a kill is harmless,
`defend` re-reads the claim and answers only an open one.

A host that serves without asking for permissions (the behaviour the protocol exists to catch) is
`adversaries.CheatingHost`, for the demo and the tests.
"""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from agents.core.chain import Chain
from agents.core.token import Stakes
from agents.core.views import read
from agents.core.events import EventCursor, EventFollower
from common.errors import LoyalError
from common.typed_data import Domain, StructType, typed_data

from .answers import answers_domain, sign_answer
from .claims import ClaimStatus, read_claim
from .permits import Permit, UsageTree, domain_separator, permit_digest, query_hash
from .platform import sign_request

Generate = Callable[[str, int], str]


class PermissionDenied(LoyalError):
    """The platform refused to sign a permission for this host."""


@dataclass
class HostState:
    pending: list[Permit] = field(default_factory=list)   # permitted, not yet in a posted batch
    by_query: dict[bytes, Permit] = field(default_factory=dict)
    batch_of: dict[bytes, tuple[int, UsageTree]] = field(default_factory=dict)  # digest -> (batch, tree)
    served: int = 0


AGREEMENT = StructType("Agreement", (
    ("modelId", "uint256"), ("host", "address"), ("feePerQuery", "uint256"), ("stakeRequired", "uint256"),
    ("licencePeriod", "uint64"), ("queryBudget", "uint64"), ("nonce", "uint256"), ("deadline", "uint256")))
"""The licence a host signs for `HostAgreements.sign` (domain "Loyal OML HostAgreements", "1")."""


def join_as_host(chain: Chain, host: LocalAccount, model_id: int, *, deadline_s: int = 3600) -> dict:
    """Stake what the model requires on top of stake locked by other licences, approve fees, sign
    and submit the licence (which locks `stakeRequired` in Staking until the licence ends)."""
    token, staking = chain.contract("LoyalToken"), chain.contract("Staking")
    agreements, usage = chain.contract("HostAgreements"), chain.contract("UsageLedger")
    m = read(chain, chain.contract("ModelRegistry").functions.model(model_id))
    have = chain.call(staking.functions.unlockedOf(host.address)) + chain.call(
        agreements.functions.lockedStake(model_id, host.address))  # a renewal moves its own old lock
    if have < m.stakeRequired:
        Stakes(chain).stake(host, m.stakeRequired - have)
    chain.transact(host, token.functions.approve(usage.address, 2**256 - 1))
    nonce = chain.call(agreements.functions.nonces(host.address))
    deadline = chain.w3.eth.get_block("latest")["timestamp"] + deadline_s
    message = {"modelId": model_id, "host": host.address, "feePerQuery": m.feePerQuery,
               "stakeRequired": m.stakeRequired, "licencePeriod": m.licencePeriod, "queryBudget": m.queryBudget,
               "nonce": nonce, "deadline": deadline}
    typed = typed_data(Domain("Loyal OML HostAgreements", "1", chain.chain_id, agreements.address), AGREEMENT, message)
    sig = host.sign_message(encode_typed_data(full_message=typed)).signature
    struct = tuple(message[name] for name, _ in AGREEMENT.fields)
    receipt = chain.transact(host, agreements.functions.sign(struct, sig))
    return {"cid": m.modelCid, "fee": m.feePerQuery, "stake": m.stakeRequired, "sign_gas": receipt["gasUsed"]}


class Host:
    asks_permission = True  # every query waits for the platform's σ(q)

    def __init__(self, chain: Chain, signer: LocalAccount, model_id: int, generate: Generate, *,
                 platform_url: str | None, model_name: str = "oml-model",
                 cursor_path: Path | str | None = None, start_block: int | None = None):
        """`start_block`: first block watched for claims when `cursor_path` has no cursor yet
        (default: the next block; pass the licence's block to cover claims made before start)."""
        if not platform_url and self.asks_permission:
            raise ValueError("an honest host needs the platform URL to ask for permissions")
        self.chain = chain
        self.signer = signer
        self.address = signer.address
        self.model_id = model_id
        self.generate = generate
        self.model_name = model_name
        self.state = HostState()
        self._http = httpx.Client(base_url=platform_url, timeout=30) if platform_url else None
        self._lock = threading.Lock()
        self._gen_lock = threading.Lock()
        ledger = chain.contract("UsageLedger")
        self._ledger = ledger
        self._separator = domain_separator(chain.chain_id, ledger.address)
        self._answers_domain = answers_domain(chain)
        self.licence_start = read(chain, chain.contract("HostAgreements").functions.licenceOf(
            model_id, signer.address)).startsAt  # answers name this licence (restart after a renewal)
        start = chain.w3.eth.block_number + 1 if start_block is None else start_block
        cursor = EventCursor.open(cursor_path, start) if cursor_path else EventCursor(None, start - 1)
        self.claims = EventFollower(chain, cursor, contracts=["Claims"], names=["ClaimRevealed"],
                                    where=lambda ev: ev.args["host"] == self.address)

    # -- serving -------------------------------------------------------------------------------
    def request_permits(self, queries: list[str]) -> list[Permit]:
        try:
            r = self._http.post("/v1/permits", json=sign_request(
                self.signer, self.model_id, [query_hash(q) for q in queries]))
        except httpx.HTTPError as e:
            raise PermissionDenied(f"platform at {self._http.base_url} unreachable ({type(e).__name__})") from None
        if r.status_code != 200:
            raise PermissionDenied(f"platform refused permits ({r.status_code}): {r.json().get('detail')}")
        permits = [Permit.from_json(p) for p in r.json()["permits"]]
        with self._lock:
            for p in permits:
                self.state.pending.append(p)
                self.state.by_query[p.query_hash] = p
        return permits

    def serve(self, prompt: str, max_tokens: int) -> str:
        if self.asks_permission:
            self.request_permits([prompt])
        with self._gen_lock:  # one generation at a time on CPU
            text = self.generate(prompt, max_tokens)
        with self._lock:
            self.state.served += 1
        return text

    def sign_answer(self, prompt: str, text: str) -> dict | None:
        """The `loyal_signature` object of one served answer: the host's EIP-712 signature over
        (model, licence, prompt hash, completion hash, digest of σ(prompt) or zero, time)."""
        with self._lock:
            p = self.state.by_query.get(query_hash(prompt))
        return sign_answer(self.signer, self._answers_domain, self.model_id, self.licence_start, prompt, text,
                           permission_digest=self.digest(p) if p else bytes(32), time=int(time.time())).to_json()

    def digest(self, p: Permit) -> bytes:
        return permit_digest(self._separator, p.query_hash, p.host, p.model_id, p.nonce, p.expiry, p.issued_block)

    # -- usage ---------------------------------------------------------------------------------
    def post_usage(self) -> dict | None:
        """Post every pending permit as one batch (pays the fees); None if nothing is pending."""
        with self._lock:
            batch, self.state.pending = self.state.pending, []
        if not batch:
            return None
        tree = UsageTree([self.digest(p) for p in batch])
        try:
            receipt = self.chain.transact(
                self.signer, self._ledger.functions.postUsage(self.model_id, len(batch), tree.root))
        except Exception:
            with self._lock:
                self.state.pending = batch + self.state.pending
            raise
        ev = next(e for e in self.chain.decode_events(receipt) if e.name == "UsagePosted")
        batch_id = ev.args["batchId"]
        with self._lock:
            for p in batch:
                self.state.batch_of[self.digest(p)] = (batch_id, tree)
        return {"batch_id": batch_id, "count": len(batch), "fee": ev.args["fee"],
                "gas": receipt["gasUsed"], "root": "0x" + tree.root.hex()}

    # -- defence -------------------------------------------------------------------------------
    def defend(self, claim_id: int) -> str | None:
        """Answer an open claim against this host with σ(key) if it has one; returns how."""
        claims = self.chain.contract("Claims")
        c = read_claim(self.chain, claim_id)
        if c.host != self.address or c.model_id != self.model_id or c.status != ClaimStatus.OPEN:
            return None
        p = self.state.by_query.get(c.key_hash)
        if p is None or p.issued_block >= c.commit_block:
            return None  # no σ from a block before the claim's commitment: nothing to defend with
        posted = self.state.batch_of.get(self.digest(p))
        if posted is not None:
            batch_id, tree = posted
            if read(self.chain, self._ledger.functions.batch(batch_id)).postedBlock < c.commit_block:
                self.chain.transact(self.signer, claims.functions.defendWithUsage(
                    claim_id, p.as_struct(), batch_id, tree.proof(self.digest(p))))
                return "usage batch"
        self.chain.transact(self.signer, claims.functions.defendWithPermission(claim_id, p.as_struct(), p.signature))
        return "signed permission"

    def defend_all(self) -> dict[int, str]:
        """Defend every open claim revealed against this host since the last call; returns how."""
        out: dict[int, str] = {}

        def handle(ev, state: dict) -> None:
            how = self.defend(ev.args["claimId"])
            if how:
                out[ev.args["claimId"]] = how

        self.claims.poll(handle)
        return out


class CompletionRequest(BaseModel):
    model: str | None = None
    prompt: str = Field(min_length=1)
    max_tokens: int = Field(default=32, ge=1, le=256)
    temperature: float = 0.0


class ChatMessage(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int = Field(default=32, ge=1, le=256)
    temperature: float = 0.0


def plain_chat_prompt(messages: list[dict]) -> str:
    """A chat rendered for a model without a chat template: `role: content` lines, then `assistant:`."""
    return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"


def create_app(host: Host, chat_prompt: Callable[[list[dict]], str] = plain_chat_prompt) -> FastAPI:
    """OpenAI-compatible `POST /v1/completions`, `POST /v1/chat/completions` and `GET /v1/models`
    (greedy decoding; one choice). A chat is rendered to one prompt (`chat_prompt`: the model's chat
    template when it has one) and that prompt is the query the permission names."""
    app = FastAPI(title="Loyal OML host")

    def answer(prompt: str, max_tokens: int) -> str:
        try:
            return host.serve(prompt, max_tokens)
        except PermissionDenied as e:
            raise HTTPException(503, str(e)) from None

    def usage(prompt: str, text: str) -> dict:
        return {"prompt_tokens": len(prompt.encode()), "completion_tokens": len(text.encode()),
                "total_tokens": len(prompt.encode()) + len(text.encode())}

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": host.model_name, "object": "model", "owned_by": host.address}]}

    @app.post("/v1/completions")
    def completions(req: CompletionRequest) -> dict:
        text = answer(req.prompt, req.max_tokens)
        return {
            "id": "cmpl-" + uuid.uuid4().hex[:24], "object": "text_completion", "created": int(time.time()),
            "model": host.model_name,
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}],
            "loyal_signature": host.sign_answer(req.prompt, text),
            "usage": usage(req.prompt, text),
        }

    @app.post("/v1/chat/completions")
    def chat(req: ChatRequest) -> dict:
        prompt = chat_prompt([m.model_dump() for m in req.messages])
        text = answer(prompt, req.max_tokens)
        return {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24], "object": "chat.completion", "created": int(time.time()),
            "model": host.model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "loyal_signature": host.sign_answer(prompt, text),
            "usage": usage(prompt, text),
        }

    return app
