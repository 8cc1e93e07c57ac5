"""The index's first schema: events, blocks, cursor (see agents/explorer/db.py).

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cursor",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("chain_id", sa.BigInteger, nullable=False),
        sa.Column("book_digest", sa.String(66), nullable=False),
        sa.Column("scanned_to", sa.BigInteger, nullable=False),
        sa.Column("last_block", sa.BigInteger),
        sa.Column("last_log", sa.Integer),
        sa.Column("tip_hash", sa.String(66)),
        sa.Column("tip_time", sa.BigInteger),
    )
    op.create_table(
        "blocks",
        sa.Column("number", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(66), nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("block", sa.BigInteger, nullable=False),
        sa.Column("log_index", sa.Integer, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("tx", sa.String(66), nullable=False),
        sa.Column("contract", sa.String(64), nullable=False),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(80)),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.UniqueConstraint("block", "log_index", name="uq_events_position"),
    )
    op.create_index("ix_events_contract_event", "events", ["contract", "event"])
    op.create_index("ix_events_contract_subject", "events", ["contract", "subject"])
    op.create_index("ix_events_tx", "events", ["tx"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("blocks")
    op.drop_table("cursor")
