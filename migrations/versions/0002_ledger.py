"""ledger: accounts, entries, postings; append-only and balanced in the database itself

Revision ID: 0002
Revises: 0001
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

APPEND_ONLY = ("ledger_entries", "ledger_postings")

PG_FUNCTIONS = """
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: correct it with a reversing entry', TG_TABLE_NAME
    USING ERRCODE = 'restrict_violation';
END $$;

CREATE FUNCTION ledger_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  target bigint;
  n integer;
  off text;
BEGIN
  IF TG_TABLE_NAME = 'ledger_postings' THEN target := NEW.entry_id; ELSE target := NEW.id; END IF;
  -- Every row of an entry fires this at COMMIT; check each entry once per transaction.
  IF current_setting('paymux.ledger_checked_' || target, true) = '1' THEN
    RETURN NULL;
  END IF;
  PERFORM set_config('paymux.ledger_checked_' || target, '1', true);
  SELECT coalesce(sum(cnt), 0), string_agg(CASE WHEN total <> 0 THEN currency || ' ' || total END, ', ')
    INTO n, off
    FROM (SELECT currency, count(*) AS cnt, sum(amount) AS total
            FROM ledger_postings WHERE entry_id = target GROUP BY currency) per_currency;
  IF n < 2 THEN
    RAISE EXCEPTION 'ledger entry % has % posting(s); at least two are required', target, n
      USING ERRCODE = 'check_violation';
  END IF;
  IF off IS NOT NULL THEN
    RAISE EXCEPTION 'ledger entry % does not balance: %', target, off USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("owner_type", sa.String(20), nullable=False),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("normal_side", sa.String(6), nullable=False),
        sa.Column("no_negative", sa.Boolean(), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("code", "owner_type", "owner_id", "currency", name="uq_ledger_account"),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("reference", sa.String(120), nullable=True),
        sa.Column("memo", sa.String(500), nullable=True),
        sa.Column("postings_hash", sa.String(64), nullable=False),
        sa.Column("reverses", sa.Integer(), sa.ForeignKey("ledger_entries.id"), nullable=True, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_ledger_entries_business_date", "ledger_entries", ["business_date"])
    op.create_index("ix_ledger_entries_reference", "ledger_entries", ["reference"])
    op.create_table(
        "ledger_postings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("entry_id", sa.Integer(), sa.ForeignKey("ledger_entries.id"), nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("ledger_accounts.id"), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_ledger_postings_entry_id", "ledger_postings", ["entry_id"])
    op.create_index("ix_ledger_postings_account", "ledger_postings", ["account_id", "id"])
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("fee_amount", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("refunds") as batch:
        batch.add_column(sa.Column("fee_refund", sa.BigInteger(), nullable=False, server_default="0"))

    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTIONS)
        for table in APPEND_ONLY:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()")
            # Checked at COMMIT, so an entry and its postings can be written in any order within it.
            op.execute(f"CREATE CONSTRAINT TRIGGER {table}_balanced AFTER INSERT ON {table} "
                       "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced()")
    else:
        for table in APPEND_ONLY:
            for action in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: correct it with a reversing entry'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_balanced ON {table}")
        op.execute("DROP FUNCTION IF EXISTS ledger_entry_balanced()")
        op.execute("DROP FUNCTION IF EXISTS ledger_append_only()")
    with op.batch_alter_table("refunds") as batch:
        batch.drop_column("fee_refund")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("fee_amount")
    op.drop_table("ledger_postings")
    op.drop_table("ledger_entries")
    op.drop_table("ledger_accounts")
