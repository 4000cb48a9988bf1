"""marketplace: payouts, receivers, splits and their returns; payments count what they passed on

Revision ID: 0010
Revises: 0009
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: Union[str, None] = "0009"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _schedule() -> list[sa.Column]:
    return [sa.Column("next_query_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("queries", sa.Integer(), nullable=False),
            sa.Column("exception_at", sa.DateTime(timezone=True), nullable=True)]


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("split_amount", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("splittable", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "payouts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("merchant_payout_no", sa.String(64), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("account_name", sa.String(100), nullable=False),
        sa.Column("account_no_sealed", sa.Text(), nullable=False),
        sa.Column("account_no_masked", sa.String(40), nullable=False),
        sa.Column("bank_code", sa.String(20), nullable=True),
        sa.Column("remark", sa.String(100), nullable=True),
        sa.Column("notify_url", sa.String(2000), nullable=True),
        sa.Column("channel_account", sa.String(64), nullable=False),
        sa.Column("out_payout_no", sa.String(64), nullable=False, unique=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("submitted", sa.Boolean(), nullable=False),
        sa.Column("channel_payout_id", sa.String(128), nullable=True),
        sa.Column("failure_code", sa.String(64), nullable=True),
        sa.Column("failure_message", sa.String(500), nullable=True),
        sa.Column("routing", sa.JSON(), nullable=True),
        *_schedule(),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("merchant_id", "merchant_payout_no", name="uq_payouts_merchant_payout"),
    )
    op.create_index("ix_payouts_status", "payouts", ["status"])
    op.create_index("ix_payouts_next_query_at", "payouts", ["next_query_at"])
    op.create_table(
        "receivers",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("bindings", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("merchant_id", "account", name="uq_receivers_merchant_account"),
    )
    op.create_table(
        "splits",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("payment_id", sa.String(40), sa.ForeignKey("payments.id"), nullable=False),
        sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("merchant_split_no", sa.String(64), nullable=False),
        sa.Column("receiver_id", sa.String(40), sa.ForeignKey("receivers.id"), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("description", sa.String(80), nullable=False),
        sa.Column("channel_account", sa.String(64), nullable=False),
        sa.Column("out_split_no", sa.String(64), nullable=False, unique=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("returned_amount", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("submitted", sa.Boolean(), nullable=False),
        sa.Column("channel_split_id", sa.String(128), nullable=True),
        sa.Column("failure_code", sa.String(64), nullable=True),
        sa.Column("failure_message", sa.String(500), nullable=True),
        *_schedule(),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("merchant_id", "merchant_split_no", name="uq_splits_merchant_split"),
    )
    op.create_index("ix_splits_payment_id", "splits", ["payment_id"])
    op.create_index("ix_splits_status", "splits", ["status"])
    op.create_index("ix_splits_next_query_at", "splits", ["next_query_at"])
    op.create_table(
        "split_returns",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("split_id", sa.String(40), sa.ForeignKey("splits.id"), nullable=False),
        sa.Column("payment_id", sa.String(40), sa.ForeignKey("payments.id"), nullable=False),
        sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("for_refund_no", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("channel_account", sa.String(64), nullable=False),
        sa.Column("out_return_no", sa.String(64), nullable=False, unique=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("submitted", sa.Boolean(), nullable=False),
        sa.Column("channel_return_id", sa.String(128), nullable=True),
        sa.Column("failure_code", sa.String(64), nullable=True),
        sa.Column("failure_message", sa.String(500), nullable=True),
        *_schedule(),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_split_returns_split_id", "split_returns", ["split_id"])
    op.create_index("ix_split_returns_payment_id", "split_returns", ["payment_id"])
    op.create_index("ix_split_returns_status", "split_returns", ["status"])
    op.create_index("ix_split_returns_next_query_at", "split_returns", ["next_query_at"])


def downgrade() -> None:
    op.drop_table("split_returns")
    op.drop_table("splits")
    op.drop_table("receivers")
    op.drop_table("payouts")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("split_amount")
        batch.drop_column("splittable")
