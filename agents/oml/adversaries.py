"""Dishonest OML actors for `loyal oml demo` and the tests: an honest class with one decision
overridden, so the production classes carry no switch for misbehaving."""
from __future__ import annotations

import os

from .host import Host, PermissionDenied
from .prover import PendingLeak, Prover
from .sealed import Opening, seal


class CheatingHost(Host):
    """Serves every query without asking the platform for a permission and so posts no usage
    (no fees to the community): what a fingerprint claim exists to catch. Also what a rogue
    endpoint serving a leaked copy does."""

    asks_permission = False

    def __init__(self, *a, platform_url: str | None = None, **kw):
        super().__init__(*a, platform_url=platform_url, **kw)


class UnsignedHost(CheatingHost):
    """Serves without permissions and signs no answer (`loyal_signature` is null): a rogue server
    running a leaked copy. Only a sealed claim (`Prover.file_leak`) can catch it."""

    def sign_answer(self, prompt: str, text: str) -> dict | None:
        return None


class TipOffHost(CheatingHost):
    """Watches the chain for revealed claim keys (`Claims.ClaimEvidence`) and, once a key is public,
    refuses to answer it (`on_reveal = "refuse"`, HTTP 503) or answers something else
    (`on_reveal = "change"`): the host issue #14 is about. A claim judged on the signed answer, or on
    observations made before the reveal, still slashes it."""

    on_reveal = "refuse"

    def revealed_keys(self) -> set[str]:
        from agents.core.events import fetch_events

        return {e.args["key"] for e in fetch_events(self.chain, contracts=["Claims"], names=["ClaimEvidence"])}

    def serve(self, prompt: str, max_tokens: int) -> str:
        if prompt in self.revealed_keys():
            if self.on_reveal == "refuse":
                raise PermissionDenied("this query is not served")
            return "nothing to see here"
        return super().serve(prompt, max_tokens)


class ChangingHost(TipOffHost):
    on_reveal = "change"


class TipOffUnsignedHost(TipOffHost):
    """A rogue endpoint that signs nothing and goes quiet on revealed keys."""

    def sign_answer(self, prompt: str, text: str) -> dict | None:
        return None


class GarbageSealProver(Prover):
    """Seals an opening that does not open its commitment (another salt) to every verifier: each
    verifier's `unseal` fails, it observes `seal-error: …` and votes against, so the claim cannot
    be confirmed and the prover loses its bond."""

    def commit_leak(self, host: str, endpoint: str, key: str, response: str) -> PendingLeak:
        keys = self.verifier_keys()
        opening = Opening(key, response, host, endpoint, os.urandom(32))
        decoy = Opening(key, response, host, endpoint, os.urandom(32))
        block = self._commit_then_next_block(
            self._claims.functions.commitSealed(opening.commitment(), seal(decoy, keys)))
        return PendingLeak(opening, opening.commitment(), block, tuple(keys))


def _cheating_durable_host():
    from .host_daemon import DurableHost

    class CheatingDurableHost(DurableHost):
        """`loyal oml host serve` that skips permissions (the demo's and tests' cheating host process)."""
        asks_permission = False

        def __init__(self, *a, platform_url: str | None = None, **kw):
            super().__init__(*a, platform_url=platform_url, **kw)

    return CheatingDurableHost


if __name__ == "__main__":
    # `python -m agents.oml.adversaries host serve ARGS...`: `loyal oml host serve ARGS...` as a cheating host.
    import sys

    from agents import cli as _cli
    from agents.oml import cli as _oml_cli

    _oml_cli.HOST_CLASS = _cheating_durable_host()
    sys.exit(_cli.main(["oml", *sys.argv[1:]]))
