"""The database itself refuses edits to history and, on PostgreSQL, unbalanced entries at commit."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gateway.db import Database
from ledger.chart import load_chart
from ledger.check import check_ledger
from ledger.core import AccountRef, Ledger, Posting

NOW = datetime(2026, 11, 22, tzinfo=UTC)


@pytest.fixture
def db(db_url: str):  # noqa: ANN201
    database = Database(db_url)
    with database.transaction() as conn:
        Ledger(load_chart()).post(conn, "p1", "payment.succeeded", [
            Posting.debit(AccountRef("channel_clearing", "sandbox", "CNY"), 100),
            Posting.credit(AccountRef("merchant_in_transit", "m", "CNY"), 100)], now=NOW)
    yield database
    database.dispose()


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_postings SET amount = amount + 1",
    "DELETE FROM ledger_postings",
    "UPDATE ledger_entries SET memo = 'edited'",
    "DELETE FROM ledger_entries",
])
def test_history_cannot_be_edited(db, statement) -> None:
    with pytest.raises(DBAPIError, match="append-only"):
        with db.transaction() as conn:
            conn.execute(text(statement))
    with db.transaction() as conn:
        assert conn.execute(text("SELECT sum(amount), count(*) FROM ledger_postings")).one() == (0, 2)


def _raw_entry(conn, key: str) -> int:  # noqa: ANN001
    return conn.execute(text(
        "INSERT INTO ledger_entries (key, event_type, business_date, postings_hash, created_at) "
        "VALUES (:k, 'raw', '2026-11-22', 'x', now()) RETURNING id"), {"k": key}).scalar_one()


@pytest.mark.pg
def test_an_unbalanced_entry_written_with_raw_sql_fails_at_commit(db) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite has no deferred triggers; the check runs on PostgreSQL")
    with pytest.raises(DBAPIError, match="does not balance"):
        with db.transaction() as conn:
            entry_id = _raw_entry(conn, "raw-1")
            for amount in (100, -99):
                conn.execute(text("INSERT INTO ledger_postings (entry_id, account_id, currency, amount, balance_after) "
                                  "VALUES (:e, 1, 'CNY', :a, 0)"), {"e": entry_id, "a": amount})


@pytest.mark.pg
def test_an_entry_without_postings_fails_at_commit(db) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite has no deferred triggers; the check runs on PostgreSQL")
    with pytest.raises(DBAPIError, match="at least two"):
        with db.transaction() as conn:
            _raw_entry(conn, "raw-2")


@pytest.mark.pg
def test_a_posting_added_to_a_balanced_entry_fails_at_commit(db) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite has no deferred triggers; the check runs on PostgreSQL")
    with pytest.raises(DBAPIError, match="does not balance"):
        with db.transaction() as conn:
            conn.execute(text("INSERT INTO ledger_postings (entry_id, account_id, currency, amount, balance_after) "
                              "SELECT id, 1, 'CNY', 5, 0 FROM ledger_entries WHERE key = 'p1'"))


@pytest.mark.pg
def test_the_balance_check_leaves_nothing_behind_in_the_connection(db_url: str) -> None:
    """It once marked each entry it checked with a setting of its own, which the connection kept for good
    and which PostgreSQL before 16 walked at the end of every transaction: a connection's commits grew
    slower with each entry it had posted (pgbench: 3,360 to 1,236 entries/s in 40 s on 8 connections)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has no deferred triggers; the check runs on PostgreSQL")
    database = Database(db_url)
    try:
        with database.engine.connect() as conn:
            posted = []
            for k in range(3):
                with conn.begin():
                    posted.append(Ledger(load_chart()).post(conn, f"kept-{k}", "payment.succeeded", [
                        Posting.debit(AccountRef("channel_clearing", "sandbox", "CNY"), 100),
                        Posting.credit(AccountRef("merchant_in_transit", "m", "CNY"), 100)], now=NOW).id)
            with conn.begin():   # a setting ever made in this session reads '' after its transaction, never NULL
                kept = [conn.execute(text("SELECT current_setting(:name, true)"),
                                     {"name": f"paymux.ledger_checked_{entry_id}"}).scalar_one() for entry_id in posted]
        assert kept == [None, None, None]
    finally:
        database.dispose()


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_balance_slots SET balance = balance + 1",
    "UPDATE ledger_accounts SET balance = balance - 1 WHERE code = 'merchant_in_transit'",
    "INSERT INTO ledger_balance_slots (account_id, slot, balance) "
    "SELECT id, 16, 5 FROM ledger_accounts WHERE code = 'channel_clearing'",   # slots are 0-15: none names 16
])
def test_ledger_check_finds_a_balance_edited_behind_its_back(db, statement) -> None:
    """Balances are not append-only (they change with every posting); `ledger check` proves them against
    the postings: an account row, an existing slot, or a slot no posting names."""
    with db.transaction() as conn:
        assert check_ledger(conn) == []
        conn.execute(text(statement))
        problems = check_ledger(conn)
    assert problems and all("postings sum to" in p for p in problems), problems
