"""A signed payment over real HTTP: create -> sandbox checkout -> signed callback -> final state."""
from __future__ import annotations

import httpx
import pytest

from gateway.client import PaymuxAPIError
from tests.conftest import checkout, wait_for


def new_payment(client, **fields):  # noqa: ANN001, ANN201
    body = {"merchant_order_no": "order-1", "amount": 1234, "subject": "Coffee", **fields}
    return client.create_payment(**body)


def test_paying_in_the_sandbox_makes_the_payment_succeed(client) -> None:
    payment = new_payment(client)
    assert payment["id"].startswith("pay_")
    assert payment["status"] == "processing"
    assert payment["action"]["type"] == "redirect"
    assert payment["channel"] == "sandbox"

    checkout(payment, "success")

    paid = client.get_payment(payment["id"])
    assert paid["status"] == "succeeded"
    assert paid["channel_transaction_id"].startswith("sbx")
    assert paid["paid_at"] is not None
    assert paid["action"] is None


def test_failing_in_the_sandbox_makes_the_payment_fail(client) -> None:
    payment = new_payment(client, method="qr")
    assert payment["action"]["type"] == "qr"
    checkout(payment, "fail")
    failed = client.get_payment(payment["id"])
    assert failed["status"] == "failed"
    assert failed["failure"]["code"]


def test_closing_an_unpaid_payment_closes_it_at_the_channel_too(client) -> None:
    payment = new_payment(client)
    closed = client.close_payment(payment["id"])
    assert closed["status"] == "closed"
    # The sandbox refuses to take money for a closed order.
    response = httpx.post(payment["action"]["url"], data={"outcome": "success"}, headers={"Accept": "application/json"})
    assert response.status_code == 409
    assert client.get_payment(payment["id"])["status"] == "closed"
    assert client.close_payment(payment["id"])["status"] == "closed"  # closing again is harmless


def test_a_paid_payment_cannot_be_closed(client) -> None:
    payment = new_payment(client)
    checkout(payment)
    with pytest.raises(PaymuxAPIError) as err:
        client.close_payment(payment["id"])
    assert err.value.status == 409 and err.value.error["code"] == "payment_not_closable"


def test_partial_refunds_complete_by_callback_and_never_exceed_the_paid_amount(client) -> None:
    payment = new_payment(client, amount=1000)
    checkout(payment)

    refund = client.create_refund(payment["id"], merchant_refund_no="r-1", amount=300, reason="broken cup")
    assert refund["id"].startswith("re_") and refund["status"] == "processing"
    assert wait_for(lambda: client.get_refund(refund["id"])["status"] == "succeeded")
    assert client.get_payment(payment["id"])["amount_refunded"] == 300

    with pytest.raises(PaymuxAPIError) as err:
        client.create_refund(payment["id"], merchant_refund_no="r-2", amount=701)
    assert err.value.error["code"] == "refund_exceeds_payment"

    rest = client.create_refund(payment["id"], merchant_refund_no="r-3", amount=700)
    assert wait_for(lambda: client.get_refund(rest["id"])["status"] == "succeeded")
    final = client.get_payment(payment["id"])
    assert final["amount_refunded"] == 1000 and final["amount_refund_pending"] == 0

    with pytest.raises(PaymuxAPIError) as err:
        client.create_refund(payment["id"], merchant_refund_no="r-1", amount=1)
    assert err.value.status in (400, 409)


def test_a_refund_number_is_unique_per_merchant(client) -> None:
    payment = new_payment(client, amount=1000)
    checkout(payment)
    client.create_refund(payment["id"], merchant_refund_no="r-1", amount=100)
    with pytest.raises(PaymuxAPIError) as err:
        client.create_refund(payment["id"], merchant_refund_no="r-1", amount=100)
    assert err.value.status == 409 and err.value.error["code"] == "duplicate_refund"
    current = client.get_payment(payment["id"])     # one read: the refund may settle between two
    assert current["amount_refund_pending"] + current["amount_refunded"] == 100


def test_an_unpaid_payment_cannot_be_refunded(client) -> None:
    payment = new_payment(client)
    with pytest.raises(PaymuxAPIError) as err:
        client.create_refund(payment["id"], merchant_refund_no="r-1", amount=1)
    assert err.value.status == 409 and err.value.error["code"] == "payment_not_refundable"


def test_a_payment_is_found_by_merchant_order_no_and_only_by_its_merchant(gw, client) -> None:
    payment = new_payment(client, merchant_order_no="A-42")
    found = client.request("GET", "/v1/payments", params={"merchant_order_no": "A-42"}).json()
    assert [p["id"] for p in found["data"]] == [payment["id"]]

    other = gw.client(gw.merchant("other shop"))
    assert other.request("GET", f"/v1/payments/{payment['id']}").status_code == 404
    assert other.request("GET", "/v1/payments", params={"merchant_order_no": "A-42"}).status_code == 404
    assert other.request("POST", f"/v1/payments/{payment['id']}/close").status_code == 404


def test_sync_asks_the_channel_when_the_callback_was_lost(gateway_factory) -> None:
    gw = gateway_factory(callback_mode="drop")
    client = gw.client(gw.merchant())
    payment = new_payment(client)
    checkout(payment)
    assert client.get_payment(payment["id"])["status"] == "processing"  # no callback arrived
    assert client.get_payment(payment["id"], sync=True)["status"] == "succeeded"


def test_a_delayed_callback_still_lands(gateway_factory) -> None:
    gw = gateway_factory(callback_mode="delay", callback_delay_ms=300)
    client = gw.client(gw.merchant())
    payment = new_payment(client)
    checkout(payment)
    assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")


def test_a_channel_that_refuses_creation_fails_the_payment(gateway_factory) -> None:
    gw = gateway_factory(fail_create=1.0)
    client = gw.client(gw.merchant())
    payment = new_payment(client)
    assert payment["status"] == "failed"
    assert payment["failure"]["code"] == "sandbox_declined"
