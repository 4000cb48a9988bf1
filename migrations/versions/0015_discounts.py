"""discounts from the channel's verified answer: what a payment's channel kept of its coupons and what
campaigns paid back; a refund's share of them

Revision ID: 0015
Revises: 0014
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: Union[str, None] = "0014"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("discount_amount", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("discounts", sa.JSON(), nullable=True))
    with op.batch_alter_table("refunds") as batch:
        batch.add_column(sa.Column("discount_refund", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("campaign_refund", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refunds") as batch:
        batch.drop_column("campaign_refund")
        batch.drop_column("discount_refund")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("discounts")
        batch.drop_column("discount_amount")
