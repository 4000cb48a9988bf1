"""console runtime: each operator's console language; channel accounts switched at runtime (an
override per account the router of every process reads, and the maker-checker history of changes);
reconciliation runs requested from the console, run by a worker

Revision ID: 0020
Revises: 0019
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: Union[str, None] = "0019"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("operators") as batch:
        batch.add_column(sa.Column("locale", sa.String(length=16), nullable=True))
    op.create_table(
        "channel_account_overrides",
        sa.Column("channel_account", sa.String(64), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=True),
        sa.Column("weight", sa.Integer(), nullable=True),
        sa.Column("limits", sa.JSON(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("change_id", ID, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "channel_account_changes",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("channel_account", sa.String(64), nullable=False),
        sa.Column("change", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("proposed_by", sa.String(100), nullable=False),
        sa.Column("proposed_by_id", sa.String(40), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(100), nullable=True),
        sa.Column("decided_by_id", sa.String(40), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_channel_account_changes_channel_account", "channel_account_changes", ["channel_account"])
    op.create_index("ix_channel_account_changes_status", "channel_account_changes", ["status"])
    op.create_table(
        "recon_requests",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("channel_account", sa.String(64), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("requested_by", sa.String(100), nullable=False),
        sa.Column("requested_by_id", sa.String(40), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("executed_by", sa.String(100), nullable=True),
        sa.Column("run_id", sa.String(40), nullable=True),
        sa.Column("message", sa.String(500), nullable=True),
    )
    op.create_index("ix_recon_requests_status", "recon_requests", ["status"])


def downgrade() -> None:
    op.drop_index("ix_recon_requests_status", "recon_requests")
    op.drop_table("recon_requests")
    op.drop_index("ix_channel_account_changes_status", "channel_account_changes")
    op.drop_index("ix_channel_account_changes_channel_account", "channel_account_changes")
    op.drop_table("channel_account_changes")
    op.drop_table("channel_account_overrides")
    with op.batch_alter_table("operators") as batch:
        batch.drop_column("locale")
