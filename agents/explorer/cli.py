"""`loyal index` (follow the suite's events into the index database) and `loyal explorer` (the web
pages, read from that database)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer

from agents.core.cli import BOOK, DEV_ACCOUNT, HOME, KEYSTORE, RPC, connect, signer
from agents.core.events import MAX_RANGE
from common.config import Settings, configure

DB = typer.Option(None, "--db", help="index database URL [setting index_db; default sqlite:///<home>/index/<chainId>.sqlite]")

log = logging.getLogger("loyal.index")


def open_index(s: Settings, book: Optional[Path], batch_blocks: int = MAX_RANGE):
    """(chain, engine, EventIndex) for the configured RPC, address book and database."""
    from agents.core.audit import Auditor

    from .db import connect_db, default_url
    from .index import EventIndex

    chain = connect(s, book)
    Auditor(chain).check_book()
    engine = connect_db(s.index_db or default_url(s.home, chain.chain_id))
    return chain, engine, EventIndex(chain, engine, batch_blocks=batch_blocks)


def index(
    rpc: Optional[str] = RPC,
    book: Optional[Path] = BOOK,
    db: Optional[str] = DB,
    home: Optional[Path] = HOME,
    once: bool = typer.Option(False, "--once", help="index up to the current head, print a summary and exit"),
    batch_blocks: int = typer.Option(MAX_RANGE, "--batch-blocks", min=1, max=MAX_RANGE,
                                     help="most blocks per database transaction (fewer where blocks hold many events)"),
):
    """Follow every address-book contract's events into the index database (SQLite by default,
    PostgreSQL by URL); resumes where it stopped, survives SIGKILL, follows reorgs."""
    from agents.core.daemon import run_daemon
    from agents.core.logs import setup_logging

    s = configure(rpc_url=rpc, home=home, index_db=db)
    setup_logging(s.log_level)
    chain, engine, idx = open_index(s, book, batch_blocks)
    where = engine.url.render_as_string(hide_password=True)
    if once:
        n = idx.catch_up()
        print(f"indexed {n} new event(s) up to block {idx.cursor.scanned_to} of chain {chain.chain_id}; "
              f"{idx.count()} in {where}")
        return
    log.info("indexing chain %d into %s from block %d", chain.chain_id, where, idx.cursor.scanned_to + 1)

    def step() -> int:
        before = idx.indexed
        blocks = idx.step()
        if idx.indexed > before:
            log.info("indexed %d event(s), up to block %d", idx.indexed - before, idx.cursor.scanned_to)
        return blocks

    try:
        run_daemon(step, log=log, poll=s.poll)
    except KeyboardInterrupt:
        return


def explorer(
    rpc: Optional[str] = RPC,
    book: Optional[Path] = BOOK,
    db: Optional[str] = DB,
    home: Optional[Path] = HOME,
    keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT,
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="port to listen on (0: a free one)"),
    follow: bool = typer.Option(True, "--follow/--no-follow", help="also run the indexer in this process"),
    din_reports: Optional[Path] = typer.Option(
        None, "--din-reports", help="folder of DIN owners' reports (task<N>/accuracy.csv): plotted as off-chain accuracy"),
):
    """Serve the explorer pages from the index (overview, DIN, OML, ledger, DAO); relay signed ballots with
    the relayer key (--keystore; without one, ballots are shown but not relayed)."""
    from agents.core.logs import setup_logging

    from .server import serve

    s = configure(rpc_url=rpc, home=home, index_db=db, keystore=keystore)
    setup_logging(s.log_level)
    chain, engine, idx = open_index(s, book)
    relayer = signer(chain, s, keystore, dev_account) if (s.keystore or dev_account is not None) else None
    if din_reports is not None and not din_reports.is_dir():
        from common.errors import ConfigError

        raise ConfigError(f"--din-reports {din_reports} is not a folder")
    try:
        serve(chain, engine, s, host=host, port=port, index=idx if follow else None, relayer=relayer,
              din_reports=din_reports)
    except KeyboardInterrupt:
        return
