"""receivers whose money paymux holds: receivers.held_by and their settlement cycle, splits.held_by,
payouts to receivers (payouts.receiver_id)

Revision ID: 0027_receivers_held
Revises: 0028
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0027_receivers_held"
down_revision: Union[str, None] = "0028"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("receivers") as batch:
        batch.add_column(sa.Column("held_by", sa.String(10), nullable=False, server_default="channel"))
        batch.add_column(sa.Column("settlement_days", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("splits") as batch:
        batch.add_column(sa.Column("held_by", sa.String(10), nullable=False, server_default="channel"))
    with op.batch_alter_table("payouts") as batch:
        batch.add_column(sa.Column("receiver_id", sa.String(40), nullable=True))
        batch.create_index("ix_payouts_receiver_id", ["receiver_id"])


def downgrade() -> None:
    with op.batch_alter_table("payouts") as batch:
        batch.drop_index("ix_payouts_receiver_id")
        batch.drop_column("receiver_id")
    with op.batch_alter_table("splits") as batch:
        batch.drop_column("held_by")
    with op.batch_alter_table("receivers") as batch:
        batch.drop_column("settlement_days")
        batch.drop_column("held_by")
