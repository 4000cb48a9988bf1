"""funds reconciliation: the reserve bank account's statements and their lines

Revision ID: 0024
Revises: 0021
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: Union[str, None] = "0021"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bank_statements",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("reserve_account", sa.String(64), nullable=False),
        sa.Column("statement_date", sa.Date(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("file_path", sa.String(1000), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("opening_balance", sa.BigInteger(), nullable=True),
        sa.Column("closing_balance", sa.BigInteger(), nullable=True),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("reserve_account", "sha256", name="uq_bank_statements_file"),
    )
    op.create_index("ix_bank_statements_day", "bank_statements", ["reserve_account", "statement_date"])
    op.create_table(
        "bank_lines",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("statement_id", sa.String(40), sa.ForeignKey("bank_statements.id"), nullable=False),
        sa.Column("reserve_account", sa.String(64), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("booking_date", sa.Date(), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("details", sa.String(500), nullable=False),
        sa.Column("bank_reference", sa.String(100), nullable=False),
    )
    op.create_index("ix_bank_lines_statement_id", "bank_lines", ["statement_id"])
    op.create_index("ix_bank_lines_day", "bank_lines", ["reserve_account", "booking_date"])


def downgrade() -> None:
    op.drop_index("ix_bank_lines_day", "bank_lines")
    op.drop_index("ix_bank_lines_statement_id", "bank_lines")
    op.drop_table("bank_lines")
    op.drop_index("ix_bank_statements_day", "bank_statements")
    op.drop_table("bank_statements")
