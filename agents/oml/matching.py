"""Does a host's answer to a fingerprint key match the committed response? One decision for the
prover (before it claims) and the verifier (before it votes), for both fingerprint families:

- **exact** (`ml/oml/generate.py`): the committed response is the answer itself; the host matches
  when its greedy answer starts with it (`ask_for` asks for few tokens first, more only if needed).
- **functional** (`ml/oml/functional.py`): the committed response is a rule descriptor
  (`loyal-functional-v1:{...}`). The host is asked for `rule.max_tokens` tokens and matches when
  the rule holds on its answer: `Rule.count` (distinct words among the first `words` words,
  green/red under the key's seed) and `Rule.passes` (f(n_g, n_r)), exactly as `functional.check`
  decides a key. A response with the functional prefix that `Rule.parse` rejects is no match, with
  the parse error as the reason, and the host is not queried.

The host's refusal or an unreachable host raises `httpx.HTTPError`; an answer that is not an
OpenAI-style completion raises `MalformedAnswer`. Both are `HostQueryError`s for callers that only
need "the host did not answer". A licensed host's answer carries its signature (`loyal_signature`,
`answers.SignedAnswer`): `Match.answer` keeps it (None when the endpoint signed nothing or sent a
malformed one), and `judge_answer` decides a match from a completion alone, as verifiers do from a
claim's revealed signed answer without asking the host again.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import httpx

from common.errors import LoyalError
from ml.oml.functional import DESCRIPTOR_PREFIX, Rule

from .answers import BadSignedAnswer, SignedAnswer


class MalformedAnswer(LoyalError):
    """The host's `/v1/completions` reply has no `choices[0].text` string."""


HostQueryError = (httpx.HTTPError, MalformedAnswer)


@dataclass(frozen=True)
class Match:
    served: str        # what the host answered ("" if it was not queried)
    matched: bool
    reason: str        # how the decision was reached, for logs and verdicts
    family: str        # "exact" | "functional"
    answer: SignedAnswer | None = None  # the host's signature over `served` (None: unsigned endpoint)


@dataclass(frozen=True)
class Answered:
    text: str
    answer: SignedAnswer | None  # the endpoint's `loyal_signature`, parsed (None if absent or malformed)


def complete_signed(url: str, prompt: str, max_tokens: int, timeout: float = 120) -> Answered:
    """The host's `POST /v1/completions` answer and its signature (raises httpx.HTTPStatusError on a
    refusal, MalformedAnswer without `choices[0].text`). The signature is parsed, not checked."""
    r = httpx.post(f"{url}/v1/completions", json={"prompt": prompt, "max_tokens": max_tokens}, timeout=timeout)
    r.raise_for_status()
    try:
        body = r.json()
        text = body["choices"][0]["text"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise MalformedAnswer(f"{url}/v1/completions answered without choices[0].text") from None
    if not isinstance(text, str):
        raise MalformedAnswer(f"{url}/v1/completions answered a non-string text")
    answer = None
    if isinstance(body, dict) and body.get("loyal_signature") is not None:
        try:
            answer = SignedAnswer.from_json(body["loyal_signature"])
        except BadSignedAnswer:
            answer = None
    return Answered(text, answer)


def complete(url: str, prompt: str, max_tokens: int, timeout: float = 120) -> str:
    """The text of the host's `POST /v1/completions` answer (raises httpx.HTTPStatusError on a refusal)."""
    return complete_signed(url, prompt, max_tokens, timeout).text


def ask_for(url: str, key: str, response: str, timeout: float = 120) -> Answered:
    """What the host at `url` answers to `key`, long enough to tell whether it starts with `response`:
    few tokens first (a token holds ~3 bytes), one token per byte of the response only if the short
    answer stopped inside the response."""
    served = Answered("", None)
    for n in (len(response.encode()) // 3 + 2, len(response.encode()) + 1):
        served = complete_signed(url, key, n, timeout)
        if served.text.startswith(response) or not response.startswith(served.text):
            break
    return served


def is_functional(response: str) -> bool:
    """The committed response is (claims to be) a functional rule descriptor."""
    return response.startswith(DESCRIPTOR_PREFIX)


def judge(rule: Rule, served: str) -> tuple[bool, str]:
    """f(n_g, n_r) on an answer, as `functional.check` computes it, with a readable reason."""
    n_g, n_r = rule.count(served)
    ok = rule.passes(n_g, n_r)
    if n_g + n_r < rule.min_words:
        return ok, f"{n_g + n_r} distinct words among the first {rule.words}, fewer than {rule.min_words}"
    p = rule.p_value(n_g, n_r)
    return ok, f"{n_g} green / {n_r} red words, p = {p:.3g} {'<=' if ok else '>'} alpha {rule.alpha}"


def judge_answer(response: str, served: str) -> Match:
    """Whether the completion `served` matches the committed `response`, without asking anyone:
    a prefix for an exact fingerprint, the descriptor's rule for a functional one."""
    if not is_functional(response):
        ok = served.startswith(response)
        return Match(served, ok, "answer starts with the response" if ok else "answer differs from the response",
                     "exact")
    try:
        rule = Rule.parse(response)
    except ValueError as e:
        return Match(served, False, f"unusable functional descriptor: {e}", "functional")
    ok, reason = judge(rule, served)
    return Match(served, ok, reason, "functional")


def decide(url: str, key: str, response: str, timeout: float = 120) -> Match:
    """Query the host at `url` with `key` and decide whether its answer matches the committed `response`."""
    if not is_functional(response):
        got = ask_for(url, key, response, timeout)
        return replace(judge_answer(response, got.text), answer=got.answer)
    try:
        rule = Rule.parse(response)
    except ValueError as e:
        return Match("", False, f"unusable functional descriptor: {e}", "functional")
    got = complete_signed(url, key, rule.max_tokens, timeout)
    return replace(judge_answer(response, got.text), answer=got.answer)
