"""The ledger agent benchmark on SmolLM2-135M-Instruct (20 ops): see `bench.ledger_agent`."""
import sys

from . import ledger_agent


def main() -> None:
    sys.argv = [sys.argv[0], "--model", "smollm2"]
    ledger_agent.main()
