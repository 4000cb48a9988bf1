"""fee rules: each payment's and payout's fee records the rule that produced it

Revision ID: 0023
Revises: 0022
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: Union[str, None] = "0022"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    for table in ("payments", "payouts"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("fee_rule", sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table in ("payments", "payouts"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("fee_rule")
