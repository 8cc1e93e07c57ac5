"""The event index against a real Anvil and a real SQLite file: same events as `fetch_events`,
exactly once across SIGKILLs, rows of dropped blocks removed on a reorg, schema from migrations."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from agents.core.events import fetch_events
from agents.core.token import Stakes
from agents.explorer import db
from agents.explorer.db import connect_db
from agents.explorer.index import EventIndex
from common.errors import ConfigError

from tests.explorer.activity import TransferBatch

REPO = Path(__file__).resolve().parents[2]


def rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(db.events.c.block, db.events.c.log_index, db.events.c.contract,
                                                      db.events.c.event).order_by(db.events.c.block, db.events.c.log_index))]


def chain_events(chain) -> list[tuple]:
    return [(e.block, e.log_index, e.contract, e.name) for e in fetch_events(chain)]


@pytest.fixture
def engine(tmp_path):
    return connect_db(f"sqlite:///{tmp_path / 'index.sqlite'}")


def test_index_holds_every_suite_event_once_with_its_audit(chain, signers, engine):
    stakes = Stakes(chain)
    stakes.stake(signers[1], 7 * 10**18)
    stakes.request_unstake(signers[1], 2 * 10**18)
    idx = EventIndex(chain, engine, batch_blocks=7)
    idx.catch_up()
    assert rows(engine) == chain_events(chain)
    idx.catch_up()  # nothing new: nothing written twice
    assert rows(engine) == chain_events(chain)
    with engine.connect() as conn:
        staked = conn.execute(select(db.events).where(db.events.c.event == "Staked")).all()[-1]
    assert staked.subject == signers[1].address.lower()
    assert staked.data["LOYAL"]["amount"] == "7"  # audit.py's annotation, stored as is
    assert "amount=7 LOYAL" in staked.text and staked.timestamp > 0
    # a second index process on the same file resumes at its cursor
    again = EventIndex(chain, engine)
    assert again.cursor.scanned_to == chain.w3.eth.block_number and again.catch_up() == 0


def test_index_refuses_a_database_of_another_chain(chain, engine):
    EventIndex(chain, engine).catch_up()
    with engine.begin() as conn:
        conn.execute(db.cursor.update().values(chain_id=1))
    with pytest.raises(ConfigError, match="holds chain 1, not chain 31337"):
        EventIndex(chain, engine)


def test_migrations_build_the_schema_the_code_queries(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == []
    connect_db(str(engine.url))  # opening again: already at head, nothing to do


def test_reorg_removes_rows_of_dropped_blocks(chain, signers, engine):
    stakes = Stakes(chain)
    stakes.stake(signers[2], 10**18)
    stakes.stake(signers[3], 3 * 10**18)  # approve + stake: the two blocks the reorg drops
    idx = EventIndex(chain, engine)
    idx.catch_up()
    cut = chain.w3.eth.block_number - 2
    dropped = [r for r in rows(engine) if r[0] > cut]
    assert {r[3] for r in dropped} == {"Approval", "Transfer", "Staked"}
    # replace the last 2 blocks with a fork carrying another transaction (a plain transfer)
    token = chain.contract("LoyalToken")
    tx = token.functions.transfer(signers[4].address, 5).build_transaction(
        {"from": signers[5].address, "nonce": chain.w3.eth.get_transaction_count(signers[5].address), "gas": 100_000,
         "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9, "chainId": chain.chain_id})
    raw = signers[5].sign_transaction(tx).raw_transaction
    chain.w3.provider.make_request("anvil_reorg", [2, [["0x" + raw.hex(), 0]]])
    chain.reset_nonces()
    idx.catch_up()
    assert idx.reorgs == 1
    assert rows(engine) == chain_events(chain)
    after = [r for r in rows(engine) if r[0] > cut]
    assert [r[3] for r in after] == ["Transfer"]


def test_snapshot_revert_is_a_reorg_too(chain, signers, engine):
    idx = EventIndex(chain, engine)
    idx.catch_up()
    snap = chain.snapshot()
    Stakes(chain).stake(signers[3], 10**18)
    idx.catch_up()
    n = len(rows(engine))
    chain.revert_to(snap)
    chain.mine(5)  # the new chain is longer than the old one: only the hash check can tell
    idx.catch_up()
    assert len(rows(engine)) < n and rows(engine) == chain_events(chain)


def _index_process(anvil, chain, url: str, home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "LOYAL_HOME": str(home), "LOYAL_POLL": "0.05"}
    return subprocess.Popen([sys.executable, "-m", "agents.cli", "index", "--rpc", anvil.rpc_url,
                             "--book", str(chain.book.path), "--db", url, *args],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _count(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return len(conn.execute(select(db.events.c.id)).all())
    except Exception:  # not created yet
        return 0
    finally:
        engine.dispose()


@pytest.mark.slow
def test_sigkill_mid_run_leaves_no_gap_and_no_duplicate(chain, anvil, signers, tmp_path):
    batch = TransferBatch(chain, signers[0])
    for _ in range(40):
        batch.spray(150)  # 40 blocks of 150 events
    want = chain_events(chain)
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    kills = 0
    for fraction in (0.2, 0.45, 0.7):
        proc = _index_process(anvil, chain, url, tmp_path, "--batch-blocks", "1")
        deadline = time.monotonic() + 60
        while _count(url) < fraction * len(want) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        got = _count(url)
        assert got < len(want), "the index finished before the kill: nothing was tested"
        kills += 1
    proc = _index_process(anvil, chain, url, tmp_path, "--once")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert rows(create_engine(url)) == want and kills == 3
