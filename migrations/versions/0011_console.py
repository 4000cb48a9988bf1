"""operator console: operators, the audit log, channel exchanges, indexes for what operators search by; merchant events
carry their request id

Revision ID: 0011
Revises: 0010
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: Union[str, None] = "0010"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("merchant_events") as batch:
        batch.add_column(sa.Column("request_id", sa.String(64), nullable=True))
    op.create_table(
        "operators",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operator", sa.String(100), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("target", sa.String(120), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("client_ip", sa.String(64), nullable=True),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_operator_at", "audit_log", ["operator", "at"])
    op.create_table(
        "channel_exchanges",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel_account", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(40), nullable=False),
        sa.Column("reference", sa.String(64), nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("method", sa.String(10), nullable=True),
        sa.Column("url", sa.String(500), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("request_body", sa.Text(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("error", sa.String(200), nullable=True),
    )
    op.create_index("ix_channel_exchanges_at", "channel_exchanges", ["at"])
    op.create_index("ix_channel_exchanges_reference", "channel_exchanges", ["reference"])
    # What operators search by in the console.
    op.create_index("ix_payments_order_no", "payments", ["merchant_order_no"])
    op.create_index("ix_attempts_channel_transaction", "attempts", ["channel_transaction_id"])
    op.create_index("ix_channel_callbacks_reference", "channel_callbacks", ["reference"])
    op.create_index("ix_merchant_events_resource", "merchant_events", ["resource_id"])


def downgrade() -> None:
    op.drop_table("channel_exchanges")
    for table, name in (("merchant_events", "ix_merchant_events_resource"),
                        ("channel_callbacks", "ix_channel_callbacks_reference"),
                        ("attempts", "ix_attempts_channel_transaction"), ("payments", "ix_payments_order_no")):
        op.drop_index(name, table_name=table)
    op.drop_table("audit_log")
    op.drop_table("operators")
    with op.batch_alter_table("merchant_events") as batch:
        batch.drop_column("request_id")
