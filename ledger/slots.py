"""Balance slots: how an account without a no-negative rule takes concurrent writers without a queue.

Every payment success credits its channel account's clearing and the platform's fee income. Kept in one
balance row each, those rows would be locked by every success in the system until its transaction ends,
and writers would wait for each other one at a time. An account whose balance may take any value
(clearing, fee income, suspense, expense…) needs no such row: nothing is decided by reading it while
writing. So its balance lives in SLOTS rows per account, each writer adding its change to one slot (the
slot of its database connection), and the account's balance is its own row's plus its slots' sum.
Two writers meet only if their connections share a slot.

Accounts with a no-negative rule (a merchant's balances, a position) keep one row, updated in place and
checked in the same statement, because the rule must be decided against the one true balance.

What proves it (ledger.check): each slot's balance is the sum of the postings naming that slot; the
account row's balance is the sum of its postings naming no slot; a posting's balance_after is the
running balance of its slot (or of the account row), so the chain check runs per (account, slot).
"""
from __future__ import annotations

import functools
import itertools
import random

from sqlalchemy import BigInteger, Connection, ColumnElement, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite

from ledger import driver
from ledger.models import LedgerAccount, LedgerBalanceSlot

accounts = LedgerAccount.__table__
slots = LedgerBalanceSlot.__table__

# More than the connections that write at once (a process's pool, 16 busy at most, times a few processes),
# so that two of them rarely share one; each slot is one more row to add on read, and reads of a hot
# account are rare next to its writes.
SLOTS = 64
_next = itertools.count(random.randrange(SLOTS))


def slot_of(conn: Connection) -> int:
    """The slot this connection writes to: its PostgreSQL backend's process id modulo SLOTS. A database
    connection runs one transaction at a time, and the server hands out process ids in turn, so the
    connections of all the gateway's processes (each its own pool) rarely share a slot; by a counter
    per process, two processes' pools would overlap wherever their counters did. SQLite has one writer
    at a time: one slot."""
    if conn.dialect.name == "sqlite":
        return 0
    info = conn.info
    if "ledger_slot" not in info:
        pid = getattr(getattr(conn.connection.driver_connection, "info", None), "backend_pid", None)
        info["ledger_slot"] = (pid if isinstance(pid, int) else next(_next)) % SLOTS
    return info["ledger_slot"]


def _upsert(dialect):  # noqa: ANN001, ANN202
    insert = dialect.insert(slots)
    return (insert.on_conflict_do_update(index_elements=[slots.c.account_id, slots.c.slot],
                                         set_={"balance": slots.c.balance + insert.excluded.balance})
            .returning(slots.c.account_id, slots.c.balance))


# Add to a slot, creating it at the first use; returns the slot's balance after. Executed with one
# parameter set per account, sent as one statement (SQLAlchemy's insertmanyvalues).
ADD_TO_SLOTS = {"postgresql": _upsert(postgresql), "sqlite": _upsert(sqlite)}
# Up to this many accounts, the same upsert is prebuilt SQL with one VALUES row per account, sent on the
# driver's cursor (ledger.driver): SQLAlchemy's insertmanyvalues rewrote its SQL on every execution.
PREBUILT_SLOT_ROWS = 16


@functools.lru_cache(maxsize=2 * PREBUILT_SLOT_ROWS)
def _add_to_slots_sql(count: int, dialect: str) -> str:
    rows = ", ".join(f"(:a{i}, :slot, :d{i})" for i in range(count))
    return driver.in_style(
        f"INSERT INTO ledger_balance_slots (account_id, slot, balance) VALUES {rows} "
        "ON CONFLICT (account_id, slot) DO UPDATE SET balance = ledger_balance_slots.balance + excluded.balance "
        "RETURNING account_id, balance", dialect)


def add_to_slots(conn: Connection, slot: int, changes: dict[int, int]) -> dict[int, int]:
    """Add each account's change (account id -> change, in the order given) to its `slot`, in one
    statement; returns each slot's balance after, by account id."""
    if len(changes) <= PREBUILT_SLOT_ROWS:
        params: dict[str, int] = {"slot": slot}
        for i, (account_id, delta) in enumerate(changes.items()):
            params[f"a{i}"], params[f"d{i}"] = account_id, delta
        return dict(driver.fetch_all(conn, _add_to_slots_sql(len(changes), conn.dialect.name), params))
    returned = conn.execute(ADD_TO_SLOTS[conn.dialect.name],
                            [{"account_id": a, "slot": slot, "balance": d} for a, d in changes.items()])
    return {row.account_id: row.balance for row in returned}


def whole_balance() -> ColumnElement[int]:
    """An account's net balance: its row's plus its slots'."""
    # PostgreSQL's sum of bigints is numeric: cast back, so that balances stay Python ints.
    in_slots = (select(cast(func.coalesce(func.sum(slots.c.balance), 0), BigInteger))
                .where(slots.c.account_id == accounts.c.id).scalar_subquery())
    return (accounts.c.balance + in_slots).label("balance")

