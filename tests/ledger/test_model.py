"""A hypothesis state machine drives the ledger and booking with random business events and checks,
after every step, the balances against a simple in-memory model and every ledger invariant."""
from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, precondition, rule

from gateway.db import Database, upgrade
from ledger.booking import Booker, DiscountFacts, PaymentFacts, RefundShares
from ledger.chart import fee_for, load_chart
from ledger.check import check_ledger
from ledger.core import AccountRef, Ledger, Posting
from ledger.errors import AlreadyReversed, InsufficientBalance
from tests.conftest import _truncate_pg

NOW = datetime(2026, 11, 22, tzinfo=UTC)
M, CH, CUR = "mch_model", "sandbox", "CNY"
BPS = 60
ACCOUNTS = {name: AccountRef(name, owner, CUR) for name, owner in [
    ("channel_clearing", CH), ("merchant_in_transit", M), ("merchant_available", M), ("merchant_frozen", M),
    ("refunds_payable", M), ("fee_income", "")]}
NO_NEGATIVE = ("merchant_in_transit", "merchant_available", "merchant_frozen", "refunds_payable")
CREDIT_NORMAL = {"merchant_in_transit", "merchant_available", "merchant_frozen", "refunds_payable", "fee_income"}
counter = itertools.count()


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


class LedgerModel(RuleBasedStateMachine):
    payments = Bundle("payments")
    refunds = Bundle("refunds")
    entries = Bundle("entries")

    def __init__(self) -> None:
        super().__init__()
        if isinstance(TEMPLATE, str):
            # A PostgreSQL database, emptied for each example, written through two engines in turn: two
            # connections, two balance slots for each platform account.
            _truncate_pg(TEMPLATE)
            self.dbs = [Database(TEMPLATE), Database(TEMPLATE)]
        else:
            path = TEMPLATE.parent / f"run{next(counter)}.db"
            path.write_bytes(TEMPLATE.read_bytes())
            self.dbs = [Database(f"sqlite:///{path}")]
        self.turn = itertools.count()
        self.ledger = Ledger(load_chart())
        self.booker = Booker(self.ledger)
        self.normal: dict[str, int] = defaultdict(int)   # the model: normal balance per account
        self.paid: dict[str, dict] = {}
        self.reversed: set[int] = set()
        self.ids = itertools.count()

    @property
    def db(self) -> Database:
        return self.dbs[next(self.turn) % len(self.dbs)]

    def teardown(self) -> None:
        for db in self.dbs:
            db.dispose()

    # ---- model helpers ----

    def move(self, deltas: dict[str, int]) -> None:
        """Apply debits (+) / credits (-) to the model's normal balances."""
        for name, amount in deltas.items():
            self.normal[name] += -amount if name in CREDIT_NORMAL else amount

    def would_overdraw(self, deltas: dict[str, int]) -> bool:
        for name, amount in deltas.items():
            after = self.normal[name] + (-amount if name in CREDIT_NORMAL else amount)
            if name in NO_NEGATIVE and after < 0:
                return True
        return False

    def facts(self, pid: str) -> PaymentFacts:
        return PaymentFacts(pid, M, CH, self.paid[pid]["amount"], CUR)

    # ---- rules ----

    @rule(target=payments, amount=st.integers(1, 100_000), kept=st.floats(0, 1))
    def payment_succeeds(self, amount: int, kept: float) -> str:
        """kept: the share of the order a coupon the channel does not settle took (0: none)."""
        pid = f"pay_{next(self.ids)}"
        discount = int(amount * kept) if kept > 0.5 else 0
        coupons = (DiscountFacts(discount, discount),) if discount else ()
        with self.db.transaction() as conn:
            booked = self.booker.payment_succeeded(conn, PaymentFacts(pid, M, CH, amount, CUR), NOW, coupons)
        assert booked.fee == fee_for(amount - discount, BPS) and booked.discount == discount
        self.paid[pid] = {"amount": amount, "fee": booked.fee, "discount": discount, "reserved": 0, "fee_back": 0,
                          "discount_back": 0, "entry": booked.entry}
        self.move({"channel_clearing": amount - discount, "merchant_in_transit": -(amount - discount - booked.fee),
                   "fee_income": -booked.fee})
        return pid

    @rule(pid=payments)
    def duplicate_callback_books_nothing_new(self, pid: str) -> None:
        p = self.paid[pid]
        with self.db.transaction() as conn:
            booked = self.booker.payment_succeeded(conn, self.facts(pid), NOW,
                                                   (DiscountFacts(p["discount"], p["discount"]),) if p["discount"] else ())
        assert (booked.entry and booked.entry.id) == (p["entry"] and p["entry"].id)   # None: nothing was booked

    @rule(share=st.floats(0, 1))
    def clearing_moves_in_transit_to_available(self, share: float) -> None:
        amount = int(self.normal["merchant_in_transit"] * share)
        if amount <= 0:
            return
        with self.db.transaction() as conn:
            self.ledger.post(conn, f"clear:{next(self.ids)}", "clearing", [
                Posting.debit(ACCOUNTS["merchant_in_transit"], amount),
                Posting.credit(ACCOUNTS["merchant_available"], amount)], now=NOW)
        self.move({"merchant_in_transit": amount, "merchant_available": -amount})

    @rule(target=refunds, pid=payments, share=st.floats(0.01, 1.2))
    def refund_requested(self, pid: str, share: float):  # noqa: ANN201
        p = self.paid[pid]
        amount = max(1, int(p["amount"] * share))
        if p["reserved"] + amount > p["amount"]:
            return None  # an over-refund: the gateway refuses it before the ledger is asked
        completes = p["reserved"] + amount == p["amount"]
        discount_back = self.booker.discount_share(p["discount"], p["amount"], amount, p["discount_back"], completes)
        fee_back = self.booker.fee_refund(p["amount"] - p["discount"], p["fee"], amount - discount_back,
                                          p["fee_back"], completes,
                                          refunded_before=p["reserved"] - p["discount_back"])
        shares = RefundShares(discount_back)
        owed = amount - discount_back - fee_back
        from_in_transit = min(self.normal["merchant_in_transit"], owed)
        deltas = {"merchant_in_transit": from_in_transit, "merchant_available": owed - from_in_transit,
                  "fee_income": fee_back, "refunds_payable": -(amount - discount_back)}
        rid = f"re_{next(self.ids)}"
        if owed and self.would_overdraw(deltas):
            with pytest.raises(InsufficientBalance):
                with self.db.transaction() as conn:
                    self.booker.refund_requested(conn, self.facts(pid), rid, amount, fee_back, NOW, shares)
            return None
        with self.db.transaction() as conn:
            self.booker.refund_requested(conn, self.facts(pid), rid, amount, fee_back, NOW, shares)
        p["reserved"] += amount
        p["fee_back"] += fee_back
        p["discount_back"] += discount_back
        self.move(deltas)
        return (rid, pid, amount, fee_back, discount_back, deltas)

    @rule(refund=consumes(refunds))
    def refund_succeeds(self, refund) -> None:  # noqa: ANN001
        if refund is None:
            return
        rid, pid, amount, _, discount_back, _ = refund
        with self.db.transaction() as conn:
            self.booker.refund_succeeded(conn, self.facts(pid), rid, amount, NOW, discount_back)
        self.move({"refunds_payable": amount - discount_back, "channel_clearing": -(amount - discount_back)})

    @rule(refund=consumes(refunds))
    def refund_fails(self, refund) -> None:  # noqa: ANN001
        if refund is None:
            return
        rid, pid, amount, fee_back, discount_back, deltas = refund
        with self.db.transaction() as conn:
            self.booker.refund_failed(conn, self.facts(pid), rid, NOW, reserved=amount > discount_back)
        self.paid[pid]["reserved"] -= amount
        self.paid[pid]["fee_back"] -= fee_back
        self.paid[pid]["discount_back"] -= discount_back
        self.move({name: -d for name, d in deltas.items()})

    @rule(share=st.floats(0, 1.2), unfreeze=st.booleans())
    def hold(self, share: float, unfreeze: bool) -> None:
        source = "merchant_frozen" if unfreeze else "merchant_available"
        amount = max(1, int(self.normal[source] * share))
        deltas = {source: amount, ("merchant_available" if unfreeze else "merchant_frozen"): -amount}
        book = self.booker.unfreeze if unfreeze else self.booker.freeze
        if self.would_overdraw(deltas):
            with pytest.raises(InsufficientBalance):
                with self.db.transaction() as conn:
                    book(conn, M, CUR, amount, f"hold:{next(self.ids)}", NOW)
            return
        with self.db.transaction() as conn:
            book(conn, M, CUR, amount, f"hold:{next(self.ids)}", NOW)
        self.move(deltas)

    @precondition(lambda self: self.paid)
    @rule(data=st.data())
    def reverse_a_payment_entry(self, data) -> None:  # noqa: ANN001
        pid = data.draw(st.sampled_from(sorted(self.paid)))
        entry = self.paid[pid]["entry"]
        if entry is None:   # the channel kept all of it: nothing was booked
            return
        mirror = {line.account.code: -line.amount for line in entry.lines}
        if entry.id in self.reversed:
            with pytest.raises(AlreadyReversed):
                with self.db.transaction() as conn:
                    self.ledger.reverse(conn, entry, now=NOW)
            return
        if self.would_overdraw(mirror):
            with pytest.raises(InsufficientBalance):
                with self.db.transaction() as conn:
                    self.ledger.reverse(conn, entry, now=NOW)
            return
        with self.db.transaction() as conn:
            self.ledger.reverse(conn, entry, now=NOW)
        self.reversed.add(entry.id)
        self.move(mirror)

    # ---- after every step ----

    @invariant()
    def books_match_the_model_and_every_invariant(self) -> None:
        with self.db.transaction() as conn:
            assert check_ledger(conn) == []
            for name, ref in ACCOUNTS.items():
                assert self.ledger.balance(conn, ref) == self.normal[name], name


TEMPLATE: Path | str


def test_ledger_state_machine(template_db: Path) -> None:
    global TEMPLATE
    TEMPLATE = template_db
    LedgerModel.TestCase.settings = settings(max_examples=30, stateful_step_count=20, deadline=None,
                                             suppress_health_check=list(HealthCheck))
    LedgerModel.TestCase().runTest()


@pytest.mark.pg
def test_ledger_state_machine_on_postgresql(pg_database: str) -> None:
    """PostgreSQL posts through its own path (ledger.one_statement) and keeps platform accounts in
    several slots (one per connection): the same model proves it."""
    global TEMPLATE
    TEMPLATE = pg_database
    LedgerModel.TestCase.settings = settings(max_examples=10, stateful_step_count=20, deadline=None,
                                             suppress_health_check=list(HealthCheck))
    LedgerModel.TestCase().runTest()
