"""reconciliation and settlement: runs, the items no match explained, maker-checker proposals, settlements

Revision ID: 0008
Revises: 0007
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: Union[str, None] = "0007"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "recon_runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("channel_account", sa.String(64), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("file_path", sa.String(1000), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("message", sa.String(1000), nullable=True),
        sa.Column("statement_rows", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("payment_amount", sa.BigInteger(), nullable=False),
        sa.Column("refund_amount", sa.BigInteger(), nullable=False),
        sa.Column("fee_amount", sa.BigInteger(), nullable=False),
        sa.Column("fees_booked", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("auto_resolved", sa.Integer(), nullable=False),
        sa.Column("open", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_recon_runs_account_date", "recon_runs", ["channel_account", "business_date"])
    op.create_table(
        "recon_items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.String(40), sa.ForeignKey("recon_runs.id"), nullable=False),
        sa.Column("channel_account", sa.String(64), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("class", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("out_trade_no", sa.String(64), nullable=True),
        sa.Column("line_no", sa.Integer(), nullable=True),
        sa.Column("channel_transaction_id", sa.String(128), nullable=True),
        sa.Column("channel_status", sa.String(20), nullable=True),
        sa.Column("local_status", sa.String(20), nullable=True),
        sa.Column("channel_amount", sa.BigInteger(), nullable=True),
        sa.Column("local_amount", sa.BigInteger(), nullable=True),
        sa.Column("channel_effect", sa.BigInteger(), nullable=False),
        sa.Column("local_effect", sa.BigInteger(), nullable=False),
        sa.Column("channel_fee_millis", sa.BigInteger(), nullable=True),
        sa.Column("expected_fee_millis", sa.BigInteger(), nullable=True),
        sa.Column("attempt_id", sa.String(40), nullable=True),
        sa.Column("refund_id", sa.String(40), nullable=True),
        sa.Column("payment_id", sa.String(40), nullable=True),
        sa.Column("merchant_id", sa.String(40), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("resolution", sa.String(60), nullable=True),
        sa.Column("resolved_by", sa.String(100), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_recon_items_run_id", "recon_items", ["run_id"])
    op.create_index("ix_recon_items_open", "recon_items", ["channel_account", "status", "class"])
    op.create_index("ix_recon_items_reference", "recon_items", ["reference"])
    op.create_table(
        "recon_proposals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("recon_items.id"), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("proposed_by", sa.String(100), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("decided_by", sa.String(100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("entry_key", sa.String(200), nullable=True),
    )
    op.create_index("ix_recon_proposals_item_id", "recon_proposals", ["item_id"])
    op.create_table(
        "settlements",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("owner", sa.String(120), nullable=False),
        sa.Column("channel_account", sa.String(64), nullable=True),
        sa.Column("merchant_id", sa.String(40), nullable=True),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("settle_date", sa.Date(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("entry_key", sa.String(200), nullable=True),
        sa.Column("forced_by", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("kind", "owner", "business_date", name="uq_settlements_kind_owner_day"),
    )


def downgrade() -> None:
    op.drop_table("settlements")
    op.drop_table("recon_proposals")
    op.drop_table("recon_items")
    op.drop_table("recon_runs")
