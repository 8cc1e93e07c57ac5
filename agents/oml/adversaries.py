"""Dishonest OML actors for `loyal oml demo` and the tests: an honest class with one decision
overridden, so the production classes carry no switch for misbehaving."""
from __future__ import annotations

from .host import Host


class CheatingHost(Host):
    """Serves every query without asking the platform for a permission and so posts no usage
    (no fees to the community): what a fingerprint claim exists to catch. Also what a rogue
    endpoint serving a leaked copy does."""

    asks_permission = False

    def __init__(self, *a, platform_url: str | None = None, **kw):
        super().__init__(*a, platform_url=platform_url, **kw)


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
