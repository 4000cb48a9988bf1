"""Idempotency-Key and merchant_order_no rules, alone and under concurrent requests."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import update

from gateway.models import IdempotencyKey

BODY = {"merchant_order_no": "o-1", "amount": 500, "subject": "Tea"}


def test_the_same_key_and_body_replay_the_first_answer(gw, client) -> None:
    first = client.request("POST", "/v1/payments", BODY, idempotency_key="key-1")
    again = client.request("POST", "/v1/payments", BODY, idempotency_key="key-1")
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    assert gw.count("payments") == 1


def test_the_same_key_with_another_body_is_an_idempotency_error(gw, client) -> None:
    assert client.request("POST", "/v1/payments", BODY, idempotency_key="key-1").status_code == 201
    other = client.request("POST", "/v1/payments", {**BODY, "amount": 501}, idempotency_key="key-1")
    assert other.status_code == 409
    assert other.json()["error"]["type"] == "idempotency_error"
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert gw.count("payments") == 1


def test_keys_belong_to_one_merchant(gw, client) -> None:
    other = gw.client(gw.merchant("other"))
    assert client.request("POST", "/v1/payments", BODY, idempotency_key="shared").status_code == 201
    assert other.request("POST", "/v1/payments", BODY, idempotency_key="shared").status_code == 201
    assert gw.count("payments") == 2


def test_an_overlong_key_is_refused(gw, client) -> None:
    response = client.request("POST", "/v1/payments", BODY, idempotency_key="k" * 256)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_idempotency_key"
    assert gw.count("payments") == 0


def test_a_repeated_order_number_without_a_key_is_a_duplicate_order(gw, client) -> None:
    assert client.request("POST", "/v1/payments", BODY).status_code == 201
    again = client.request("POST", "/v1/payments", BODY)
    assert again.status_code == 409 and again.json()["error"]["code"] == "duplicate_order"
    assert gw.count("payments") == 1 and gw.count("attempts") == 1


def test_a_refund_replays_under_its_key(gw, client) -> None:
    from tests.conftest import checkout

    payment = client.create_payment(**BODY)
    checkout(payment)
    body = {"merchant_refund_no": "r-1", "amount": 100}
    first = client.request("POST", f"/v1/payments/{payment['id']}/refunds", body, idempotency_key="rk")
    again = client.request("POST", f"/v1/payments/{payment['id']}/refunds", body, idempotency_key="rk")
    assert first.status_code == again.status_code == 201 and first.content == again.content
    assert gw.count("refunds") == 1


def test_concurrent_requests_with_one_key_create_one_payment(gw, client) -> None:
    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda _: client.request("POST", "/v1/payments", BODY, idempotency_key="race"),
                                  range(12)))
    created = [r for r in responses if r.status_code == 201]
    assert created, [r.text for r in responses]
    assert len({r.json()["id"] for r in created}) == 1
    for r in responses:  # a loser either replays the winner or is told to retry: never a second payment
        assert r.status_code == 201 or r.json()["error"]["code"] == "idempotency_in_progress"
    assert gw.count("payments") == 1


def test_concurrent_requests_with_one_order_number_create_one_payment(gw, client) -> None:
    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda _: client.request("POST", "/v1/payments", BODY), range(12)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1, [r.text for r in responses]
    assert all(r.json()["error"]["code"] == "duplicate_order" for r in responses if r.status_code != 201)
    assert gw.count("payments") == 1


def test_a_key_left_in_progress_by_a_crash_is_answered_from_its_payment(gw, client) -> None:
    first = client.request("POST", "/v1/payments", BODY, idempotency_key="crash")
    keys = IdempotencyKey.__table__
    # Make the key look like the process died before recording the answer, a while ago.
    with gw.gateway.db.transaction() as conn:
        conn.execute(update(keys).where(keys.c.key == "crash").values(
            status="in_progress", response_status=None, response_body=None,
            created_at=gw.gateway.clock.now() - timedelta(minutes=5)))
    again = client.request("POST", "/v1/payments", BODY, idempotency_key="crash")
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert gw.count("payments") == 1
