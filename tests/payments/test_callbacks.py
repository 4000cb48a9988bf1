"""Channel callbacks: only a genuine one changes anything, and it changes it once."""
from __future__ import annotations

import json
import time

import httpx

from plugins.mock import wire
from tests.conftest import SANDBOX_SECRET, checkout, wait_for
from tests.support.sandbox import callback, paid_event


def test_a_forged_callback_changes_nothing_and_is_refused(gw, client) -> None:
    payment = client.create_payment(merchant_order_no="o-1", amount=100)
    response = callback(gw, paid_event(payment), secret="not-the-sandbox-secret")
    assert response.status_code == 400
    assert response.json()["code"] == "FAIL"
    assert client.get_payment(payment["id"])["status"] == "processing"
    with gw.gateway.db.transaction() as conn:
        rows = conn.execute(wire_table().select()).all()
    assert [(r.verified, r.outcome) for r in rows] == [(False, "rejected")]


def wire_table():  # noqa: ANN201
    from gateway.models import ChannelCallback

    return ChannelCallback.__table__


def test_a_callback_with_a_stale_timestamp_is_refused(gw, client) -> None:
    payment = client.create_payment(merchant_order_no="o-1", amount=100)
    response = callback(gw, paid_event(payment), timestamp=int(time.time()) - 3600)
    assert response.status_code == 400
    assert client.get_payment(payment["id"])["status"] == "processing"


def test_a_callback_whose_body_was_altered_is_refused(gw, client) -> None:
    payment = client.create_payment(merchant_order_no="o-1", amount=100)
    body = wire.encode(paid_event(payment))
    headers = wire.signed_headers(SANDBOX_SECRET, body, int(time.time()))
    # Same JSON, re-encoded with other spacing: the signature is over the raw bytes.
    altered = json.dumps(json.loads(body), indent=1).encode()
    response = httpx.post(f"{gw.url}/v1/notify/sandbox", content=altered, headers=headers)
    assert response.status_code == 400
    assert client.get_payment(payment["id"])["status"] == "processing"


def test_a_genuine_callback_with_the_wrong_amount_is_not_applied(gw, client) -> None:
    payment = client.create_payment(merchant_order_no="o-1", amount=100)
    response = callback(gw, paid_event(payment, amount=1))
    assert response.status_code == 400
    assert client.get_payment(payment["id"])["status"] == "processing"


def test_a_genuine_callback_for_an_unknown_order_is_acknowledged_and_changes_nothing(gw, client) -> None:
    response = callback(gw, paid_event({"out_trade_no": "nope", "amount": 1, "currency": "CNY"}))
    assert response.status_code == 200
    assert gw.count("payments") == 0


def test_duplicate_callbacks_change_state_once(gateway_factory) -> None:
    gw = gateway_factory(callback_mode="duplicate")
    client = gw.client(gw.merchant())
    payment = client.create_payment(merchant_order_no="o-1", amount=100)
    checkout(payment)
    assert client.get_payment(payment["id"])["status"] == "succeeded"
    with gw.gateway.db.transaction() as conn:
        outcomes = sorted(r.outcome for r in conn.execute(wire_table().select()).all())
    assert outcomes == ["applied", "duplicate"]


def test_a_late_success_after_a_fail_callback_is_recorded_as_paid(gw, client) -> None:
    payment = client.create_payment(merchant_order_no="o-1", amount=100)
    assert callback(gw, paid_event(payment, trade_status="FAIL")).status_code == 200
    assert client.get_payment(payment["id"])["status"] == "failed"
    # The channel is authoritative about money taken: a verified success wins.
    assert callback(gw, paid_event(payment)).status_code == 200
    assert client.get_payment(payment["id"])["status"] == "succeeded"


def test_a_channel_timeout_is_unknown_never_failed(gateway_factory, db_url) -> None:
    from tests.conftest import free_port, make_settings

    # The sandbox API is pointed at a port where nothing listens: every query and close fails to connect.
    gw = gateway_factory(make_settings(db_url, free_port(), base_url=f"http://127.0.0.1:{free_port()}/x"))
    client = gw.client(gw.merchant())
    payment = client.create_payment(merchant_order_no="o-1", amount=100)
    assert client.get_payment(payment["id"], sync=True)["status"] == "processing"
    response = client.request("POST", f"/v1/payments/{payment['id']}/close")
    assert response.status_code == 502 and response.json()["error"]["code"] == "close_unconfirmed"
    assert client.get_payment(payment["id"])["status"] == "processing"
    with gw.gateway.db.transaction() as conn:
        from gateway.models import Attempt

        attempt = conn.execute(Attempt.__table__.select()).first()
    assert attempt.status == "unknown"


def test_refund_callbacks_complete_the_refund_once(gateway_factory) -> None:
    gw = gateway_factory(callback_mode="duplicate")
    client = gw.client(gw.merchant())
    payment = client.create_payment(merchant_order_no="o-1", amount=1000)
    checkout(payment)
    refund = client.create_refund(payment["id"], merchant_refund_no="r-1", amount=400)
    assert wait_for(lambda: client.get_refund(refund["id"])["status"] == "succeeded")
    time.sleep(0.3)  # let the duplicate land
    assert client.get_payment(payment["id"])["amount_refunded"] == 400
