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
# The advisory lock class under which a PostgreSQL connection holds its slot ('lslt'): see claim_slot.
SLOT_LOCK_CLASS = 0x6C736C74
SLOT_INFO = "ledger_slot"   # where a connection's slot is kept, in its pool record's info


def claim_slot(dbapi_connection) -> int | None:  # noqa: ANN001
    """PostgreSQL, when a connection is opened (gateway.db registers it): the first slot, from its backend's
    process id modulo SLOTS on, that no other live connection holds, held by a session advisory lock for
    the connection's life (the server lets it go when the connection ends, however it ends). Process ids
    modulo SLOTS alone fall on the slots as at random: among 16 connections some two share a slot 6 times
    in 7 (1 - 64!/(48! 64^16)), and their locked slot rows queued them one behind the other. Claimed, no
    two share one while there are no more than SLOTS.
    None if every slot is held: slot_of then falls back to the process id's. Nothing rests on the claim
    but speed: two connections on one slot (more than SLOTS of them, or a pooler in transaction mode
    that hands one server connection to many clients) only wait for each other on its rows."""
    pid = dbapi_connection.info.backend_pid
    try:
        with dbapi_connection.cursor() as cursor:
            for k in range(SLOTS):
                cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", (SLOT_LOCK_CLASS, (pid + k) % SLOTS))
                if cursor.fetchone()[0]:
                    return (pid + k) % SLOTS
        return None
    finally:
        dbapi_connection.rollback()   # no transaction left open; a session's advisory lock outlives it


def slot_of(conn: Connection) -> int:
    """The slot this connection writes to: on PostgreSQL the one it claimed when it was opened
    (claim_slot), else its backend's process id modulo SLOTS (a connection no claim ran for). A database
    connection runs one transaction at a time, so connections that hold different slots never meet on
    a slot row. SQLite has one writer at a time: one slot."""
    if conn.dialect.name == "sqlite":
        return 0
    info = conn.info
    if SLOT_INFO not in info:
        pid = getattr(getattr(conn.connection.driver_connection, "info", None), "backend_pid", None)
        info[SLOT_INFO] = (pid if isinstance(pid, int) else next(_next)) % SLOTS
    return info[SLOT_INFO]


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

