"""Splits end where the money really goes (issue 19): where the channel pays the receiver itself, a
split leaves our books when the channel's statement of splits says it paid it (split.channel_paid:
receiver in-transit -> channel clearing), the channel settles that much less, and after the day is
reconciled and settled the receiver's in-transit holds only what is still owed and the books check."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import select, text

from gateway.books import full_check
from gateway.models import ReconItem
from gateway.reconciliation import review
from gateway.reconciliation.errors import ReconError
from gateway.reconciliation.settlement import SettlementRefused
from tests.conftest import free_port, make_settings, wait_for
from tests.support.split_days import balance, close_day, reconcile_splits, split_row, today
from tests.support.splits import FAST, paid, receiver


def split(client, payment: dict, number: str, rcv: dict, amount: int) -> dict:  # noqa: ANN001
    made = client.request("POST", f"/v1/payments/{payment['id']}/splits",
                          {"merchant_split_no": number, "receiver": rcv["id"], "amount": amount})
    assert made.status_code == 201, made.text
    assert wait_for(lambda: client.request("GET", f"/v1/splits/{made.json()['id']}").json()["status"] == "succeeded")
    return made.json()


def test_a_sandbox_day_of_splits_reconciled_and_settled_leaves_the_receiver_nothing_in_transit(
        gateway_factory, db_url, tmp_path) -> None:
    settings = make_settings(db_url, free_port()).with_changes(statement_dir=str(tmp_path / "st"), **FAST)
    gw = gateway_factory(settings)
    client = gw.client(gw.merchant())
    rcv = receiver(client)
    payment = paid(client, "o-1", 10000)                              # fee 60 at 60 bps
    made = split(client, payment, "s-1", rcv, 3000)
    assert balance(gw, "receiver_in_transit", rcv["id"]) == 3000     # owed, until the channel says it paid
    day = today(gw)
    waiting = close_day(settings, "sandbox", day, splits=False)       # the trade statement alone
    assert f"sandbox {day}: its statement of splits is not reconciled" in waiting["settled"]["skipped"]
    assert [b["kind"] for b in waiting["settled"]["booked"]] == ["merchant"]   # the merchant's day is its own
    closed = close_day(settings, "sandbox", day)
    assert closed["trades"]["status"] == "completed"
    assert closed["splits"]["status"] == "completed" and closed["splits"]["open"] == 0
    assert closed["splits"]["summary"] == {"split_amount": 3000, "return_amount": 0, "splits": 1, "returns": 0}
    assert balance(gw, "receiver_in_transit", rcv["id"]) == 0         # the channel paid the receiver itself
    row = split_row(gw, made["id"])
    assert (row.channel_paid_on, row.channel_paid_amount) == (day, 3000)
    [channel] = [b for b in closed["settled"]["booked"] if b["kind"] == "channel"]
    assert channel["amount"] == 10000 - 60 - 3000                     # the channel settled that much less
    assert balance(gw, "channel_clearing", "sandbox") == 0
    shown = client.request("GET", f"/v1/receivers/{rcv['id']}").json()["money"]
    assert shown == [{"currency": "CNY", "split": 3000, "returned": 0, "settled": 3000, "owed": 0, "in_transit": 0,
                      "available": 0, "paid_out": 0, "payouts": [],
                      "settlements": [{"by": "channel", "business_date": day.isoformat(), "channel": "sandbox",
                                       "amount": 3000}]}]
    # The same statement again is the same run, booking nothing twice.
    again = reconcile_splits(settings, "sandbox", day)
    assert again["run_id"] == closed["splits"]["run_id"]
    assert balance(gw, "receiver_in_transit", rcv["id"]) == 0
    with gw.gateway.db.transaction() as conn:
        assert full_check(conn) == []


def test_differences_on_a_statement_of_splits_are_classed_held_from_settlement_and_resolved_by_two_people(
        gateway_factory, db_url, tmp_path) -> None:
    """The sandbox's statement of a day, tampered with as a channel's can differ: one split paid for less
    than ours (amount_mismatch), one of ours not listed (pending_carryover: still the receiver's, not a
    blocker), one we never made (missing_local). Settlement waits for people; two different people
    adjust; then the channel day settles, clearing is empty and the unlisted split is still owed."""
    settings = make_settings(db_url, free_port()).with_changes(statement_dir=str(tmp_path / "st"), **FAST)
    gw = gateway_factory(settings)
    client = gw.client(gw.merchant())
    a, b = receiver(client, "acct-a"), receiver(client, "acct-b")
    payment = paid(client, "o-2", 10000)
    shorted, unlisted, fine = (split(client, payment, "s-a", a, 1000), split(client, payment, "s-b", b, 2000),
                               split(client, payment, "s-c", a, 500))
    order = gw.gateway.host.account("sandbox").channel._sim.orders[payment["out_trade_no"]]
    order.splits[shorted["out_split_no"]]["amount"] = 900
    order.splits[unlisted["out_split_no"]]["succeeded_at"] = "2000-01-01 00:00:00"
    order.splits["not-ours"] = {**order.splits[fine["out_split_no"]], "out_split_no": "not-ours",
                                "split_id": "sbs-not-ours", "amount": 400}
    day = today(gw)
    with pytest.raises(SettlementRefused, match="missing_local"):
        close_day(settings, "sandbox", day)
    run = reconcile_splits(settings, "sandbox", day)
    assert {k: v for k, v in run["counts"].items() if v} == {"matched": 1, "amount_mismatch": 1,
                                                             "missing_local": 1, "pending_carryover": 1}
    assert (run["open"], run["summary"]["split_amount"]) == (3, 900 + 500 + 400)
    assert balance(gw, "receiver_in_transit", a["id"]) == 0          # booked for ours: 1000 and 500
    assert balance(gw, "receiver_in_transit", b["id"]) == 2000       # not listed: still owed
    maker, checker = SimpleNamespace(id="op_1", name="maker"), SimpleNamespace(id="op_2", name="checker")
    with gw.gateway.db.transaction() as conn:
        found = conn.execute(select(ReconItem.__table__).where(ReconItem.__table__.c.run_id == run["run_id"])).all()
        by_class = {row._mapping["class"]: row for row in found}
        assert (by_class["amount_mismatch"].channel_effect, by_class["amount_mismatch"].local_effect) == (-900, -1000)
        assert by_class["missing_local"].reference == "not-ours"
        now = gw.gateway.clock.now()
        for cls in ("amount_mismatch", "missing_local"):
            proposal = review.propose(conn, by_class[cls].id, "adjust", maker, "as the channel paid", now)
            with pytest.raises(ReconError, match="another person"):
                review.approve(conn, by_class[cls].id, proposal["proposal"]["id"], maker, gw.gateway.booker, now)
            review.approve(conn, by_class[cls].id, proposal["proposal"]["id"], checker, gw.gateway.booker, now)
    closed = close_day(settings, "sandbox", day)
    [channel] = [x for x in closed["settled"]["booked"] if x["kind"] == "channel"]
    assert channel["amount"] == 10000 - 60 - (900 + 500 + 400)
    assert balance(gw, "channel_clearing", "sandbox") == 0
    assert balance(gw, "receiver_in_transit", b["id"]) == 2000
    with gw.gateway.db.transaction() as conn:
        assert full_check(conn) == []


def test_a_split_the_channel_paid_is_returned_through_channel_clearing(gateway_factory, db_url, tmp_path) -> None:
    """Once the statement of splits said the channel paid the receiver, the receiver's in-transit no
    longer holds it: a return for a refund (refund_policy "return") comes back from the channel
    (split.channel_returned: clearing -> merchant in-transit), never from the receiver's empty account."""
    settings = make_settings(db_url, free_port()).with_changes(statement_dir=str(tmp_path / "st"),
                                                               split_refund_policy="return", **FAST)
    gw = gateway_factory(settings)
    client = gw.client(gw.merchant())
    rcv = receiver(client)
    payment = paid(client, "o-3", 10000)
    split(client, payment, "s-1", rcv, 6000)
    close_day(settings, "sandbox", today(gw))
    clearing = balance(gw, "channel_clearing", "sandbox")
    assert balance(gw, "receiver_in_transit", rcv["id"]) == 0 and clearing == 0
    # 8000 back needs 8000 - 48 = 7952 of the merchant, who kept 10000 - 60 - 6000 = 3940: 4012 returns first.
    refund = client.create_refund(payment["id"], merchant_refund_no="r-1", amount=8000)
    assert wait_for(lambda: client.get_refund(refund["id"])["status"] == "succeeded")
    assert balance(gw, "receiver_in_transit", rcv["id"]) == 0
    assert balance(gw, "channel_clearing", "sandbox") == 4012 - 8000   # the channel nets both on its next day
    with gw.gateway.db.transaction() as conn:
        assert full_check(conn) == []
    with gw.gateway.db.transaction() as conn:
        kinds = conn.execute(text("SELECT e.event_type FROM ledger_entries e WHERE e.reference LIKE 'split_return:%'"))
        assert [k for (k,) in kinds] == ["split.channel_returned"]
