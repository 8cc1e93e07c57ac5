"""The examples of docs/dao.md run as written on a devnet: every fenced block that follows a
`<!-- devnet example -->` marker, in order, as one bash script (`set -euo pipefail`), against the
session's Anvil with the suite deployed, `loyal` being this checkout's CLI and `tools/ape/ape` the
Ape wrapper."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MARKER = "<!-- devnet example -->"

pytestmark = pytest.mark.slow


def examples(doc: Path) -> list[str]:
    text = doc.read_text()
    blocks = re.findall(re.escape(MARKER) + r"\s*```bash\n(.*?)```", text, re.S)
    assert blocks and len(blocks) == text.count(MARKER), "every marker is followed by a bash block"
    return blocks


def test_every_devnet_example_of_docs_dao_runs_as_written(chain, anvil, tmp_path):
    if not (REPO / ".venv-ape" / "bin" / "ape").exists():
        pytest.skip(".venv-ape is absent: the examples use the Ape scripts too (`make ape-setup`)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "loyal"  # `loyal` = this checkout's CLI, whatever is installed
    shim.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO}" exec "{sys.executable}" -m agents.cli "$@"\n')
    shim.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    (work / "tools").symlink_to(REPO / "tools")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME",
                                                              "LOYAL_KEYSTORE")}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", LOYAL_RPC_URL=anvil.rpc_url, LOYAL_HOME=str(tmp_path / "home"),
               LOYAL_DEPLOYMENTS=str(chain.book.path.parent), LOYAL_KEY_PASSWORD="docs example password")
    script = "set -euo pipefail\nset -x\n" + "\n".join(examples(REPO / "docs" / "dao.md"))
    res = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    assert "ModelRevoked" in res.stdout and "Executed" in res.stdout
    assert "Traceback" not in res.stdout + res.stderr
    chain.reset_nonces()
