"""janitor: query schedule and exceptions on attempts and refunds

Revision ID: 0005
Revises: 0004
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: Union[str, None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    for table in ("attempts", "refunds"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("next_query_at", sa.DateTime(timezone=True), nullable=True))
            batch.add_column(sa.Column("queries", sa.Integer(), nullable=False, server_default="0"))
            batch.add_column(sa.Column("exception_at", sa.DateTime(timezone=True), nullable=True))
            batch.create_index(f"ix_{table}_next_query_at", ["next_query_at"])


def downgrade() -> None:
    for table in ("attempts", "refunds"):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_next_query_at")
            batch.drop_column("exception_at")
            batch.drop_column("queries")
            batch.drop_column("next_query_at")
