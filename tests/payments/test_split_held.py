"""Receivers whose money paymux holds (issue 19): no channel pays them, so a split to one succeeds in the
books at once (owed: receiver_in_transit), is never looked for on the channel's statement of splits, and
on the receiver's own T+n working days becomes its available balance (settlement.receiver), once;
`GET /v1/receivers/{id}` shows what was split, settled (by whom, which day, settled when) and owed.
After the day is reconciled and settled, receiver_in_transit holds only what is still owed and the
books check. On SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

from gateway.books import full_check
from gateway.logs import get_logger
from gateway.plugins import discover_channel_types, make_plugin_manager
from gateway.reconciliation.settlement import Settler
from gateway.service import Gateway
from gateway.workdays import WorkingDays
from ledger.reads import total_balance
from tests.conftest import ServerThread, free_port, make_settings, wait_for
from tests.support.payouts import BANK, book
from tests.support.split_days import balance, close_day, today
from tests.support.splits import FAST, paid, receiver
from tests.support.unionpay import UnionPayMerchant, up_settings


def settle(settings: Any, on: date) -> dict:
    """`paymux settle --date ON` as an operator runs it."""
    async def run() -> dict:
        gw = Gateway.build(settings, get_logger(role="settle"))
        try:
            settler = Settler(settings, discover_channel_types(make_plugin_manager()), gw.booker)
            return await gw.db.tx(lambda conn: settler.settle(conn, on, gw.clock.now()).as_dict())
        finally:
            await gw.aclose()

    return asyncio.run(run())


def money(client: Any, rcv: dict) -> dict:
    [shown] = client.request("GET", f"/v1/receivers/{rcv['id']}").json()["money"]
    return shown


def test_a_receiver_paymux_holds_is_owed_at_once_then_settled_on_its_own_working_day(
        gateway_factory, db_url, tmp_path) -> None:
    settings = make_settings(db_url, free_port()).with_changes(statement_dir=str(tmp_path / "st"), **FAST)
    gw = gateway_factory(settings)
    creds = gw.merchant()
    client = gw.client(creds)
    held = receiver(client, "held-1", held_by="paymux", settlement_days=1)
    assert (held["held_by"], held["settlement_days"]) == ("paymux", 1)
    at_channel = receiver(client, "chan-1")
    payment = paid(client, "o-held", 10000)                                   # fee 60
    made = client.request("POST", f"/v1/payments/{payment['id']}/splits",
                          {"merchant_split_no": "h-1", "receiver": held["id"], "amount": 3000})
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "succeeded"                               # no channel to wait for
    channel_split = client.request("POST", f"/v1/payments/{payment['id']}/splits",
                                   {"merchant_split_no": "c-1", "receiver": at_channel["id"], "amount": 2000}).json()
    assert wait_for(lambda: client.request("GET", f"/v1/splits/{channel_split['id']}").json()["status"] == "succeeded")
    sim = gw.gateway.host.account("sandbox").channel._sim
    assert [s["amount"] for o in sim.orders.values() for s in o.splits.values()] == [2000]   # only the channel's
    assert balance(gw, "receiver_in_transit", held["id"]) == 3000
    # The day: trade statement and statement of splits reconciled; the held split is not looked for there.
    day = today(gw)
    closed = close_day(settings, "sandbox", day, settle=False)
    assert closed["splits"]["open"] == 0 and closed["splits"]["summary"]["split_amount"] == 2000
    assert balance(gw, "receiver_in_transit", at_channel["id"]) == 0          # the channel paid that one
    assert money(client, held)["owed"] == 3000 and money(client, held)["settled"] == 0
    # On the receiver's T+1 (a working day, by the calendar) it becomes its available balance, once.
    on = WorkingDays.from_settings(settings.extra).of("CNY").add(day, 1)
    report = settle(settings, on)
    [booked] = [b for b in report["booked"] if b["kind"] == "receiver"]
    assert (booked["owner"], booked["amount"], booked["business_date"]) == (f"{held['id']}@sandbox", 3000,
                                                                             day.isoformat())
    assert balance(gw, "receiver_in_transit", held["id"]) == 0
    assert balance(gw, "receiver_available", held["id"]) == 3000
    assert [b for b in settle(settings, on)["booked"] if b["kind"] == "receiver"] == []   # settled once
    shown = money(client, held)
    assert (shown["split"], shown["settled"], shown["in_transit"], shown["available"], shown["owed"]) == (
        3000, 3000, 0, 3000, 3000)
    assert shown["settlements"] == [{"by": "paymux", "business_date": day.isoformat(), "settle_date": on.isoformat(),
                                     "channel": "sandbox", "amount": 3000}]
    with gw.gateway.db.transaction() as conn:
        assert total_balance(conn, "receiver_in_transit") == 0                # only what is still owed: nothing
    with gw.gateway.db.transaction() as conn:
        assert full_check(conn) == []
    # Paid out like a merchant: from its own available balance, out of the account's position.
    book(gw, "position.topup", "position:sandbox:held-test", 50000)
    merchant_available = balance(gw, "merchant_available", creds.merchant_id)
    too_much = client.request("POST", f"/v1/receivers/{held['id']}/payouts",
                              {"merchant_payout_no": "rp-0", "amount": 3001, "bank_account": BANK})
    assert (too_much.status_code, too_much.json()["error"]["code"]) == (400, "insufficient_balance")
    made = client.request("POST", f"/v1/receivers/{held['id']}/payouts",
                          {"merchant_payout_no": "rp-1", "amount": 2000, "bank_account": BANK})
    assert made.status_code == 201, made.text
    assert made.json()["receiver"] == held["id"]
    assert wait_for(lambda: client.request("GET", f"/v1/payouts/{made.json()['id']}").json()["status"] == "succeeded")
    again = client.request("POST", f"/v1/receivers/{held['id']}/payouts",
                           {"merchant_payout_no": "rp-1", "amount": 2000, "bank_account": BANK})
    assert (again.status_code, again.json()["id"]) == (200, made.json()["id"])
    mixed = client.request("POST", "/v1/payouts", {"merchant_payout_no": "rp-1", "amount": 2000, "bank_account": BANK})
    assert (mixed.status_code, mixed.json()["error"]["code"]) == (409, "duplicate_payout")   # not the merchant's
    assert balance(gw, "receiver_available", held["id"]) == 1000
    assert balance(gw, "merchant_available", creds.merchant_id) == merchant_available   # not the merchant's money
    shown = money(client, held)
    assert (shown["paid_out"], shown["available"], shown["owed"]) == (2000, 1000, 1000)
    assert [(p["amount"], p["status"]) for p in shown["payouts"]] == [(2000, "succeeded")]
    assert shown["payouts"][0]["finished_at"] is not None
    with gw.gateway.db.transaction() as conn:
        assert full_check(conn) == []
    # The receiving bank sends it back (退票): it is the receiver's again, not the merchant's.
    with gw.gateway.db.transaction() as conn:
        assert gw.gateway.payouts.returns.returned(conn, made.json()["id"], "test")
    assert balance(gw, "receiver_available", held["id"]) == 3000
    assert balance(gw, "merchant_available", creds.merchant_id) == merchant_available
    other = client.request("POST", f"/v1/receivers/{at_channel['id']}/payouts",   # the channel pays that one
                           {"merchant_payout_no": "rp-2", "amount": 1, "bank_account": BANK})
    assert (other.status_code, other.json()["error"]["code"]) == (400, "insufficient_balance")
    with gw.gateway.db.transaction() as conn:
        assert full_check(conn) == []


def test_a_receiver_on_a_longer_cycle_waits_for_it(gateway_factory, db_url, tmp_path) -> None:
    settings = make_settings(db_url, free_port()).with_changes(statement_dir=str(tmp_path / "st"), **FAST)
    gw = gateway_factory(settings)
    client = gw.client(gw.merchant())
    slow = receiver(client, "held-3", held_by="paymux", settlement_days=3)
    payment = paid(client, "o-slow", 5000)
    client.request("POST", f"/v1/payments/{payment['id']}/splits",
                   {"merchant_split_no": "s-3", "receiver": slow["id"], "amount": 1000}).raise_for_status()
    day = today(gw)
    close_day(settings, "sandbox", day, settle=False)
    calendar = WorkingDays.from_settings(settings.extra).of("CNY")
    for n in (1, 2):                                                          # T+1, T+2: still in transit
        assert [b for b in settle(settings, calendar.add(day, n))["booked"] if b["kind"] == "receiver"] == []
    assert balance(gw, "receiver_in_transit", slow["id"]) == 1000
    [booked] = [b for b in settle(settings, calendar.add(day, 3))["booked"] if b["kind"] == "receiver"]
    assert booked["amount"] == 1000 and balance(gw, "receiver_available", slow["id"]) == 1000
    with gw.gateway.db.transaction() as conn:
        assert full_check(conn) == []


def test_bad_receiver_settings_are_refused_with_nothing_written(gateway_factory, db_url) -> None:
    gw = gateway_factory(make_settings(db_url, free_port()).with_changes(**FAST))
    client = gw.client(gw.merchant())
    for body in ({"held_by": "bank"}, {"held_by": "paymux", "settlement_days": 31},
                 {"held_by": "paymux", "settlement_days": -1}):
        answer = client.request("POST", "/v1/receivers", {"type": "merchant", "name": "x", "account": "y", **body})
        assert (answer.status_code, answer.json()["error"]["type"]) == (400, "invalid_request_error"), answer.text
    assert gw.count("receivers") == 0


def test_at_a_channel_that_cannot_split_every_receiver_is_held_by_paymux(gateway_factory, db_url) -> None:
    """UnionPay takes no split orders: a split there (even to a receiver registered as the channel's) is
    paymux's to hold and settle, with nothing sent to UnionPay."""
    merchant = UnionPayMerchant()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with ServerThread(merchant.sim.app, port):
        gw = gateway_factory(up_settings(db_url, url, merchant, query_schedule_seconds=(3600,)))
        client = gw.client(gw.merchant())
        rcv = receiver(client, "up-rcv")
        assert rcv["held_by"] == "channel"
        payment = client.create_payment(merchant_order_no="up-split", amount=10000, channel="up")
        merchant.pay(url, payment)
        assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")
        sent_before = len(merchant.sim.orders)
        made = client.request("POST", f"/v1/payments/{payment['id']}/splits",
                              {"merchant_split_no": "up-s1", "receiver": rcv["id"], "amount": 4000})
        assert made.status_code == 201, made.text
        assert made.json()["status"] == "succeeded" and len(merchant.sim.orders) == sent_before
        assert balance(gw, "receiver_in_transit", rcv["id"]) == 4000
        with gw.gateway.db.transaction() as conn:
            assert full_check(conn) == []


def test_a_receiver_settled_before_the_channel_pays_is_an_advance(gateway_factory, db_url, tmp_path) -> None:
    settings = make_settings(db_url, free_port()).with_changes(statement_dir=str(tmp_path / "st"), **FAST)
    gw = gateway_factory(settings)
    client = gw.client(gw.merchant())
    quick = receiver(client, "held-0", held_by="paymux", settlement_days=0)   # T+0 at the sandbox's T+1
    payment = paid(client, "o-quick", 5000)
    client.request("POST", f"/v1/payments/{payment['id']}/splits",
                   {"merchant_split_no": "q-1", "receiver": quick["id"], "amount": 1500}).raise_for_status()
    day = today(gw)
    close_day(settings, "sandbox", day, settle=False)
    report = settle(settings, day)
    owner = f"{quick['id']}@sandbox"
    assert sorted((b["kind"], b["amount"]) for b in report["booked"] if b["owner"] == owner) == [
        ("advance", 1500), ("receiver", 1500)]
    assert balance(gw, "receiver_available", quick["id"]) == 1500
    assert balance(gw, "advances", "") >= 1500                                # the platform's exposure
    with gw.gateway.db.transaction() as conn:
        assert full_check(conn) == []


def test_a_refund_takes_back_a_held_split_in_the_books_even_once_settled(gateway_factory, db_url, tmp_path) -> None:
    """Under refund_policy = "return", a split paymux holds comes back without asking any channel: from
    what the receiver is owed in transit, then from its available balance once settled."""
    settings = make_settings(db_url, free_port()).with_changes(statement_dir=str(tmp_path / "st"),
                                                               split_refund_policy="return", **FAST)
    gw = gateway_factory(settings)
    client = gw.client(gw.merchant())
    held = receiver(client, "held-r", held_by="paymux", settlement_days=0)
    payment = paid(client, "o-ret", 10000)                                    # fee 60: 9940 kept
    client.request("POST", f"/v1/payments/{payment['id']}/splits",
                   {"merchant_split_no": "r-1", "receiver": held["id"], "amount": 4000}).raise_for_status()
    day = today(gw)
    close_day(settings, "sandbox", day, settle=False)
    settle(settings, day)                                                     # T+0: available now
    assert balance(gw, "receiver_available", held["id"]) == 4000
    sim = gw.gateway.host.account("sandbox").channel._sim
    # 8000 refunded takes 8000 - 48 (the fee given back) from the merchant, which kept 5940: 2012 comes back.
    refund = client.create_refund(payment["id"], merchant_refund_no="rf-1", amount=8000)
    assert wait_for(lambda: client.get_refund(refund["id"])["status"] == "succeeded")
    assert balance(gw, "receiver_available", held["id"]) == 4000 - 2012
    assert all(not s["returns"] for o in sim.orders.values() for s in o.splits.values())   # the sandbox knows none
    shown = money(client, held)
    assert (shown["split"], shown["returned"], shown["owed"]) == (4000, 2012, 4000 - 2012)
    with gw.gateway.db.transaction() as conn:
        assert full_check(conn) == []
