"""Bad input gets a 4xx with a type and a code, and nothing is written. Never a 500."""
from __future__ import annotations

import json

import httpx
import pytest

from gateway.client import signed_headers

GOOD = {"merchant_order_no": "o-1", "amount": 100}


def send(gw, merchant, raw: bytes, path: str = "/v1/payments") -> httpx.Response:  # noqa: ANN001
    url = httpx.URL(f"{gw.url}{path}")
    headers = signed_headers(merchant.merchant_id, merchant.secret, "POST", url, raw)
    return httpx.post(url, content=raw, headers=headers)


CASES = [
    (b"{not json", "invalid_json", None),
    (b"", "invalid_body", None),
    (b"[1, 2]", "invalid_body", None),
    (json.dumps({"amount": 100}).encode(), "parameter_missing", "merchant_order_no"),
    (json.dumps({**GOOD, "amount": "100"}).encode(), "parameter_invalid_type", "amount"),
    (json.dumps({**GOOD, "amount": 100.5}).encode(), "parameter_invalid_type", "amount"),
    (json.dumps({**GOOD, "amount": True}).encode(), "parameter_invalid_type", "amount"),
    (json.dumps({**GOOD, "amount": 0}).encode(), "amount_too_small", "amount"),
    (json.dumps({**GOOD, "amount": -5}).encode(), "amount_too_small", "amount"),
    (json.dumps({**GOOD, "amount": 10**12 + 1}).encode(), "amount_too_large", "amount"),
    (json.dumps({**GOOD, "currency": "XYZ"}).encode(), "currency_unknown", "currency"),
    (json.dumps({**GOOD, "currency": "cny"}).encode(), "currency_unknown", "currency"),
    (json.dumps({**GOOD, "surprise": 1}).encode(), "parameter_unknown", "surprise"),
    (json.dumps({**GOOD, "metadata": {"k": 1}}).encode(), "parameter_invalid_type", "metadata.k"),
    (json.dumps({**GOOD, "metadata": {f"k{i}": "v" for i in range(21)}}).encode(), "metadata_too_large", "metadata"),
    (json.dumps({**GOOD, "merchant_order_no": "has space"}).encode(), "parameter_invalid", "merchant_order_no"),
    (json.dumps({**GOOD, "notify_url": "ftp://x"}).encode(), "parameter_invalid", "notify_url"),
    (json.dumps({**GOOD, "channel": "nope"}).encode(), "unknown_channel", "channel"),
    (json.dumps({**GOOD, "channel": "sandbox-off"}).encode(), "channel_disabled", "channel"),
    (json.dumps({**GOOD, "channel": "sandbox", "method": "carrier-pigeon"}).encode(), "unsupported_method", "method"),
    (json.dumps({**GOOD, "method": "carrier-pigeon"}).encode(), "no_channel_available", "channel"),
]


@pytest.mark.parametrize("raw,expected_code,param", CASES, ids=[c[1] + ":" + c[0][:30].decode() for c in CASES])
def test_bad_payment_requests_are_refused_and_write_nothing(gw, merchant, raw, expected_code, param) -> None:
    response = send(gw, merchant, raw)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == expected_code
    assert error["param"] == param
    assert gw.count("payments") == 0 and gw.count("attempts") == 0 and gw.count("idempotency_keys") == 0


def test_a_body_over_64_kib_is_refused_with_413(gw, merchant) -> None:
    raw = json.dumps({**GOOD, "subject": "x" * (65 * 1024)}).encode()
    response = send(gw, merchant, raw)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert gw.count("payments") == 0


def test_a_chunked_body_over_64_kib_is_refused_while_reading(gw, merchant) -> None:
    def chunks():  # no Content-Length: the limit must hold while streaming
        for _ in range(70):
            yield b"x" * 1024

    response = httpx.post(f"{gw.url}/v1/payments", content=chunks(), headers={"Authorization": "x"})
    assert response.status_code == 413
    assert gw.count("payments") == 0


def test_bad_refund_requests_are_refused(gw, merchant) -> None:
    payment = send(gw, merchant, json.dumps(GOOD).encode()).json()
    for body, expected in ((b'{"amount": 1}', "parameter_missing"),
                           (b'{"merchant_refund_no": "r", "amount": -1}', "amount_too_small"),
                           (b'{"merchant_refund_no": "r", "amount": 1, "x": 1}', "parameter_unknown")):
        response = send(gw, merchant, body, f"/v1/payments/{payment['id']}/refunds")
        assert response.status_code == 400 and response.json()["error"]["code"] == expected
    response = send(gw, merchant, b'{"merchant_refund_no": "r", "amount": 1}', "/v1/payments/pay_missing/refunds")
    assert response.status_code == 404 and response.json()["error"]["code"] == "resource_missing"
    assert gw.count("refunds") == 0


def test_unknown_routes_and_methods_answer_in_the_error_format(gw) -> None:
    response = httpx.get(f"{gw.url}/v2/whatever")
    assert response.status_code == 404 and response.json()["error"]["code"] == "route_not_found"
    response = httpx.delete(f"{gw.url}/v1/payments")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"


def test_a_callback_for_an_unknown_channel_account_is_404(gw) -> None:
    response = httpx.post(f"{gw.url}/v1/notify/nope", content=b"{}")
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_channel"


def test_every_answer_carries_the_security_headers(gw, merchant, client) -> None:
    """JSON answers, errors, the console's sign-in page and the sandbox's hosted checkout: no sniffing,
    no referrer, no framing. The console keeps its own strict CSP."""
    payment = client.create_payment(merchant_order_no="headers-1", amount=100)
    url = httpx.URL(f"{gw.url}/v1/payments/{payment['id']}")
    answers = {
        "json": httpx.get(url, headers=signed_headers(merchant.merchant_id, merchant.secret, "GET", url, b"")),
        "error": httpx.get(f"{gw.url}/v1/payments/pay_nope"),
        "not found": httpx.get(f"{gw.url}/nowhere"),
        "sign-in": httpx.get(f"{gw.url}/console/login"),
        "checkout": httpx.get(payment["action"]["url"]),
    }
    assert [answers[k].status_code for k in answers] == [200, 401, 404, 200, 200]
    assert answers["sign-in"].headers["content-type"].startswith("text/html")
    assert answers["checkout"].headers["content-type"].startswith("text/html")
    for name, response in answers.items():
        assert response.headers["x-content-type-options"] == "nosniff", name
        assert response.headers["referrer-policy"] == "no-referrer", name
        assert response.headers["x-frame-options"] == "DENY", name
    assert "frame-ancestors 'none'" in answers["sign-in"].headers["content-security-policy"]
