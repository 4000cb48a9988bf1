"""splits confirmed by the channel's statement of splits: what it paid the receiver itself, and on
which statement day (gateway/split_recon.py)

Revision ID: 0022
Revises: 0024
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: Union[str, None] = "0024"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("splits") as batch:
        batch.add_column(sa.Column("channel_paid_amount", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("channel_paid_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("splits") as batch:
        batch.drop_column("channel_paid_on")
        batch.drop_column("channel_paid_amount")
