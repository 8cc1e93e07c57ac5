"""Benchmarks: each module has `main()` and writes bench/results/<name>.json. Run `python -m bench [names]`."""
import json
import platform
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, NamedTuple

if TYPE_CHECKING:
    from agents.core.anvil import Anvil
    from agents.core.chain import Chain

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    return {"cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()}


def write(name: str, data: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    p = RESULTS / f"{name}.json"
    p.write_text(json.dumps({"machine": machine(), **data}, indent=2) + "\n")
    print(json.dumps(data, indent=2))
    return p


class Devnet(NamedTuple):
    chain: "Chain"
    tmp: Path  # scratch directory (address book, stores), removed on exit
    node: "Anvil"  # for its rpc_url (subprocesses) and pid (CPU accounting)


@contextmanager
def devnet(accounts: int = 32) -> Iterator[Devnet]:
    """A fresh Anvil with the suite deployed by dev account 0, and a scratch directory; both gone on exit."""
    from agents.core.anvil import Anvil
    from agents.core.chain import Chain
    from agents.core.deploy import deploy_suite
    from agents.core.signers import dev_signer

    with Anvil(accounts=accounts) as node, tempfile.TemporaryDirectory() as tmp:
        chain = Chain.connect(node.rpc_url, book_path=Path(tmp) / "b.json")
        deploy_suite(chain, dev_signer(0))
        yield Devnet(chain, Path(tmp), node)
