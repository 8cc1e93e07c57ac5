"""The index's database: SQLite (one file under `$LOYAL_HOME`) by default, PostgreSQL by URL.

Three tables, created and upgraded by the Alembic migrations in `migrations/` (never by
`create_all`, so a shared database is always at a known schema version):

- `events`: one row per suite event, in chain order (`block`, `log_index` unique), with its
  contract, name, block time, transaction, `subject` (the id it is about: `SUBJECTS` in index.py),
  its one-line text and its audited JSON (`agents.core.audit`: args, LOYAL amounts, enum names,
  decoded proposal calls; 53-bit-safe).
- `blocks`: number, hash and time of every block that holds an indexed event, and of every block
  the index stopped at (its tips): what a reorg check compares with the chain.
- `cursor`: one row: chain id, address-book digest, `scanned_to` (every block up to it is indexed),
  the tip's hash and time. Written in the same transaction as the rows it covers.
"""
from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import (JSON, BigInteger, Column, Index, Integer, MetaData, String, Table, Text, UniqueConstraint,
                        create_engine, event)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from common.errors import ConfigError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

metadata = MetaData()

cursor = Table(
    "cursor", metadata,
    Column("id", Integer, primary_key=True),  # always 1
    Column("chain_id", BigInteger, nullable=False),
    Column("book_digest", String(66), nullable=False),
    Column("scanned_to", BigInteger, nullable=False),  # every block <= scanned_to is indexed
    Column("last_block", BigInteger),  # (last_block, last_log): last event indexed inside a partly scanned range
    Column("last_log", Integer),
    Column("tip_hash", String(66)),  # hash of block scanned_to (None before the first block)
    Column("tip_time", BigInteger),  # its timestamp
)

blocks = Table(
    "blocks", metadata,
    Column("number", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(66), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
)

events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("block", BigInteger, nullable=False),
    Column("log_index", Integer, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("tx", String(66), nullable=False),
    Column("contract", String(64), nullable=False),
    Column("address", String(42), nullable=False),
    Column("event", String(64), nullable=False),
    Column("subject", String(80)),
    Column("text", Text, nullable=False),
    Column("data", JSON, nullable=False),
    UniqueConstraint("block", "log_index", name="uq_events_position"),
    Index("ix_events_contract_event", "contract", "event"),
    Index("ix_events_contract_subject", "contract", "subject"),
    Index("ix_events_tx", "tx"),
)


def default_url(home: Path, chain_id: int) -> str:
    """`sqlite:///<home>/index/<chainId>.sqlite`: one file per chain under the home folder."""
    return f"sqlite:///{(Path(home) / 'index' / f'{chain_id}.sqlite').resolve()}"


def connect_db(url: str) -> Engine:
    """An engine for `url` at the current schema (migrations applied). SQLite runs in WAL mode so
    the explorer reads while the indexer writes."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        folder = Path(url[len("sqlite:///"):]).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot open the index database {url}: cannot create folder {folder} ({e.strerror})") from None
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError) as e:
        raise ConfigError(f"bad index database URL {url!r} ({e}); e.g. sqlite:///index.sqlite or "
                          "postgresql+psycopg://user@host/db") from None
    except ModuleNotFoundError as e:
        raise ConfigError(f"index database URL {url!r} needs the Python package {e.name!r}: pip install it") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        migrate(engine)
    except OperationalError as e:
        raise ConfigError(f"cannot open the index database {engine.url.render_as_string(hide_password=True)}: "
                          f"{' '.join(str(e.orig).split())}") from None
    return engine


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer, nor it them
    cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a committed transaction survives a process kill
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (a no-op when it is there)."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per plugin and revision otherwise
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
