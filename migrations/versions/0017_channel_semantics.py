"""channels as they really behave: a refund the channel holds for a person (WeChat Pay ABNORMAL), what a
channel holds frozen of a payment made to be split, and the release of it when the splitting ends

Revision ID: 0017
Revises: 0016
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: Union[str, None] = "0016"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("refunds") as batch:
        batch.add_column(sa.Column("attention_code", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("attention_message", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("attention_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("frozen_amount", sa.BigInteger(), nullable=False, server_default="0"))
    op.create_table(
        "split_releases",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("payment_id", sa.String(length=40), sa.ForeignKey("payments.id"), nullable=False, unique=True),
        sa.Column("merchant_id", sa.String(length=40), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("channel_account", sa.String(length=64), nullable=False),
        sa.Column("out_release_no", sa.String(length=64), nullable=False, unique=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("submitted", sa.Boolean(), nullable=False),
        sa.Column("channel_release_id", sa.String(length=128), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.String(length=500), nullable=True),
        sa.Column("next_query_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("queries", sa.Integer(), nullable=False),
        sa.Column("exception_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_split_releases_status", "split_releases", ["status"])
    op.create_index("ix_split_releases_next_query_at", "split_releases", ["next_query_at"])


def downgrade() -> None:
    op.drop_index("ix_split_releases_next_query_at", table_name="split_releases")
    op.drop_index("ix_split_releases_status", table_name="split_releases")
    op.drop_table("split_releases")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("frozen_amount")
    with op.batch_alter_table("refunds") as batch:
        batch.drop_column("attention_at")
        batch.drop_column("attention_message")
        batch.drop_column("attention_code")
