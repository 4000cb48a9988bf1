"""/openapi.json is a valid OpenAPI document that describes every route, the error shape, and every
status each route can answer (tests/test_schemathesis.py holds the server to it)."""
from __future__ import annotations

import httpx
import pytest
from openapi_spec_validator import validate

from gateway.client import signed_headers
from tests.conftest import free_port, make_settings


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """Input handling does not depend on the database: SQLite only here."""
    return sqlite_url


def declared(doc: dict, path: str, method: str, response: httpx.Response) -> None:
    """The document declares this answer: its status, and its content type (or none)."""
    responses = doc["paths"][path][method]["responses"]
    assert str(response.status_code) in responses, (path, method, response.status_code)
    content = responses[str(response.status_code)].get("content", {})
    kind = response.headers.get("content-type", "").split(";")[0]
    assert (kind in content) if response.content else True, (path, method, kind, list(content))


def test_openapi_document_is_valid_and_complete(gw) -> None:
    doc = httpx.get(f"{gw.url}/openapi.json").json()
    validate(doc)
    from gateway.app import routes   # every route, notify and metrics included, with each of its methods
    methods: dict[str, set[str]] = {}
    for route in routes():
        methods.setdefault(route.path, set()).update(m.lower() for m in route.methods if m != "HEAD")
    assert {path: set(operations) for path, operations in doc["paths"].items()} == methods
    for path, operations in doc["paths"].items():   # what the door refuses, before any route, on every one
        for method, operation in operations.items():
            assert {"400", "413", "415"} <= set(operation["responses"]), (path, method)
            assert "500" not in operation["responses"]
    create = doc["paths"]["/v1/payments"]["post"]
    assert create["responses"]["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    body = doc["components"]["schemas"]["CreatePaymentBody"]
    assert body["additionalProperties"] is False
    assert body["properties"]["amount"]["exclusiveMinimum"] == 0
    assert doc["paths"]["/v1/notify/{channel_account}"]["post"]["security"] == []


def test_a_bad_sync_flag_the_metrics_and_a_channel_callback_answer_as_declared(gw, merchant) -> None:
    doc = httpx.get(f"{gw.url}/openapi.json").json()
    url = httpx.URL(f"{gw.url}/v1/refunds/re_none?sync=null")
    response = httpx.get(url, headers=signed_headers(merchant.merchant_id, merchant.secret, "GET", url, b""))
    assert response.status_code == 400
    declared(doc, "/v1/refunds/{refund_id}", "get", response)
    declared(doc, "/metrics", "get", httpx.get(f"{gw.url}/metrics"))
    for account, body in (("sandbox", b'{"event": "payment"}'), ("sandbox", b"out_trade_no=%00"), ("nope", b"{}")):
        response = httpx.post(f"{gw.url}/v1/notify/{account}", content=body, headers={
            "Content-Type": "application/x-www-form-urlencoded" if b"=" in body else "application/json"})
        assert response.status_code in (400, 404)
        declared(doc, "/v1/notify/{channel_account}", "post", response)


def test_metrics_behind_a_token_answer_as_declared(gateway_factory, db_url) -> None:
    gw = gateway_factory(make_settings(db_url, free_port()).with_changes(metrics_token="scrape-secret"))
    doc = httpx.get(f"{gw.url}/openapi.json").json()
    refused = httpx.get(f"{gw.url}/metrics")
    assert refused.status_code == 401
    declared(doc, "/metrics", "get", refused)
    assert doc["paths"]["/metrics"]["get"]["security"] == [{}, {"metricsToken": []}]


def test_health_reports_the_database(gw) -> None:
    response = httpx.get(f"{gw.url}/healthz")
    assert response.status_code == 200 and response.json()["database"] == "ok"
