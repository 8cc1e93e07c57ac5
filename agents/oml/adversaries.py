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
