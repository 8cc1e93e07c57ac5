"""The index on a real PostgreSQL server (a throwaway cluster started here): same rows as
`fetch_events`, a reorg handled, migrations = metadata. PostgreSQL is what a shared deployment uses
(`--db postgresql+psycopg://...`)."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from agents.core.token import Stakes
from agents.explorer.db import connect_db
from agents.explorer.index import EventIndex

from tests.explorer.test_index import chain_events, rows


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def postgres_url():
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or ([shutil.which("initdb")] if shutil.which("initdb") else [])
    if not initdb:
        pytest.fail("PostgreSQL is not installed: apt-get install postgresql (make test installs it)", pytrace=False)
    bindir = Path(initdb[-1]).parent
    data = Path(tempfile.mkdtemp(prefix="loyal-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "loyal"]),
                   check=True, capture_output=True)
    subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "log"), "-o",
                                 f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off", "start"]),
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://loyal@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def test_index_on_postgresql_follows_events_and_a_reorg(chain, signers, postgres_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from agents.explorer import db

    engine = connect_db(postgres_url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), db.metadata) == []
    stakes = Stakes(chain)
    stakes.stake(signers[1], 10**18)
    idx = EventIndex(chain, engine, batch_blocks=5)
    idx.catch_up()
    assert rows(engine) == chain_events(chain)
    snap = chain.snapshot()
    stakes.stake(signers[2], 2 * 10**18)
    idx.catch_up()
    chain.revert_to(snap)
    chain.mine(4)
    idx.catch_up()
    assert idx.reorgs == 1 and rows(engine) == chain_events(chain)
    engine.dispose()
