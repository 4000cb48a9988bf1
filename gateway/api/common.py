"""What every merchant endpoint shares: authentication, JSON parsing, rendering."""
from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import AuthenticatedMerchant, parse_authorization
from gateway.errors import PaymuxError, invalid_request
from gateway.idempotency import IdempotencyClaim, StoredResponse, make_claim
from gateway.service import Gateway


def gateway_of(request: Request) -> Gateway:
    return request.app.state.gateway


def path_and_query(request: Request) -> str:
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    qs = request.scope.get("query_string", b"")
    return (raw + (b"?" + qs if qs else b"")).decode("latin-1")


async def authenticate(request: Request) -> tuple[AuthenticatedMerchant, bytes]:
    """Verify the merchant signature over the raw body; returns the merchant and that body."""
    gw = gateway_of(request)
    body = await request.body()
    signed = parse_authorization(request.headers.get("authorization"))
    merchant = await gw.db.tx(lambda conn: gw.authenticator.verify(
        conn, signed, request.method, path_and_query(request), body, gw.clock.now()))
    return merchant, body


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise invalid_request("invalid_body", "The request body must be a JSON object")
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise invalid_request("invalid_json", f"The request body is not valid JSON: {exc}") from None


def idempotency_claim(request: Request, merchant: AuthenticatedMerchant, body: bytes) -> IdempotencyClaim | None:
    return make_claim(merchant.id, request.headers.get("idempotency-key"), request.method, request.url.path, body)


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(json.dumps(obj, separators=(",", ":")), status_code=status, media_type="application/json")


def stored_response(stored: StoredResponse) -> Response:
    return Response(stored.body, status_code=stored.status, media_type="application/json")


def error_response(err: PaymuxError) -> Response:
    return json_response(err.to_dict(), err.status)


def query_flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise invalid_request("parameter_invalid", f"{name} must be true or false", name)
    return value in ("true", "1")
