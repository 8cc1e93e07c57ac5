"""Signed answers: every completion a licensed host serves carries the host's EIP-712 signature over
`Answer(uint256 modelId,address host,uint64 licenceStart,bytes32 promptHash,bytes32 completionHash,
bytes32 permissionDigest,uint64 time)` in the domain ("Loyal OML HostAnswers", "1", chainId,
`Claims.answers()`), bit for bit what `contracts/oml/HostAnswers.sol` checks.

The host returns it next to the OpenAI-style body as `loyal_signature` (so any OpenAI client still
works and ignores it):

    {"domain": {"name", "version", "chainId", "verifyingContract"},
     "answer": {"modelId", "host", "licenceStart", "promptHash", "completionHash", "permissionDigest", "time"},
     "signature": "0x…"}

A prover's claim carries this answer and its completion text; `Claims.reveal` checks the signature
recovers to the accused host, that it names the model, the host's current licence and the key, and
that the completion hashes to it. Verifiers judge the claim from this revealed answer (`check`)
without asking the host again, so a host that stops answering a revealed key gains nothing; a host
cannot repudiate what it signed. `permissionDigest` is the UsageLedger digest of the σ(prompt) the
host held (zero when none), `time` the host's clock (unix seconds): informational, not checked on-chain.
"""
from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

from common.errors import LoyalError
from common.typed_data import Domain, StructType, typed_data

ANSWER = StructType("Answer", (
    ("modelId", "uint256"), ("host", "address"), ("licenceStart", "uint64"), ("promptHash", "bytes32"),
    ("completionHash", "bytes32"), ("permissionDigest", "bytes32"), ("time", "uint64")))
ANSWERS_NAME = "Loyal OML HostAnswers"
ANSWERS_VERSION = "1"
NO_PERMISSION = bytes(32)


class BadSignedAnswer(LoyalError):
    """A signed answer that is malformed, not signed by the host it names, or not for this prompt,
    completion, model or domain."""


@dataclass(frozen=True)
class SignedAnswer:
    """An `Answer` struct plus the host's 65-byte signature, and the domain it was signed in."""
    domain: Domain
    model_id: int
    host: str
    licence_start: int
    prompt_hash: bytes
    completion_hash: bytes
    permission_digest: bytes
    time: int
    signature: bytes

    def message(self) -> dict:
        return {"modelId": self.model_id, "host": to_checksum_address(self.host), "licenceStart": self.licence_start,
                "promptHash": self.prompt_hash, "completionHash": self.completion_hash,
                "permissionDigest": self.permission_digest, "time": self.time}

    def as_struct(self) -> tuple:
        """The tuple web3 passes as `HostAnswers.Answer`."""
        m = self.message()
        return tuple(m[name] for name, _ in ANSWER.fields)

    def typed(self) -> dict:
        return typed_data(self.domain, ANSWER, self.message())

    def digest(self) -> bytes:
        """The EIP-712 digest (`HostAnswers.answerDigest`)."""
        return _hash_eip191_message(encode_typed_data(full_message=self.typed()))

    def signer(self) -> str:
        """The address that signed this answer (raises BadSignedAnswer for an unusable signature)."""
        try:
            return Account.recover_message(encode_typed_data(full_message=self.typed()), signature=self.signature)
        except Exception as e:  # eth_keys raises several types for a malformed signature
            raise BadSignedAnswer(f"unusable answer signature ({type(e).__name__})") from None

    def to_json(self) -> dict:
        m = self.message()
        return {"domain": self.domain.as_dict(),
                "answer": {**m, "promptHash": "0x" + self.prompt_hash.hex(),
                           "completionHash": "0x" + self.completion_hash.hex(),
                           "permissionDigest": "0x" + self.permission_digest.hex()},
                "signature": "0x" + self.signature.hex()}

    @classmethod
    def from_json(cls, d: object) -> "SignedAnswer":
        """Parse a `loyal_signature` object; raises BadSignedAnswer naming what is wrong."""
        try:
            dom, a = d["domain"], d["answer"]  # type: ignore[index]
            return cls(Domain(str(dom["name"]), str(dom["version"]), int(dom["chainId"]),
                              to_checksum_address(dom["verifyingContract"])),
                       int(a["modelId"]), to_checksum_address(a["host"]), int(a["licenceStart"]),
                       _b32(a["promptHash"]), _b32(a["completionHash"]), _b32(a["permissionDigest"]), int(a["time"]),
                       bytes.fromhex(str(d["signature"]).removeprefix("0x")))  # type: ignore[index]
        except (KeyError, TypeError, ValueError) as e:
            raise BadSignedAnswer(f"malformed loyal_signature ({type(e).__name__}: {e})") from None


def _b32(text: object) -> bytes:
    b = bytes.fromhex(str(text).removeprefix("0x"))
    if len(b) != 32:
        raise ValueError(f"{text!r} is not 32 bytes")
    return b


def answers_domain(chain) -> Domain:
    """The HostAnswers domain of this deployment (the contract `Claims` deployed)."""
    return Domain(ANSWERS_NAME, ANSWERS_VERSION, chain.chain_id,
                  to_checksum_address(chain.call(chain.contract("Claims").functions.answers())))


def sign_answer(signer: LocalAccount, domain: Domain, model_id: int, licence_start: int, prompt: str,
                completion: str, *, permission_digest: bytes = NO_PERMISSION, time: int) -> SignedAnswer:
    """The host's signature over one served completion."""
    unsigned = SignedAnswer(domain, model_id, to_checksum_address(signer.address), licence_start,
                            keccak(prompt.encode()), keccak(completion.encode()), permission_digest, int(time), b"")
    sig = signer.sign_message(encode_typed_data(full_message=unsigned.typed())).signature
    return SignedAnswer(**{**unsigned.__dict__, "signature": bytes(sig)})


def check(answer: SignedAnswer, *, domain: Domain, host: str, model_id: int, prompt: str, completion: str,
          licence_start: int | None = None) -> None:
    """Raise BadSignedAnswer unless `answer` is `host`'s signature, in `domain`, over this model,
    prompt and completion (and licence, when given): the checks `Claims.reveal` makes, off-chain."""
    if answer.domain != domain:
        raise BadSignedAnswer(f"answer signed for another deployment ({answer.domain.as_dict()})")
    if answer.model_id != model_id:
        raise BadSignedAnswer(f"answer is for model {answer.model_id}, not {model_id}")
    if to_checksum_address(answer.host) != to_checksum_address(host):
        raise BadSignedAnswer(f"answer names host {answer.host}, not {host}")
    if licence_start is not None and answer.licence_start != licence_start:
        raise BadSignedAnswer(f"answer is under licence {answer.licence_start}, not the current {licence_start}")
    if answer.prompt_hash != keccak(prompt.encode()):
        raise BadSignedAnswer("answer is for another prompt")
    if answer.completion_hash != keccak(completion.encode()):
        raise BadSignedAnswer("answer is for another completion")
    signer = answer.signer()
    if signer != to_checksum_address(host):
        raise BadSignedAnswer(f"answer signed by {signer}, not by host {to_checksum_address(host)}")
