"""The entry's one statement on PostgreSQL goes through the driver's cursor (ledger.driver), not
SQLAlchemy's execution layer; what SQLAlchemy did for it must still happen: its statement listeners hear
it, a lost connection is raised as SQLAlchemy's error (so `run_tx` runs the transaction again), and a
driver error leaves nothing written."""
from __future__ import annotations

import time
from contextlib import ExitStack
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import DBAPIError

from gateway import db as dbmod
from ledger.chart import load_chart
from ledger.check import check_ledger
from ledger.core import AccountRef, Ledger, Posting
from ledger.errors import InsufficientBalance
from ledger import slots
from ledger.slots import SLOT_LOCK_CLASS, SLOTS, slot_of
from tests.conftest import NO_PG, PG_URL, _truncate_pg

pytestmark = [pytest.mark.pg, pytest.mark.skipif(not PG_URL, reason=NO_PG)]

CLEARING = AccountRef("channel_clearing", "sandbox", "CNY")
MERCHANT = AccountRef("merchant_in_transit", "mch_1", "CNY")
FEES = AccountRef("fee_income", "", "CNY")
NOW = datetime(2026, 11, 22, tzinfo=UTC)
LINES = [Posting.debit(CLEARING, 100), Posting.credit(MERCHANT, 94), Posting.credit(FEES, 6)]


def test_the_entry_statement_is_heard_lost_connections_are_run_again_and_errors_write_nothing(
        pg_database: str) -> None:
    _truncate_pg(pg_database)
    db, ledger = dbmod.Database(pg_database), Ledger(load_chart())
    admin = create_engine(dbmod.normalize_url(pg_database), isolation_level="AUTOCOMMIT")
    try:
        db.run_tx(lambda conn: ledger.post(conn, "warm", "payment.succeeded", LINES, now=NOW))  # accounts made

        sent: list[str] = []
        listener = lambda conn, cursor, statement, *rest: sent.append(statement)  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            db.run_tx(lambda conn: ledger.post(conn, "heard", "payment.succeeded", LINES, now=NOW))
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert [s for s in sent if s.startswith("WITH e AS")], sent

        def lose(conn) -> None:  # noqa: ANN001
            pid = conn.execute(text("SELECT pg_backend_pid(), pg_sleep(0)")).first()[0]
            with admin.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid})

        # The connection dies after the transaction began and before the entry's statement: the statement
        # raises SQLAlchemy's error, saying the connection was lost (and dropped from the pool)...
        with db.engine.connect() as conn:
            conn.begin()
            lose(conn)
            with pytest.raises(DBAPIError) as lost:
                ledger.post(conn, "lost", "payment.succeeded", LINES, now=NOW)
            assert lost.value.connection_invalidated
            conn.rollback()

        # ...so run_tx's second try, on a fresh connection, posts it once.
        tries: list[int] = []

        def post_after_losing_the_connection(conn):  # noqa: ANN001, ANN202
            tries.append(1)
            if len(tries) == 1:
                lose(conn)
            return ledger.post(conn, "after-loss", "payment.succeeded", LINES, now=NOW)

        entry = db.run_tx(post_after_losing_the_connection)
        assert len(tries) == 2 and entry.key == "after-loss"

        # A driver error (a value the column cannot take) is SQLAlchemy's DBAPIError and writes nothing.
        with pytest.raises(DBAPIError):
            db.run_tx(lambda conn: ledger.post(conn, "x" * 300, "payment.succeeded", LINES, now=NOW))
        with db.transaction() as conn:
            keys = conn.execute(text("SELECT key FROM ledger_entries ORDER BY id")).scalars().all()
            assert keys == ["warm", "heard", "after-loss"]
            assert ledger.balance(conn, MERCHANT) == 3 * 94
            assert check_ledger(conn) == []
    finally:
        admin.dispose()
        db.dispose()


