"""balance slots: an account without a no-negative rule keeps its balance in several rows, so that
concurrent writers to a platform account (clearing, fee income, suspense…) do not queue on one row

Revision ID: 0018
Revises: 0017
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: Union[str, None] = "0017"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ledger_balance_slots",
        sa.Column("account_id", ID, sa.ForeignKey("ledger_accounts.id"), primary_key=True),
        sa.Column("slot", ID, primary_key=True, autoincrement=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
    )
    # Not a batch operation: rebuilding ledger_postings on SQLite would drop its append-only triggers.
    op.add_column("ledger_postings", sa.Column("slot", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("ledger_postings", "slot")
    op.drop_table("ledger_balance_slots")
