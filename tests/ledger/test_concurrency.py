"""Many writers on one hot merchant account: no lost update, no overdraw, a clean check."""
from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gateway.db import Database
from ledger.chart import load_chart
from ledger.check import check_ledger
from ledger.core import AccountRef, Ledger, Posting
from ledger.errors import InsufficientBalance
from tests.conftest import NO_PG, PG_URL

CLEARING = AccountRef("channel_clearing", "sandbox", "CNY")
HOT = AccountRef("merchant_in_transit", "mch_hot", "CNY")
PAYABLE = AccountRef("refunds_payable", "mch_hot", "CNY")
NOW = datetime(2026, 11, 22, tzinfo=UTC)


@pytest.mark.pg
@pytest.mark.skipif(not PG_URL, reason=NO_PG)
def test_sixteen_writers_on_one_hot_account(pg_database: str) -> None:
    from tests.conftest import _truncate_pg

    _truncate_pg(pg_database)
    db = Database(pg_database)
    ledger = Ledger(load_chart())
    with db.transaction() as conn:
        ledger.post(conn, "seed", "payment.succeeded", [Posting.debit(CLEARING, 1000), Posting.credit(HOT, 1000)],
                    now=NOW)
    credits, debits, refused, errors = [], [], [], []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def writer(n: int) -> None:
        start.wait()
        for i in range(40):
            key = f"w{n}-{i}"
            try:
                if i % 2:
                    db.run_tx(lambda conn: ledger.post(conn, key, "refund.requested", [
                        Posting.debit(HOT, 15), Posting.credit(PAYABLE, 15)], now=NOW))
                    with lock:
                        debits.append(key)
                else:
                    db.run_tx(lambda conn: ledger.post(conn, key, "payment.succeeded", [
                        Posting.debit(CLEARING, 10), Posting.credit(HOT, 10)], now=NOW))
                    with lock:
                        credits.append(key)
            except InsufficientBalance:
                with lock:
                    refused.append(key)
            except Exception as exc:  # noqa: BLE001  collected and asserted below
                with lock:
                    errors.append(repr(exc))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(credits) + len(debits) + len(refused) == 16 * 40
    with db.transaction() as conn:
        final = ledger.balance(conn, HOT)
        assert final == 1000 + 10 * len(credits) - 15 * len(debits)
        assert final >= 0
        assert ledger.balance(conn, PAYABLE) == 15 * len(debits)
        assert check_ledger(conn) == []
    db.dispose()


@pytest.mark.pg
@pytest.mark.skipif(not PG_URL, reason=NO_PG)
def test_accounts_come_into_existence_outside_the_writers_transactions(pg_database: str) -> None:
    """Two writers each create two new accounts, in opposite orders, inside their open transactions.
    Created in the writers' own transactions, the second creation of each waits for the other's commit:
    PostgreSQL detects a deadlock and one writer fails. Each account is made in a transaction of its own,
    so both go through; and an account made for a transaction that then rolls back stays, empty."""
    from tests.conftest import _truncate_pg

    _truncate_pg(pg_database)
    db = Database(pg_database)
    ledger = Ledger(load_chart())
    first, second = AccountRef("merchant_in_transit", "mch_a", "CNY"), AccountRef("merchant_in_transit", "mch_b", "CNY")
    halfway = threading.Barrier(2, timeout=20)
    failures: list[str] = []

    def writer(order: tuple[AccountRef, AccountRef], rollback: bool) -> None:
        own = Ledger(load_chart())      # as in two processes: no account id cached from the other
        try:
            with db.transaction() as conn:
                own.account_id(conn, order[0], NOW)
                halfway.wait()
                own.account_id(conn, order[1], NOW)
                if rollback:
                    raise RuntimeError("the writer's transaction rolls back")
        except RuntimeError:
            pass
        except Exception as exc:  # noqa: BLE001  collected and asserted below
            failures.append(repr(exc))

    threads = [threading.Thread(target=writer, args=((first, second), False)),
               threading.Thread(target=writer, args=((second, first), True))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []
    with db.transaction() as conn:
        assert ledger.balance(conn, first) == ledger.balance(conn, second) == 0
        ledger.post(conn, "after", "payment.succeeded", [Posting.debit(CLEARING, 10), Posting.credit(second, 10)],
                    now=NOW)
        assert ledger.balance(conn, second) == 10
        assert check_ledger(conn) == []
    db.dispose()


@pytest.mark.pg
@pytest.mark.skipif(not PG_URL, reason=NO_PG)
def test_writers_to_a_platform_account_do_not_wait_for_each_other(pg_database: str) -> None:
    """Clearing and fee income have no no-negative rule: kept in slots (ledger.slots), a writer holding
    its transaction open does not make the next one wait. A merchant's account has the rule: the second
    writer to it does wait. `lock_timeout` turns a wait into an error, so the test sees it without timing."""
    from tests.conftest import _truncate_pg

    _truncate_pg(pg_database)
    db = Database(pg_database)
    ledger = Ledger(load_chart())
    fees = AccountRef("fee_income", "", "CNY")

    def pay_in(conn, key: str, merchant: str) -> None:  # noqa: ANN001
        ledger.post(conn, key, "payment.succeeded", [Posting.debit(CLEARING, 100), Posting.credit(fees, 1),
                                                     Posting.credit(AccountRef("merchant_in_transit", merchant, "CNY"),
                                                                    99)], now=NOW)

    with db.transaction() as conn:       # the accounts exist
        pay_in(conn, "seed-a", "mch_a")
        pay_in(conn, "seed-b", "mch_b")
    with db.engine.connect() as holder, db.engine.connect() as other:
        holder.begin()
        pay_in(holder, "held", "mch_a")                   # uncommitted: its rows stay locked
        other.begin()
        other.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
        pay_in(other, "beside", "mch_b")                  # the same clearing and fee income: no wait
        other.commit()
        other.begin()
        other.exec_driver_sql("SET LOCAL lock_timeout = '200ms'")
        with pytest.raises(DBAPIError, match="lock timeout"):
            pay_in(other, "behind", "mch_a")              # the same merchant's account: waits for `held`
        other.rollback()
        holder.commit()
    with db.transaction() as conn:
        assert ledger.balance(conn, CLEARING) == 400
        assert ledger.balance(conn, fees) == 4
        assert conn.execute(text("SELECT count(DISTINCT slot) FROM ledger_balance_slots")).scalar_one() >= 2
        assert check_ledger(conn) == []
    db.dispose()