def test_an_entry_kept_for_the_commit_goes_with_it_and_a_failure_there_fails_the_whole_transaction(
        pg_database: str) -> None:
    """ledger.driver.at_commit: on PostgreSQL, inside Database.transaction, an entry whose result the caller
    does not read is sent with the COMMIT (one pipeline), after everything else of its transaction; a key
    already there fails the transaction then, with nothing of it written; an entry that takes a guarded
    account down is never kept (its rule is checked when it is posted); outside Database.transaction it is
    sent at once."""
    _truncate_pg(pg_database)
    db, ledger = dbmod.Database(pg_database), Ledger(load_chart())
    try:
        db.run_tx(lambda conn: ledger.post(conn, "warm", "payment.succeeded", LINES, now=NOW))  # accounts made
        sent: list[str] = []
        listener = lambda conn, cursor, statement, *rest: sent.append(statement.split()[0])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            def body(conn) -> None:  # noqa: ANN001
                assert ledger.post(conn, "kept", "payment.succeeded", LINES, now=NOW, at_commit=True) is None
                conn.execute(text("SELECT 1 AS after_the_entry"))
                assert ledger.entry(conn, "kept") is None   # not sent yet
            db.run_tx(body)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert sent[-3:] == ["SELECT", "SELECT", "WITH"], sent   # the entry went last, with the COMMIT

        # The same key again: the transaction fails at its commit, and its other write is not kept.
        def again(conn) -> None:  # noqa: ANN001
            ledger.post(conn, "other", "payment.succeeded", LINES, now=NOW)
            ledger.post(conn, "kept", "payment.succeeded", LINES, now=NOW, at_commit=True)
        with pytest.raises(DBAPIError):
            db.run_tx(again)

        # A debit of a guarded account is posted at once, so that its rule is checked where it is posted.
        taking = [Posting.debit(MERCHANT, 10_000), Posting.credit(CLEARING, 10_000)]
        with pytest.raises(InsufficientBalance):
            db.run_tx(lambda conn: ledger.post(conn, "too-much", "payment.succeeded", taking, now=NOW, at_commit=True))

        # Outside Database.transaction nothing is kept: the entry is there before the commit.
        with db.engine.begin() as conn:
            assert ledger.post(conn, "plain", "payment.succeeded", LINES, now=NOW, at_commit=True) is None
            assert ledger.entry(conn, "plain") is not None

        with db.transaction() as conn:
            keys = conn.execute(text("SELECT key FROM ledger_entries ORDER BY id")).scalars().all()
            assert keys == ["warm", "kept", "plain"]
            assert ledger.balance(conn, MERCHANT) == 3 * 94
            assert check_ledger(conn) == []
    finally:
        db.dispose()


SLOT_LOCKS = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :c AND database = "
              "(SELECT oid FROM pg_database WHERE datname = current_database())")


def test_live_connections_never_share_a_slot_and_a_closed_ones_slot_is_free_again(pg_database: str) -> None:
    """Each process has its own pool. By backend process id modulo SLOTS alone, two of 16 connections
    shared a slot 6 times in 7, and their slot rows queued them; each connection now claims
    a slot no live connection holds (an advisory lock the server drops when the connection ends)."""
    first, second = dbmod.Database(pg_database), dbmod.Database(pg_database)
    try:
        with ExitStack() as stack:
            conns = [stack.enter_context(db.engine.connect()) for db in (first, second) for _ in range(20)]
            taken = [slot_of(c) for c in conns]
            assert len(set(taken)) == len(conns)   # 40 connections, 40 slots
            held = conns[0].execute(text(SLOT_LOCKS), {"c": SLOT_LOCK_CLASS}).scalar_one()
            assert held == len(conns)
        first.engine.dispose()
        second.engine.dispose()
        with first.engine.connect() as again:   # every slot is let go as its connection's backend ends
            deadline = time.monotonic() + 10
            while again.execute(text(SLOT_LOCKS + " AND pid <> pg_backend_pid()"), {"c": SLOT_LOCK_CLASS}).scalar_one():
                assert time.monotonic() < deadline, "the closed connections' slots are still held"
                time.sleep(0.05)
            again.execute(text("SELECT pg_advisory_unlock_all()"))   # its own claim, made when it opened
            slots.claim_slot(again.connection.driver_connection)
            pid = again.connection.driver_connection.info.backend_pid
            held = again.execute(text("SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid = :c AND "
                                      "pid = pg_backend_pid()"), {"c": SLOT_LOCK_CLASS}).scalars().all()
            assert held == [pid % SLOTS]   # no one holds any other: the first it tried
    finally:
        first.dispose()
        second.dispose()
