"""A new attempt on one order retires the one in flight first: no order paid twice by two live links."""
from __future__ import annotations

import httpx

from tests.conftest import checkout, free_port, make_settings


def test_switching_method_closes_the_old_attempt_at_the_channel(gw, client) -> None:
    payment = client.create_payment(merchant_order_no="switch", amount=500, method="qr")
    switched = client.request("POST", f"/v1/payments/{payment['id']}/attempts", {"method": "redirect"}).json()
    assert switched["status"] == "processing" and switched["method"] == "redirect"
    assert switched["out_trade_no"] != payment["out_trade_no"] and switched["action"]["type"] == "redirect"
    old = httpx.post(payment["action"]["code"], data={"outcome": "success"}, headers={"Accept": "application/json"})
    assert old.status_code == 409  # the old link can no longer take money
    checkout(switched)
    assert client.get_payment(payment["id"])["status"] == "succeeded"
    assert gw.count("ledger_entries") == 1


def test_if_the_old_attempt_was_paid_meanwhile_the_payment_is_simply_paid(gateway_factory, db_url) -> None:
    gw = gateway_factory(make_settings(db_url, free_port(), callback_mode="drop"))
    client = gw.client(gw.merchant())
    payment = client.create_payment(merchant_order_no="raced", amount=500)
    checkout(payment)  # paid at the channel; we have not heard
    answer = client.request("POST", f"/v1/payments/{payment['id']}/attempts", {"method": "qr"}).json()
    assert answer["status"] == "succeeded" and answer["out_trade_no"] == payment["out_trade_no"]
    assert gw.count("attempts") == 1


def test_an_attempt_that_cannot_be_closed_blocks_a_new_one(gateway_factory, db_url) -> None:
    gw = gateway_factory(make_settings(db_url, free_port(), base_url=f"http://127.0.0.1:{free_port()}/x"))
    client = gw.client(gw.merchant())
    payment = client.create_payment(merchant_order_no="stuck", amount=500)
    response = client.request("POST", f"/v1/payments/{payment['id']}/attempts", {"method": "qr"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "payment_in_progress"
    assert gw.count("attempts") == 1


def test_a_finished_payment_takes_no_new_attempt(gw, client) -> None:
    payment = client.create_payment(merchant_order_no="done", amount=500)
    checkout(payment)
    response = client.request("POST", f"/v1/payments/{payment['id']}/attempts", {"method": "qr"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "payment_not_processing"
