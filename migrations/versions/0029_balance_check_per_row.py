"""balance check per row: the ledger's deferred balance check no longer marks each entry it checked
with a setting of its own (`paymux.ledger_checked_<id>`)

Each such setting is a new variable in the session's configuration: PostgreSQL keeps it for the life of
the connection, and before version 16 walks every one of them at the end of every transaction. A
connection's commits grew slower with every entry it had posted: pgbench of one entry a transaction on 8
connections fell from 3,360 to 1,236 entries/s within 40 s. Now every row's firing sums its entry's
postings (an index range of a few rows): steady at ~5,000 entries/s on the same machine. An entry and
each of its postings are checked, as before; an entry is checked more than once in its transaction.

Revision ID: 0029
Revises: 0027_receivers_held
"""
from typing import Sequence, Union

from alembic import op

revision: str = "0029"
down_revision: Union[str, None] = "0027_receivers_held"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

MARK = """  IF current_setting('paymux.ledger_checked_' || target, true) = '1' THEN
    RETURN NULL;
  END IF;
  PERFORM set_config('paymux.ledger_checked_' || target, '1', true);
"""
NO_MARK = """  -- Fired at COMMIT by the entry's row and by each posting's: each sums the entry's postings (no mark of
  -- what was checked is kept: a setting per entry grew every connection's configuration for good).
"""


def _check(mark: str) -> str:
    return """
CREATE OR REPLACE FUNCTION ledger_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  target bigint;
  n integer;
  off text;
BEGIN
  IF TG_TABLE_NAME = 'ledger_postings' THEN target := NEW.entry_id; ELSE target := NEW.id; END IF;
""" + mark + """  SELECT coalesce(sum(cnt), 0), string_agg(CASE WHEN total <> 0 THEN currency || ' ' || total END, ', ')
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
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_check(NO_MARK))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_check(MARK))
