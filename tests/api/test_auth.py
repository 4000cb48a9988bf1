"""Every /v1 request is signed by its merchant; anything else is 401 with a code saying why."""
from __future__ import annotations

import time

import httpx
from sqlalchemy import text

from gateway.auth import authorization_header

BODY = b'{"merchant_order_no":"o-1","amount":100}'


def post(gw, headers: dict, body: bytes = BODY) -> httpx.Response:  # noqa: ANN001
    return httpx.post(f"{gw.url}/v1/payments", content=body, headers={"Content-Type": "application/json", **headers})


def signed(merchant, body: bytes = BODY, timestamp: int | None = None, nonce: str | None = None,  # noqa: ANN001
           secret: str | None = None, path: str = "/v1/payments") -> dict:
    header = authorization_header(merchant.merchant_id, secret or merchant.secret, "POST", path, body,
                                  timestamp or int(time.time()), nonce)
    return {"Authorization": header}


def code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


def test_an_unsigned_request_is_refused(gw) -> None:
    response = post(gw, {})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert code(response) == "missing_authorization"


def test_a_request_signed_with_the_wrong_secret_is_refused(gw, merchant) -> None:
    response = post(gw, signed(merchant, secret="sk_not_the_secret"))
    assert response.status_code == 401 and code(response) == "invalid_signature"


def test_a_body_changed_after_signing_is_refused(gw, merchant) -> None:
    headers = signed(merchant, BODY)
    response = post(gw, headers, BODY.replace(b"100", b"999"))
    assert response.status_code == 401 and code(response) == "invalid_signature"


def test_a_signature_for_another_path_is_refused(gw, merchant) -> None:
    response = post(gw, signed(merchant, path="/v1/refunds"))
    assert response.status_code == 401 and code(response) == "invalid_signature"


def test_a_stale_timestamp_is_refused(gw, merchant) -> None:
    response = post(gw, signed(merchant, timestamp=int(time.time()) - 301))
    assert response.status_code == 401 and code(response) == "timestamp_out_of_window"
    response = post(gw, signed(merchant, timestamp=int(time.time()) + 400))
    assert response.status_code == 401 and code(response) == "timestamp_out_of_window"


def test_a_replayed_request_is_refused_and_writes_nothing(gw, merchant) -> None:
    headers = signed(merchant, nonce="nonce-replay-0001")
    assert post(gw, headers).status_code == 201
    again = post(gw, headers)
    assert again.status_code == 401 and code(again) == "replayed_nonce"
    assert gw.count("payments") == 1


def test_an_unknown_merchant_is_refused(gw, merchant) -> None:
    header = authorization_header("mch_nobody", merchant.secret, "POST", "/v1/payments", BODY, int(time.time()))
    response = post(gw, {"Authorization": header})
    assert response.status_code == 401 and code(response) == "unknown_merchant"


def test_a_garbled_authorization_header_is_refused(gw) -> None:
    for header in ("Bearer abc", "PAYMUX-HMAC-SHA256 merchant_id=x", 'PAYMUX-HMAC-SHA256 merchant_id="a",nonce="b"'):
        response = post(gw, {"Authorization": header})
        assert response.status_code == 401, header
        assert code(response) in ("invalid_authorization", "missing_authorization")


def test_a_get_is_signed_over_its_query_string(gw, merchant) -> None:
    path = "/v1/payments?merchant_order_no=o-1"
    header = authorization_header(merchant.merchant_id, merchant.secret, "GET", "/v1/payments?merchant_order_no=o-2",
                                  b"", int(time.time()))
    response = httpx.get(f"{gw.url}{path}", headers={"Authorization": header})
    assert response.status_code == 401 and code(response) == "invalid_signature"


def test_merchant_secrets_are_encrypted_at_rest(gw, merchant) -> None:
    with gw.gateway.db.transaction() as conn:
        stored = conn.execute(text("SELECT secret_sealed FROM merchants WHERE id = :id"),
                              {"id": merchant.merchant_id}).scalar_one()
    assert merchant.secret not in stored
    assert gw.gateway.box.open(stored, merchant.merchant_id) == merchant.secret


def test_a_request_that_failed_still_cannot_be_replayed(gw, merchant) -> None:
    assert post(gw, signed(merchant)).status_code == 201
    headers = signed(merchant, nonce="nonce-dup-000001")
    first = post(gw, headers)  # same order number: refused, and its transaction rolled back
    assert first.status_code == 409 and code(first) == "duplicate_order"
    again = post(gw, headers)
    assert again.status_code == 401 and code(again) == "replayed_nonce"


def test_an_idempotent_replay_cannot_itself_be_replayed(gw, merchant) -> None:
    assert post(gw, {**signed(merchant), "Idempotency-Key": "k1"}).status_code == 201
    headers = {**signed(merchant, nonce="nonce-idem-00001"), "Idempotency-Key": "k1"}
    assert post(gw, headers).status_code == 201  # the replay of the first answer
    again = post(gw, headers)
    assert again.status_code == 401 and code(again) == "replayed_nonce"


def test_authentication_is_judged_before_the_body(gw, merchant) -> None:
    for body in (b"{not json", b'{"amount": -1}', b'{"merchant_order_no":"x","amount":1,"channel":"nope"}'):
        response = post(gw, signed(merchant, body=b"something else"), body)
        assert response.status_code == 401 and code(response) == "invalid_signature", body
    assert gw.count("request_nonces") == 0


def test_a_get_for_a_missing_payment_with_a_bad_signature_is_401_not_404(gw, merchant) -> None:
    header = authorization_header(merchant.merchant_id, "wrong", "GET", "/v1/payments/pay_x", b"", int(time.time()))
    response = httpx.get(f"{gw.url}/v1/payments/pay_x", headers={"Authorization": header})
    assert response.status_code == 401


def test_an_unauthenticated_create_reaches_no_router_risk_or_channel(gw, merchant) -> None:
    """The signature is checked before anything else: a forged or unknown merchant's payment is
    never routed, never signed at a channel, never counted in a channel's health or metrics."""
    unknown = type(merchant)("mch_nobody0000000000000000", "sk_whatever")
    for headers in (signed(merchant, secret="sk_not_the_secret"), signed(unknown)):
        response = post(gw, headers)
        assert response.status_code == 401, response.text
    calls = [s for metric in gw.gateway.metrics.channel_calls.collect() for s in metric.samples
             if s.name.endswith("_total")]
    assert calls == []
    assert "sandbox" not in gw.gateway.health.circuits or not gw.gateway.health.circuits["sandbox"].calls
    # and a genuine request still goes through, counted once
    response = post(gw, signed(merchant))
    assert response.status_code == 201, response.text
    assert sum(s.value for metric in gw.gateway.metrics.channel_calls.collect() for s in metric.samples
               if s.name.endswith("_total")) == 1
