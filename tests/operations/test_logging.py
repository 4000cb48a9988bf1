"""One JSON line per request and per state change, with a request id; never a secret."""
from __future__ import annotations

import io
import json
import time

import httpx

from gateway.auth import authorization_header
from gateway.logs import configure_logging, get_logger
from tests.conftest import SANDBOX_SECRET, SECRET_KEY, checkout, free_port, make_settings, start_gateway, wait_for


def test_logs_carry_request_ids_and_state_changes_but_no_secrets(db_url) -> None:
    sink = io.StringIO()
    configure_logging(json_lines=True, stream=sink)
    try:
        settings = make_settings(db_url, free_port())
        app, server = start_gateway(settings)
        with server:
            gw = app.state.gateway
            from gateway.merchants import create_merchant

            with gw.db.transaction() as conn:
                creds = create_merchant(conn, gw.box, gw.clock, "logged shop")
            from gateway.client import Client

            client = Client(settings.public_url, creds.merchant_id, creds.secret)
            body = b'{"merchant_order_no":"o-1","amount":100}'
            header = authorization_header(creds.merchant_id, creds.secret, "POST", "/v1/payments", body,
                                          int(time.time()))
            signature = header.rsplit('signature="', 1)[1].rstrip('"')
            response = httpx.post(f"{settings.public_url}/v1/payments", content=body,
                                  headers={"Authorization": header, "X-Request-Id": "trace-me-1"})
            assert response.headers["x-request-id"] == "trace-me-1"
            payment = response.json()
            checkout(payment)
            refund = client.create_refund(payment["id"], merchant_refund_no="r-1", amount=10)
            wait_for(lambda: client.get_refund(refund["id"])["status"] == "succeeded")
            client.request("POST", "/v1/payments", {"bad": 1})
    finally:
        configure_logging(json_lines=True)

    text = sink.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    for secret in (creds.secret, SANDBOX_SECRET, SECRET_KEY, signature):
        assert secret not in text
    requests = [line for line in lines if line["event"] == "http.request"]
    assert all(line["request_id"] for line in requests)
    created = next(line for line in lines if line["event"] == "payment.created")
    assert created["request_id"] == "trace-me-1"
    changed = [line for line in lines if line["event"] == "payment.state_changed"]
    assert [(c["from_status"], c["to_status"], c["source"]) for c in changed] == [
        ("processing", "succeeded", "callback")]
    assert any(line["event"] == "refund.state_changed" for line in lines)
    # An applied callback is told by the change it made and its request's line; no third line of its own.
    assert any(line["event"] == "http.request" and line["path"].startswith("/v1/notify/") for line in lines)
    assert not any(line["event"] == "callback.processed" for line in lines)


def test_fields_that_name_secrets_are_redacted_at_any_depth() -> None:
    sink = io.StringIO()
    configure_logging(json_lines=True, stream=sink)
    try:
        get_logger().info("probe", secret="v-one", settings={"app_private_key": "v-two",
                                                             "nested": {"apiv3_key": "v-three"}},
                          authorization="v-four", key="v-five", amount=5)
    finally:
        configure_logging(json_lines=True)
    line = json.loads(sink.getvalue())
    for value in ("v-one", "v-two", "v-three", "v-four", "v-five"):
        assert value not in sink.getvalue()
    assert line["amount"] == 5


def test_a_flat_line_is_redacted_by_its_names_each_time_however_often_it_is_written() -> None:
    """Flat lines of harmless names skip the redaction walk (gateway.logs caches the names' verdicts):
    a sensitive name among them, or a JSON string under a harmless one, is still redacted every time."""
    sink = io.StringIO()
    configure_logging(json_lines=True, stream=sink)
    try:
        for _ in range(3):
            get_logger().info("probe", payment_id="pay_1", amount=5, openid="v-openid", sign="v-sign")
            get_logger().info("probe", payment_id="pay_1", detail='{"card_no": "6216000000000018"}')
    finally:
        configure_logging(json_lines=True)
    lines = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert len(lines) == 6
    for value in ("v-openid", "v-sign", "6216000000000018"):
        assert value not in sink.getvalue()
    assert all(line["payment_id"] == "pay_1" for line in lines)
    assert "6216********0018" in lines[1]["detail"]
