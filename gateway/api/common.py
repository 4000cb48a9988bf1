"""What every merchant endpoint shares: authentication, JSON parsing, rendering."""
from __future__ import annotations

import functools
import json
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from gateway.api.text import check_json
from gateway import netguard
from gateway.auth import SignedCaller, parse_authorization
from gateway.errors import PaymuxError, invalid_request
from gateway.idempotency import IdempotencyClaim, StoredResponse, make_claim
from gateway.service import Gateway


def gateway_of(request: Request) -> Gateway:
    return request.app.state.gateway


def path_and_query(request: Request) -> str:
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    qs = request.scope.get("query_string", b"")
    return (raw + (b"?" + qs if qs else b"")).decode("latin-1")


Handler = Callable[[Request, SignedCaller], Awaitable[Response]]


def merchant_endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler of a signed merchant request.

    The signature is checked inside the service's first transaction (no extra round trip). So
    that a bad signature always answers 401 before anything else, a client error raised before
    that check triggers the check first; and a handler that never reached the database has the
    caller verified before its answer leaves.
    """

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        gw = gateway_of(request)
        body = await request.body()
        signed = parse_authorization(request.headers.get("authorization"))
        caller = SignedCaller(gw.authenticator, signed, request.method, path_and_query(request), body,
                              gw.clock.now())
        try:
            response = await handler(request, caller)
        except PaymuxError:
            if not caller.settled:
                await gw.db.tx(caller.verify)
            raise
        if not caller.settled:
            await gw.db.tx(caller.verify)
        return response

    return endpoint


async def check_notify_url(request: Request, caller: SignedCaller, url: str | None) -> None:
    """A notify_url the merchant gives must lead to the public internet (gateway/netguard.py). The
    signature is checked first: nobody unauthenticated makes paymux look a name up."""
    if url is None:
        return
    gw = gateway_of(request)
    if not caller.settled:
        await gw.db.tx(caller.verify)
    await netguard.check_notify_url(url, gw.settings.notify_allow_private_networks)


def parse_json(body: bytes) -> Any:
    """The body as JSON whose every key and string is text a database can store (check_json)."""
    if not body.strip():
        raise invalid_request("invalid_body", "The request body must be a JSON object")
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise invalid_request("invalid_json", f"The request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise invalid_request("invalid_json", "The request body is nested too deeply") from None
    except ValueError as exc:   # an integer of more digits than Python converts (over 4300)
        raise invalid_request("invalid_json", f"The request body is not valid JSON: {exc}") from None
    check_json(data)
    return data


def idempotency_claim(request: Request, caller: SignedCaller) -> IdempotencyClaim | None:
    return make_claim(caller.merchant_id, request.headers.get("idempotency-key"), request.method, request.url.path,
                      caller.body)


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(json.dumps(obj, separators=(",", ":")), status_code=status, media_type="application/json")


def stored_response(stored: StoredResponse) -> Response:
    return Response(stored.body, status_code=stored.status, media_type="application/json")


def error_response(err: PaymuxError) -> Response:
    return json_response(err.to_dict(), err.status)


def query_text(request: Request, name: str, max_length: int) -> str:
    """A required query parameter no longer than the column it is looked up in."""
    value = request.query_params.get(name)
    if not value:
        raise invalid_request("parameter_missing", f"{name} is required", name)
    if len(value) > max_length:
        raise invalid_request("parameter_invalid", f"{name} is at most {max_length} characters", name)
    return value


def query_flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise invalid_request("parameter_invalid", f"{name} must be true or false", name)
    return value in ("true", "1")
