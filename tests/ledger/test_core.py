"""The double-entry core: post, reverse, holds, and the typed errors that write nothing."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from gateway.db import Database
from ledger.booking import Booker
from ledger.chart import fee_for, load_chart
from ledger.check import check_ledger
from ledger.core import AccountRef, Ledger, Posting
from ledger.days import BusinessDay
from ledger.reads import postings_on, total_balance
from ledger.errors import AlreadyReversed, EntryConflict, InsufficientBalance, InvalidEntry, UnbalancedEntry

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
CLEARING = AccountRef("channel_clearing", "sandbox", "CNY")
IN_TRANSIT = AccountRef("merchant_in_transit", "mch_a", "CNY")
AVAILABLE = AccountRef("merchant_available", "mch_a", "CNY")
FROZEN = AccountRef("merchant_frozen", "mch_a", "CNY")
FEES = AccountRef("fee_income", "", "CNY")


@pytest.fixture
def db(db_url: str):  # noqa: ANN201
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(load_chart())


def pay_in(ledger: Ledger, conn, key: str, amount: int, fee: int = 0):  # noqa: ANN001, ANN201
    lines = [Posting.debit(CLEARING, amount), Posting.credit(IN_TRANSIT, amount - fee)]
    if fee:
        lines.append(Posting.credit(FEES, fee))
    return ledger.post(conn, key, "payment.succeeded", lines, now=NOW)


def count(db: Database, table: str) -> int:
    with db.transaction() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_a_balanced_entry_moves_balances_and_records_balance_after(db, ledger) -> None:
    with db.transaction() as conn:
        entry = pay_in(ledger, conn, "p1", 1000, fee=6)
        pay_in(ledger, conn, "p2", 500, fee=3)
        assert ledger.balance(conn, IN_TRANSIT) == 994 + 497
        assert ledger.balance(conn, CLEARING) == 1500
        assert ledger.balance(conn, FEES) == 9
        # The merchant's account (no-negative) has one row and a running balance; clearing and fee income
        # are kept in slots (ledger.slots), where no one row holds the account's running balance.
        assert [(line.account.code, line.amount, line.balance_after) for line in entry.lines] == [
            ("channel_clearing", 1000, None), ("merchant_in_transit", -994, -994), ("fee_income", -6, None)]
        assert check_ledger(conn) == []


def test_posting_the_same_key_again_returns_the_first_entry(db, ledger) -> None:
    with db.transaction() as conn:
        first = pay_in(ledger, conn, "p1", 1000)
        again = pay_in(ledger, conn, "p1", 1000)
        assert again.id == first.id
        assert ledger.balance(conn, IN_TRANSIT) == 1000
        with pytest.raises(EntryConflict):
            pay_in(ledger, conn, "p1", 999)


@pytest.mark.parametrize("lines,error", [
    ([Posting.debit(CLEARING, 100)], InvalidEntry),
    ([Posting.debit(CLEARING, 100), Posting.credit(IN_TRANSIT, 99)], UnbalancedEntry),
    ([Posting.debit(CLEARING, 0), Posting.credit(IN_TRANSIT, 0)], InvalidEntry),
    ([Posting.debit(CLEARING, 100), Posting.credit(AccountRef("merchant_in_transit", "mch_a", "USD"), 100)],
     UnbalancedEntry),
    ([Posting.debit(AccountRef("no_such_account", "", "CNY"), 1), Posting.credit(FEES, 1)], Exception),
])
def test_bad_entries_raise_a_typed_error_and_write_nothing(db, ledger, lines, error) -> None:
    with pytest.raises(error):
        with db.transaction() as conn:
            ledger.post(conn, "bad", "test", lines, now=NOW)
    assert count(db, "ledger_entries") == 0 and count(db, "ledger_postings") == 0


def test_mixed_currencies_are_fine_when_each_balances(db, ledger) -> None:
    usd_clearing, usd_merchant = AccountRef("channel_clearing", "x", "USD"), AccountRef("merchant_in_transit", "m", "USD")
    with db.transaction() as conn:
        ledger.post(conn, "fx", "test", [Posting.debit(CLEARING, 700), Posting.credit(IN_TRANSIT, 700),
                                         Posting.debit(usd_clearing, 100), Posting.credit(usd_merchant, 100)], now=NOW)
        assert check_ledger(conn) == []


def test_an_overdraw_is_refused_and_writes_nothing(db, ledger) -> None:
    with db.transaction() as conn:
        pay_in(ledger, conn, "p1", 100)
    with pytest.raises(InsufficientBalance):
        with db.transaction() as conn:
            ledger.post(conn, "too-much", "payout", [Posting.debit(IN_TRANSIT, 101), Posting.credit(CLEARING, 101)],
                        now=NOW)
    with db.transaction() as conn:
        assert ledger.balance(conn, IN_TRANSIT) == 100
        assert ledger.entry(conn, "too-much") is None


def test_reverse_mirrors_once_and_refuses_a_second_time(db, ledger) -> None:
    with db.transaction() as conn:
        entry = pay_in(ledger, conn, "p1", 1000, fee=6)
        mirror = ledger.reverse(conn, entry, now=NOW)
        assert mirror.reverses == entry.id
        assert sorted(line.amount for line in mirror.lines) == sorted(-line.amount for line in entry.lines)
        assert ledger.balance(conn, IN_TRANSIT) == 0 and ledger.balance(conn, FEES) == 0
        with pytest.raises(AlreadyReversed):
            ledger.reverse(conn, entry, now=NOW)
        with pytest.raises(AlreadyReversed):
            ledger.reverse(conn, entry, now=NOW, key="another-key")
        assert check_ledger(conn) == []


def test_freeze_and_unfreeze_move_between_available_and_frozen(db, ledger) -> None:
    booker = Booker(ledger)
    with db.transaction() as conn:
        ledger.post(conn, "settle", "settlement", [Posting.debit(CLEARING, 500), Posting.credit(AVAILABLE, 500)], now=NOW)
        booker.freeze(conn, "mch_a", "CNY", 200, "hold:1", NOW)
        assert (ledger.balance(conn, AVAILABLE), ledger.balance(conn, FROZEN)) == (300, 200)
        booker.unfreeze(conn, "mch_a", "CNY", 150, "hold:1", NOW)
        assert (ledger.balance(conn, AVAILABLE), ledger.balance(conn, FROZEN)) == (450, 50)
    with pytest.raises(InsufficientBalance):
        with db.transaction() as conn:
            booker.freeze(conn, "mch_a", "CNY", 451, "hold:2", NOW)


@pytest.mark.parametrize("amount,bps,fee", [(10000, 60, 60), (83, 60, 0), (84, 60, 1), (250, 60, 2), (1, 10000, 1),
                                           (12345, 38, 47), (0, 60, 0)])
def test_fees_round_half_up_to_the_minor_unit(amount, bps, fee) -> None:
    # 83 * 0.006 = 0.498 -> 0; 84 * 0.006 = 0.504 -> 1; 250 * 0.006 = 1.5 -> 2; 12345 * 0.0038 = 46.911 -> 47
    assert fee_for(amount, bps) == fee


def test_pro_rata_fee_refunds_add_up_to_the_whole_fee() -> None:
    booker = Booker(Ledger(load_chart()))
    amount, fee = 1000, 7
    parts = [333, 333, 334]
    given, refunded = 0, 0
    for part in parts:
        refunded += part
        given += booker.fee_refund(amount, fee, part, given, completes=refunded == amount)
    assert given == fee


def test_many_small_refunds_give_back_no_more_fee_than_their_sum_would() -> None:
    """60 refunds of 84 fen of a 10,000 payment (fee 60): each alone would round 0.504 up to 1 and give
    back the whole fee for half the payment; rounding the running total gives back 30, as one refund
    of 5,040 would (and a refund that completes the payment still gives back the rest)."""
    booker = Booker(Ledger(load_chart()))
    amount, fee = 10000, fee_for(10000, 60)
    given = refunded = 0
    for _ in range(60):
        given += booker.fee_refund(amount, fee, 84, given, completes=False, refunded_before=refunded)
        refunded += 84
    assert given == fee_for(5040, 60) == 30
    given += booker.fee_refund(amount, fee, amount - refunded, given, completes=True, refunded_before=refunded)
    assert given == fee


def test_business_date_follows_the_time_zone_and_day_cut() -> None:
    chart = load_chart()
    late_utc = datetime(2026, 11, 21, 17, 30, tzinfo=UTC)  # 01:30 on the 22nd in Shanghai
    assert Ledger(chart).business_date(late_utc).isoformat() == "2026-11-22"
    assert Ledger(chart, day_cut_hour=2).business_date(late_utc).isoformat() == "2026-11-21"
    assert Ledger(chart, business_timezone="UTC").business_date(late_utc).isoformat() == "2026-11-21"


def test_a_business_day_starts_at_the_day_cut_and_start_inverts_date_of() -> None:
    day = BusinessDay.of("Asia/Shanghai", 2)
    late_utc = datetime(2026, 11, 21, 17, 30, tzinfo=UTC)  # 01:30 on the 22nd in Shanghai: still the 21st
    assert day.date_of(late_utc) == date(2026, 11, 21)
    assert day.start(date(2026, 11, 21)) == datetime(2026, 11, 20, 18, 0, tzinfo=UTC)   # 02:00 Shanghai
    assert day.start_of_day_containing(late_utc) == day.start(date(2026, 11, 21))
    for moment in (day.start(date(2026, 11, 21)), day.start(date(2026, 11, 22)) - timedelta(microseconds=1)):
        assert day.date_of(moment) == date(2026, 11, 21)
    assert (day.time_zone, day.cut_seconds) == ("Asia/Shanghai", 7200)


def test_an_account_created_in_a_rolled_back_transaction_is_not_trusted_later(db, ledger) -> None:
    # Found by the state machine: the failed freeze creates (and caches) accounts, then rolls back;
    # SQLite may hand the same ids to the next accounts created.
    booker = Booker(ledger)
    with pytest.raises(InsufficientBalance):
        with db.transaction() as conn:
            booker.freeze(conn, "mch_a", "CNY", 1, "hold:1", NOW)
    with db.transaction() as conn:
        pay_in(ledger, conn, "p1", 1)
        ledger.post(conn, "clear", "clearing", [Posting.debit(IN_TRANSIT, 1), Posting.credit(AVAILABLE, 1)], now=NOW)
        assert (ledger.balance(conn, CLEARING), ledger.balance(conn, IN_TRANSIT), ledger.balance(conn, AVAILABLE)) \
            == (1, 0, 1)
        assert check_ledger(conn) == []


def test_reads_give_postings_and_balances_in_the_accounts_normal_sign(db, ledger) -> None:
    day = ledger.business_date(NOW)
    with db.transaction() as conn:
        pay_in(ledger, conn, "p1", 1000, fee=6)
        ledger.post(conn, "clear", "clearing", [Posting.debit(IN_TRANSIT, 300), Posting.credit(AVAILABLE, 300)],
                    now=NOW)
        moved = conn.execute(postings_on(("merchant_in_transit", "channel_clearing"), ("payment.succeeded",), day)
                             .order_by("code")).all()
        assert [(r.reference, r.code, r.debit, r.credit, r.change) for r in moved] == [
            (None, "channel_clearing", 1000, 0, 1000),       # debit-normal: a debit grows it
            (None, "merchant_in_transit", 0, 994, 994)]      # credit-normal: a credit grows it
        assert conn.execute(postings_on(("merchant_in_transit",), ("payment.succeeded",),
                                        day - timedelta(days=1))).all() == []
        assert total_balance(conn, "merchant_in_transit") == 994 - 300 == ledger.balance(conn, IN_TRANSIT)
        assert total_balance(conn, "channel_clearing") == 1000
        assert total_balance(conn, "advances") == 0


def test_the_ledger_imports_nothing_of_the_gateway() -> None:
    import subprocess
    import sys

    modules = "ledger.booking, ledger.chart, ledger.check, ledger.core, ledger.days, ledger.errors, ledger.models, " \
              "ledger.reads"
    found = subprocess.run([sys.executable, "-c", f"import sys, {modules}; "
                            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'gateway'))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert found == "[]"


def test_an_account_named_twice_in_one_entry_chains_its_balance_after(db, ledger) -> None:
    """PostgreSQL posts an entry in one statement (ledger.one_statement), working each line's
    balance_after back from the balance after the whole entry; the chain check proves it line by line."""
    with db.transaction() as conn:
        pay_in(ledger, conn, "p1", 1000)
        entry = ledger.post(conn, "twice", "payment.succeeded", [
            Posting.debit(CLEARING, 300), Posting.credit(IN_TRANSIT, 100), Posting.debit(CLEARING, 200),
            Posting.credit(IN_TRANSIT, 400)], now=NOW)
        assert [line.balance_after for line in entry.lines if line.account == IN_TRANSIT] == [-1100, -1500]
        assert ledger.entry(conn, "twice") == entry
        assert ledger.balance(conn, CLEARING) == 1500
        assert check_ledger(conn) == []
