"""attempts carry their payment's amount (reconciliation reads attempts alone, in bulk)

Revision ID: 0009
Revises: 0008
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: Union[str, None] = "0008"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("amount", sa.BigInteger(), nullable=True))
    op.execute("UPDATE attempts SET amount = (SELECT p.amount FROM payments p WHERE p.id = attempts.payment_id)")


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("amount")
