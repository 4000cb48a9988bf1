"""64-bit ids and cursors: every integer key, the columns that point at one, and their sequences

On SQLite an INTEGER PRIMARY KEY is the rowid, 64-bit already (and must stay INTEGER to remain the
rowid), so there is nothing to change there.

Revision ID: 0013
Revises: 0012
"""
from typing import Sequence, Union

from alembic import op

revision: str = "0013"
down_revision: Union[str, None] = "0012"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# (table, key column with its sequence, columns pointing at a key)
COLUMNS = (
    ("channel_callbacks", "id", ()),
    ("merchant_events", "seq", ()),
    ("ledger_accounts", "id", ()),
    ("ledger_entries", "id", ("reverses",)),
    ("ledger_postings", "id", ("entry_id", "account_id")),
    ("recon_items", "id", ()),
    ("recon_proposals", "id", ("item_id",)),
    ("settlements", "id", ()),
    ("audit_log", "id", ()),
    ("channel_exchanges", "id", ()),
)


def _change(sql_type: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, key, pointers in COLUMNS:
        columns = ", ".join(f"ALTER COLUMN {column} TYPE {sql_type}" for column in (key, *pointers))
        op.execute(f"ALTER TABLE {table} {columns}")
        op.execute(f"ALTER SEQUENCE {table}_{key}_seq AS {sql_type}")
    # A session that ran the ledger's balance trigger keeps its plan with the old id type and would fail
    # its next entry; touching the function makes every session compile it again.
    op.execute("ALTER FUNCTION ledger_entry_balanced() COST 100")


def upgrade() -> None:
    _change("bigint")


def downgrade() -> None:
    _change("integer")
