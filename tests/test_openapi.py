"""/openapi.json is a valid OpenAPI document that describes the routes and the error shape."""
from __future__ import annotations

import httpx
import pytest
from openapi_spec_validator import validate



@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """Input handling does not depend on the database: SQLite only here."""
    return sqlite_url


def test_openapi_document_is_valid_and_complete(gw) -> None:
    doc = httpx.get(f"{gw.url}/openapi.json").json()
    validate(doc)
    assert {"/v1/payments", "/v1/payments/{payment_id}", "/v1/payments/{payment_id}/close",
            "/v1/payments/{payment_id}/refunds", "/v1/refunds/{refund_id}", "/v1/payouts", "/v1/payouts/{payout_id}",
            "/v1/receivers", "/v1/receivers/{receiver_id}", "/v1/payments/{payment_id}/splits",
            "/v1/splits/{split_id}"} <= set(doc["paths"])
    from gateway.app import routes   # every merchant route is described, with each of its methods
    for route in routes():
        if route.path.startswith("/v1/") and not route.path.startswith("/v1/notify"):
            assert {m.lower() for m in route.methods} - {"head"} <= set(doc["paths"][route.path]), route.path
    create = doc["paths"]["/v1/payments"]["post"]
    assert create["responses"]["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    body = doc["components"]["schemas"]["CreatePaymentBody"]
    assert body["additionalProperties"] is False
    assert body["properties"]["amount"]["exclusiveMinimum"] == 0


def test_health_reports_the_database(gw) -> None:
    response = httpx.get(f"{gw.url}/healthz")
    assert response.status_code == 200 and response.json()["database"] == "ok"
