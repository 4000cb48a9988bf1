"""daily close: each (account, business day) a worker closes, its steps; merchants' daily statements

Revision ID: 0025
Revises: 0023
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: Union[str, None] = "0023"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "close_days",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leased_by", sa.String(100), nullable=True),
        sa.Column("tries", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message", sa.String(500), nullable=True),
        sa.UniqueConstraint("account", "business_date", name="uq_close_days_account_date"),
    )
    op.create_index("ix_close_days_status", "close_days", ["status"])
    op.create_table(
        "close_steps",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("close_day_id", ID, sa.ForeignKey("close_days.id"), nullable=False),
        sa.Column("step", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=True),
        sa.Column("message", sa.String(500), nullable=True),
        sa.UniqueConstraint("close_day_id", "step", name="uq_close_steps_day_step"),
    )
    op.create_table(
        "merchant_statements",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("last_posting_id", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("balances", sa.JSON(), nullable=False),
        sa.Column("produced_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("merchant_id", "business_date", name="uq_merchant_statements_day"),
    )
    op.create_index("ix_merchant_statements_business_date", "merchant_statements", ["business_date"])


def downgrade() -> None:
    op.drop_table("merchant_statements")
    op.drop_table("close_steps")
    op.drop_index("ix_close_days_status", "close_days")
    op.drop_table("close_days")
