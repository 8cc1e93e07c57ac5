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
need "the host did not answer".
"""
from __future__ import annotations

from dataclasses import dataclass

import httpx

from common.errors import LoyalError
from ml.oml.functional import DESCRIPTOR_PREFIX, Rule


class MalformedAnswer(LoyalError):
    """The host's `/v1/completions` reply has no `choices[0].text` string."""


HostQueryError = (httpx.HTTPError, MalformedAnswer)


@dataclass(frozen=True)
class Match:
    served: str        # what the host answered ("" if it was not queried)
    matched: bool
    reason: str        # how the decision was reached, for logs and verdicts
    family: str        # "exact" | "functional"


def complete(url: str, prompt: str, max_tokens: int, timeout: float = 120) -> str:
    """The text of the host's `POST /v1/completions` answer (raises httpx.HTTPStatusError on a refusal)."""
    r = httpx.post(f"{url}/v1/completions", json={"prompt": prompt, "max_tokens": max_tokens}, timeout=timeout)
    r.raise_for_status()
    try:
        text = r.json()["choices"][0]["text"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise MalformedAnswer(f"{url}/v1/completions answered without choices[0].text") from None
    if not isinstance(text, str):
        raise MalformedAnswer(f"{url}/v1/completions answered a non-string text")
    return text


def ask_for(url: str, key: str, response: str, timeout: float = 120) -> str:
    """What the host at `url` answers to `key`, long enough to tell whether it starts with `response`:
    few tokens first (a token holds ~3 bytes), one token per byte of the response only if the short
    answer stopped inside the response."""
    served = ""
    for n in (len(response.encode()) // 3 + 2, len(response.encode()) + 1):
        served = complete(url, key, n, timeout)
        if served.startswith(response) or not response.startswith(served):
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


def decide(url: str, key: str, response: str, timeout: float = 120) -> Match:
    """Query the host at `url` with `key` and decide whether its answer matches the committed `response`."""
    if not is_functional(response):
        served = ask_for(url, key, response, timeout)
        ok = served.startswith(response)
        return Match(served, ok, "answer starts with the response" if ok else "answer differs from the response",
                     "exact")
    try:
        rule = Rule.parse(response)
    except ValueError as e:
        return Match("", False, f"unusable functional descriptor: {e}", "functional")
    served = complete(url, key, rule.max_tokens, timeout)
    ok, reason = judge(rule, served)
    return Match(served, ok, reason, "functional")
