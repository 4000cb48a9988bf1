"""One entry posted in one statement, on PostgreSQL: the entry row, its guarded account's change, its
slots' changes and its postings, as data-modifying WITH queries of a single INSERT.

Statement by statement (ledger.core's general path) an entry costs four round trips, and every one
after the first is made while the entry's rows are locked. Here the locks are taken and released by
the same statement's transaction with no round trip in between. Each WITH query runs once, whatever
reads it; all see the snapshot the statement started with, and pass each other what they wrote through
RETURNING only (PostgreSQL: "Data-Modifying Statements in WITH"). Nothing is written past the entry
row if the entry was there already (a repeated key, or a second reversal): every other query is
conditional on the entry having been inserted, and the caller then reads the existing entry.

At most one guarded account (one with a no-negative rule) per entry, so that the one row it locks
needs no order against another; an entry with more goes the general way.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from sqlalchemy import Connection

from ledger import driver


@dataclass(frozen=True)
class Line:
    account_id: int
    currency: str
    amount: int
    later: int           # what later lines of the entry add to the same account (for balance_after)
    slotted: bool


@dataclass(frozen=True)
class Written:
    entry_id: int | None                 # None: the key (or the reversal) was there already
    balances: dict[int, int]             # account id -> its row's or slot's balance after the entry


@lru_cache(maxsize=64)
def _sql(lines: int, slotted: int, guarded: bool, at_commit: bool = False) -> str:
    values = ", ".join(f"({i}, %(a{i})s::bigint, %(c{i})s::varchar, %(m{i})s::bigint, %(l{i})s::bigint, "
                       f"%(s{i})s::integer)" for i in range(lines))
    deltas = ", ".join(f"(%(sa{i})s::bigint, %(sd{i})s::bigint)" for i in range(slotted))
    parts = ["""e AS (
  INSERT INTO ledger_entries (key, event_type, business_date, reference, memo, postings_hash, reverses, created_at)
  VALUES (%(key)s, %(event_type)s, %(business_date)s, %(reference)s, %(memo)s, %(postings_hash)s, %(reverses)s,
          %(created_at)s)
  """ + ("RETURNING id)" if at_commit else "ON CONFLICT DO NOTHING RETURNING id)")]   # at_commit: a repeat fails
    after = []
    if guarded:
        parts.append("""g AS (
  UPDATE ledger_accounts SET balance = balance + %(g_delta)s::bigint
  WHERE id = %(g_id)s::bigint AND EXISTS (SELECT 1 FROM e) RETURNING id, balance)""")
        after.append("SELECT id, balance FROM g")
    if slotted:
        parts.append(f"""s AS (
  INSERT INTO ledger_balance_slots (account_id, slot, balance)
  SELECT d.account_id, %(slot)s::integer, d.delta FROM (VALUES {deltas}) AS d (account_id, delta)
  WHERE EXISTS (SELECT 1 FROM e) ORDER BY d.account_id
  ON CONFLICT (account_id, slot) DO UPDATE SET balance = ledger_balance_slots.balance + excluded.balance
  RETURNING account_id AS id, balance)""")
        after.append("SELECT id, balance FROM s")
    parts.append(f"""b AS ({" UNION ALL ".join(after)}),
p AS (
  INSERT INTO ledger_postings (entry_id, account_id, currency, amount, balance_after, slot)
  SELECT e.id, v.account_id, v.currency, v.amount, b.balance - v.later, v.slot
  FROM e, (VALUES {values}) AS v (n, account_id, currency, amount, later, slot) JOIN b ON b.id = v.account_id
  ORDER BY v.n)""")
    outcome = ["SELECT 'e' AS what, id, NULL::bigint AS balance FROM e"]
    if guarded:
        outcome.append("SELECT 'g', id, balance FROM g")
    if slotted:
        outcome.append("SELECT 's', id, balance FROM s")
    return "WITH " + ",\n".join(parts) + "\n" + "\nUNION ALL ".join(outcome)


def post_entry(conn: Connection, *, key: str, event_type: str, business_date: date, reference: str | None,
               memo: str | None, postings_hash: str, reverses: int | None, created_at: datetime,
               lines: list[Line], guarded: tuple[int, int] | None, slot: int, slot_deltas: dict[int, int],
               at_commit: bool = False) -> Written | None:
    """`guarded`: (account id, change) of the entry's one guarded account, if any; `slot_deltas`: the
    change to each slotted account, written to `slot`. at_commit: sent with the transaction's COMMIT
    (ledger.driver.at_commit), nothing read back (None); a key already there fails the transaction."""
    params: dict[str, object] = {
        "key": key, "event_type": event_type, "business_date": business_date, "reference": reference, "memo": memo,
        "postings_hash": postings_hash, "reverses": reverses, "created_at": created_at, "slot": slot}
    for i, line in enumerate(lines):
        params.update({f"a{i}": line.account_id, f"c{i}": line.currency, f"m{i}": line.amount, f"l{i}": line.later,
                       f"s{i}": slot if line.slotted else None})
    for i, (account_id, delta) in enumerate(sorted(slot_deltas.items())):
        params.update({f"sa{i}": account_id, f"sd{i}": delta})
    if guarded is not None:
        params.update(g_id=guarded[0], g_delta=guarded[1])
    if at_commit:
        driver.at_commit(conn, _sql(len(lines), len(slot_deltas), guarded is not None, True), params)
        return None
    rows = driver.fetch_all(conn, _sql(len(lines), len(slot_deltas), guarded is not None), params)
    entry_id = next((ident for what, ident, _ in rows if what == "e"), None)
    return Written(entry_id, {ident: balance for what, ident, balance in rows if what != "e"})
