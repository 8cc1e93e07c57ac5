"""Explorer: an index of the suite's events in a real database (`loyal index`) and the web pages
auditors and voters read from it (`loyal explorer`), including relayed EIP-712 ballots."""
from agents.core.subsystem import Subsystem

SUBSYSTEM = Subsystem(
    name="explorer",
    commands=(("index", "agents.explorer.cli:index"), ("explorer", "agents.explorer.cli:explorer")),
)
