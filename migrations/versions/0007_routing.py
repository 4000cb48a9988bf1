"""routing: why each attempt went where it went, per-account usage index, channel health and circuits

Revision ID: 0007
Revises: 0006
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: Union[str, None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("routing", sa.JSON(), nullable=True))
        batch.create_index("ix_attempts_account_created", ["channel_account", "created_at"])
    op.create_table(
        "channel_health",
        sa.Column("channel_account", sa.String(64), primary_key=True),
        sa.Column("minute", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("timeouts", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "channel_circuits",
        sa.Column("channel_account", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("error_rate", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("channel_circuits")
    op.drop_table("channel_health")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_index("ix_attempts_account_created")
        batch.drop_column("routing")
