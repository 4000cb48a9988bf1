"""Whatever a signed client sends, the answer is a 2xx or a 4xx in the error shape: never a 500, on
SQLite or PostgreSQL."""
from __future__ import annotations

import json

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.client import signed_headers

# Text a database cannot store or a page cannot print, besides whatever Hypothesis draws.
odd_text = st.sampled_from(["\x00", "a\x00b", "\ud800", "a\udfffb", "\ud83d\ude00", "9" * 25])
texts = st.text(max_size=30) | odd_text
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | texts
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) |
                           st.dictionaries(texts, inner, max_size=4), max_leaves=12)
fields = st.sampled_from(["merchant_order_no", "amount", "currency", "subject", "channel", "method", "notify_url",
                          "expires_in", "metadata", "merchant_refund_no", "reason", "extra", "splits", "splittable",
                          "merchant_payout_no", "bank_account", "remark", "merchant_split_no", "receiver", "type",
                          "name", "account", "bindings", "description"])
payment_like = st.dictionaries(fields, json_values, max_size=8)
# A valid payment with one field drawn: deep enough to reach the database with it.
one_field_off = st.builds(lambda n, field, value: {"merchant_order_no": f"fz-{n}", "amount": 100, field: value},
                          st.integers(0, 10**9), fields, texts | json_values)
raw_bodies = st.binary(max_size=200) | st.builds(lambda d: json.dumps(d).encode(), payment_like | one_field_off) | \
    st.integers(1, 60_000).map(lambda n: b"[" * n + b"]" * n)

# On both databases: PostgreSQL refuses what SQLite stores (NUL), and 32-bit columns what SQLite holds.


def _post(gw, merchant, path: str, raw: bytes) -> httpx.Response:  # noqa: ANN001
    url = httpx.URL(f"{gw.url}{path}")
    return httpx.post(url, content=raw, headers=signed_headers(merchant.merchant_id, merchant.secret, "POST", url, raw))


def _check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["type"] and error["code"] and error["message"]


def test_create_payment_never_answers_500(gw, merchant) -> None:
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(raw=raw_bodies)
    def run(raw: bytes) -> None:
        _check(_post(gw, merchant, "/v1/payments", raw))

    run()


def test_refund_and_close_never_answer_500(gw, merchant, client) -> None:
    payment = client.create_payment(merchant_order_no="fuzz-1", amount=1000)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(raw=raw_bodies, path=st.sampled_from([f"/v1/payments/{payment['id']}/refunds",
                                                 f"/v1/payments/{payment['id']}/close",
                                                 "/v1/payments/%00%ff/refunds"]))
    def run(raw: bytes, path: str) -> None:
        _check(_post(gw, merchant, path, raw))

    run()


def test_payouts_receivers_and_splits_never_answer_500(gw, merchant, client) -> None:
    payment = client.create_payment(merchant_order_no="fuzz-2", amount=1000)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(raw=raw_bodies, path=st.sampled_from(["/v1/payouts", "/v1/receivers",
                                                 f"/v1/payments/{payment['id']}/splits"]))
    def run(raw: bytes, path: str) -> None:
        _check(_post(gw, merchant, path, raw))

    run()


def test_channel_callbacks_never_answer_500(gw) -> None:
    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(raw=raw_bodies, headers=st.dictionaries(
        st.sampled_from(["Sandbox-Timestamp", "Sandbox-Nonce", "Sandbox-Signature", "Content-Type"]),
        st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40), max_size=4))
    def run(raw: bytes, headers: dict) -> None:
        response = httpx.post(f"{gw.url}/v1/notify/sandbox", content=raw, headers=headers)
        assert response.status_code < 500, response.text

    run()
