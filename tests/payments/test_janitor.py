"""The janitor: lost callbacks found by query, expired payments closed (or found paid), refunds
settled, and what no answer settles handed to people as exceptions."""
from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import update

from gateway.config import ChannelAccountConfig
from gateway.janitor import exceptions
from gateway.models import Payment
from gateway.schedule import QuerySchedule
from tests.conftest import SANDBOX_SECRET, checkout, free_port, make_settings, wait_for

FAST = dict(query_schedule_seconds=(0.2, 0.2, 0.2), janitor_poll_seconds=0.1, query_give_up_seconds=3600)


def test_a_lost_callback_is_found_without_anyone_asking(gateway_factory, db_url) -> None:
    gw = gateway_factory(make_settings(db_url, free_port(), callback_mode="drop").with_changes(**FAST))
    client = gw.client(gw.merchant())
    payment = client.create_payment(merchant_order_no="lost", amount=300)
    checkout(payment)
    assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")
    refund = client.create_refund(payment["id"], merchant_refund_no="r", amount=100)
    assert wait_for(lambda: client.get_refund(refund["id"])["status"] == "succeeded")
    types = [e["type"] for e in client.request("GET", "/v1/events").json()["data"]]
    assert types == ["refund.succeeded", "payment.succeeded"]


def _expire(gw, payment_id: str) -> None:  # noqa: ANN001
    payments = Payment.__table__
    with gw.gateway.db.transaction() as conn:
        conn.execute(update(payments).where(payments.c.id == payment_id)
                     .values(expires_at=gw.gateway.clock.now() - timedelta(seconds=1)))


def test_an_expired_payment_is_closed_at_the_channel(gateway_factory, db_url) -> None:
    gw = gateway_factory(make_settings(db_url, free_port()).with_changes(**FAST))
    client = gw.client(gw.merchant())
    payment = client.create_payment(merchant_order_no="late", amount=300, expires_in=600)
    _expire(gw, payment["id"])
    assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "closed")
    refused = httpx.post(payment["action"]["url"], data={"outcome": "success"}, headers={"Accept": "application/json"})
    assert refused.status_code == 409  # the channel will not take the money any more


def test_an_expired_payment_that_was_paid_becomes_a_late_success(gateway_factory, db_url) -> None:
    slow = dict(FAST, query_schedule_seconds=(3600,))  # only the expiry sweep can find it
    gw = gateway_factory(make_settings(db_url, free_port(), callback_mode="drop").with_changes(**slow))
    client = gw.client(gw.merchant())
    payment = client.create_payment(merchant_order_no="paid", amount=300, expires_in=600)
    checkout(payment)
    _expire(gw, payment["id"])
    assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")


def test_what_no_answer_settles_becomes_an_exception(gateway_factory, db_url) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/nowhere"
    settings = make_settings(db_url, free_port(), base_url=nowhere).with_changes(
        query_schedule_seconds=(0.1, 0.1), janitor_poll_seconds=0.1, query_give_up_seconds=0.3)
    gw = gateway_factory(settings)
    client = gw.client(gw.merchant())
    payment = client.create_payment(merchant_order_no="silent", amount=300)

    def listed() -> list:
        with gw.gateway.db.transaction() as conn:
            return exceptions(conn)

    found = wait_for(listed)
    assert [(e["kind"], e["id"]) for e in found] == [("payment", payment["id"])]
    assert client.get_payment(payment["id"])["status"] == "processing"  # never guessed to be failed


def test_each_channel_account_is_asked_on_its_own_schedule(gateway_factory, db_url) -> None:
    base = make_settings(db_url, free_port(), callback_mode="drop")
    quick, slow = (ChannelAccountConfig(i, "mock", True, {"secret": SANDBOX_SECRET, "callback_mode": "drop"},
                                        query_schedule_seconds=waits, queries_per_second=50.0)
                   for i, waits in (("quick", (0.2, 0.2)), ("slow", (3600.0,))))
    gw = gateway_factory(base.with_changes(channel_accounts=(quick, slow), janitor_poll_seconds=0.1,
                                           query_schedule_seconds=(3600,)))
    client = gw.client(gw.merchant())
    at_quick = client.create_payment(merchant_order_no="q", amount=300, channel="quick")
    at_slow = client.create_payment(merchant_order_no="s", amount=300, channel="slow")
    checkout(at_quick)
    checkout(at_slow)
    assert wait_for(lambda: client.get_payment(at_quick["id"])["status"] == "succeeded")
    assert client.get_payment(at_slow["id"])["status"] == "processing"   # its first question is an hour off


def test_a_schedule_counts_from_the_start_then_hourly_until_giving_up() -> None:
    from datetime import UTC, datetime

    schedule = QuerySchedule((10, 20), 4 * 3600, {"x": (1, 1, 1)})
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert schedule.first() == timedelta(seconds=10) and schedule.first("x") == timedelta(seconds=1)
    assert [schedule.next_at(start, n) - start for n in range(3)] == [timedelta(seconds=s) for s in (10, 30, 3630)]
    assert schedule.next_at(start, 2, "x") - start == timedelta(seconds=3)
    assert schedule.next_at(start, 6, "x") is None                      # 3 + 4 h is past giving up


def test_an_expired_payment_is_claimed_by_one_janitor_until_its_lease_passes(gateway_factory, db_url) -> None:
    """Every process runs a janitor: the close of an expired payment is leased as its queries are, so
    that one process asks the channel, and another only once that lease has passed (its process died)."""
    gw = gateway_factory(make_settings(db_url, free_port()).with_changes(janitor_poll_seconds=3600))
    client = gw.client(gw.merchant())
    payment = client.create_payment(merchant_order_no="leased", amount=300, expires_in=600)
    _expire(gw, payment["id"])
    janitor, db = gw.gateway.janitor, gw.gateway.db
    first = db.run_tx(janitor._expired)    # noqa: SLF001  one process's claim ...
    second = db.run_tx(janitor._expired)   # noqa: SLF001  ... and the next one's, meanwhile
    assert [p.id for p in first] == [payment["id"]] and second == []
    payments = Payment.__table__
    with db.transaction() as conn:         # the first process died mid-close: its lease runs out
        conn.execute(update(payments).where(payments.c.id == payment["id"])
                     .values(expiry_lease_until=gw.gateway.clock.now() - timedelta(seconds=1)))
    assert [p.id for p in db.run_tx(janitor._expired)] == [payment["id"]]   # noqa: SLF001
