"""channel_days: the row each create on an account with daily limits takes first, so that creates in
every process count the account's day one after another (daily limits exact under concurrency)

Revision ID: 0019
Revises: 0018
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: Union[str, None] = "0018"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "channel_days",
        sa.Column("channel_account", sa.String(length=64), primary_key=True),
        sa.Column("business_date", sa.Date(), primary_key=True),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("channel_days")
