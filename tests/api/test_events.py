"""Merchant notifications: written with the state change, delivered signed until a 2xx, retried on a
schedule that survives restarts, dead after it, redeliverable, and always pollable."""
from __future__ import annotations

import json
import time
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.client import EventSignatureError, sign_event, verify_event
from tests.conftest import ServerThread, checkout, free_port, make_settings, wait_for

FAST = dict(notify_schedule_seconds=(0.2, 0.2, 0.2), notify_poll_seconds=0.1)


class Receiver:
    """A merchant's endpoint that fails its first `fail_first` answers."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.received: list[tuple[bytes, str]] = []
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])
        self.server = ServerThread(self.app, free_port())

    async def hook(self, request: Request) -> Response:
        self.received.append((await request.body(), request.headers.get("paymux-signature", "")))
        if len(self.received) <= self.fail_first:
            return Response(b"not now", 503)
        return Response(b"ok")

    @property
    def url(self) -> str:
        return f"{self.server.url}/hook"

    def events(self, secret: str) -> list[dict[str, Any]]:
        return [verify_event(body, header, secret) for body, header in self.received]


@pytest.fixture
def receiver():  # noqa: ANN201
    r = Receiver()
    r.server.__enter__()
    yield r
    r.server.__exit__(None, None, None)


@pytest.fixture
def fast_gw(gateway_factory, db_url):  # noqa: ANN001, ANN201
    return gateway_factory(make_settings(db_url, free_port()).with_changes(**FAST))


def test_a_payment_event_is_delivered_signed_with_a_stable_id(fast_gw, receiver) -> None:
    creds = fast_gw.merchant()
    client = fast_gw.client(creds)
    payment = client.create_payment(merchant_order_no="e1", amount=100, notify_url=receiver.url)
    checkout(payment)
    wait_for(lambda: receiver.received)
    [event] = receiver.events(creds.secret)
    assert event["type"] == "payment.succeeded" and event["id"].startswith("evt_")
    assert event["data"]["object"]["id"] == payment["id"] and event["data"]["object"]["status"] == "succeeded"
    # The answer was received before the notifier records it: wait for the record.
    assert wait_for(lambda: [(e["id"], e["delivery"]["status"]) for e in client.request("GET", "/v1/events")
                             .json()["data"]] == [(event["id"], "delivered")])


def test_failed_answers_are_retried_and_the_id_stays_the_same(fast_gw, receiver) -> None:
    receiver.fail_first = 2
    creds = fast_gw.merchant()
    client = fast_gw.client(creds)
    payment = client.create_payment(merchant_order_no="e2", amount=1000, notify_url=receiver.url)
    checkout(payment)
    wait_for(lambda: len(receiver.received) >= 3)
    ids = {event["id"] for event in receiver.events(creds.secret)}
    assert len(ids) == 1  # at least once: the merchant deduplicates on the id
    wait_for(lambda: client.request("GET", "/v1/events").json()["data"][0]["delivery"]["status"] == "delivered")


def test_refund_events_follow_their_refund(fast_gw, receiver) -> None:
    creds = fast_gw.merchant()
    client = fast_gw.client(creds)
    payment = client.create_payment(merchant_order_no="e3", amount=1000, notify_url=receiver.url)
    checkout(payment)
    client.create_refund(payment["id"], merchant_refund_no="r", amount=300)
    wait_for(lambda: len(receiver.received) >= 2)
    types = [event["type"] for event in receiver.events(creds.secret)]
    assert types == ["payment.succeeded", "refund.succeeded"]


def test_an_event_is_dead_after_its_schedule_and_can_be_redelivered(fast_gw, receiver) -> None:
    from gateway.notifier import redeliver

    receiver.fail_first = 10**6
    creds = fast_gw.merchant()
    client = fast_gw.client(creds)
    payment = client.create_payment(merchant_order_no="e4", amount=100, notify_url=receiver.url)
    checkout(payment, "fail")
    wait_for(lambda: client.request("GET", "/v1/events").json()["data"][0]["delivery"]["status"] == "dead")
    assert len(receiver.received) == 4  # the first try and three retries
    receiver.fail_first = 0
    event_id = client.request("GET", "/v1/events").json()["data"][0]["id"]
    with fast_gw.gateway.db.transaction() as conn:
        assert redeliver(conn, event_id, fast_gw.gateway.clock.now())
    wait_for(lambda: client.request("GET", "/v1/events").json()["data"][0]["delivery"]["status"] == "delivered")
    assert receiver.events(creds.secret)[-1]["type"] == "payment.failed"


def test_events_without_an_endpoint_are_kept_for_polling_and_pages_are_the_merchants_own(fast_gw) -> None:
    creds = fast_gw.merchant()
    client = fast_gw.client(creds)
    for i in range(3):
        checkout(client.create_payment(merchant_order_no=f"p{i}", amount=100 + i))
    other = fast_gw.client(fast_gw.merchant("other"))
    checkout(other.create_payment(merchant_order_no="theirs", amount=5))
    first = client.request("GET", "/v1/events", params={"limit": "2"}).json()
    rest = client.request("GET", "/v1/events", params={"cursor": str(first["next_cursor"])}).json()
    events = first["data"] + rest["data"]
    assert len(events) == 3 and not rest["has_more"]
    assert {e["delivery"]["status"] for e in events} == {"no_endpoint"}
    assert [e["data"]["object"]["amount"] for e in events] == [102, 101, 100]


def test_a_pending_delivery_survives_a_restart(db_url, receiver) -> None:
    from gateway.merchants import create_merchant
    from tests.conftest import start_gateway

    receiver.fail_first = 1
    slow = dict(notify_schedule_seconds=(1.5,), notify_poll_seconds=0.1)
    app, server = start_gateway(make_settings(db_url, free_port()).with_changes(**slow))
    with server:
        gw = app.state.gateway
        with gw.db.transaction() as conn:
            creds = create_merchant(conn, gw.box, gw.clock, "restart")
        from gateway.client import Client

        client = Client(server.url, creds.merchant_id, creds.secret)
        checkout(client.create_payment(merchant_order_no="restart", amount=100, notify_url=receiver.url))
        wait_for(lambda: receiver.received)
    # The gateway is gone with its retry still due; a new one on the same database delivers it.
    app, server = start_gateway(make_settings(db_url, free_port()).with_changes(**slow))
    with server:
        wait_for(lambda: len(receiver.received) >= 2)
    assert len({e["id"] for e in receiver.events(creds.secret)}) == 1


def test_verify_event_refuses_tampering_and_old_signatures() -> None:
    body = json.dumps({"id": "evt_1", "type": "payment.succeeded"}).encode()
    now = int(time.time())
    header = sign_event("sk_test", body, now)
    assert verify_event(body, header, "sk_test")["id"] == "evt_1"
    for bad_body, bad_header, secret in ((body + b" ", header, "sk_test"), (body, header, "sk_other"),
                                         (body, sign_event("sk_test", body, now - 3600), "sk_test"),
                                         (body, "v1=abc", "sk_test")):
        with pytest.raises(EventSignatureError):
            verify_event(bad_body, bad_header, secret)


def test_an_event_holding_a_stored_lone_surrogate_is_still_sent_as_json() -> None:
    """Text stored before input refused lone surrogates must not stop an event's delivery."""
    import json
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from gateway.notifier import event_body

    row = SimpleNamespace(id="evt_1", type="payment.succeeded", created_at=datetime(2026, 11, 30, tzinfo=UTC),
                          payload={"metadata": {"note": "a\ud800b", "name": "茶"}})
    body = event_body(row)
    assert json.loads(body)["data"]["object"]["metadata"] == {"note": "a\ud800b", "name": "茶"}
