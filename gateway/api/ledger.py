"""/v1/balance and /v1/ledger/entries: a merchant's own money."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.common import gateway_of, json_response, merchant_endpoint
from gateway.auth import SignedCaller
from gateway.books import entry_object, merchant_balances
from gateway.errors import invalid_request
from ledger.core import Entry

MAX_PAGE = 100
MAX_ID = 2**63 - 1   # ids and cursors are 64-bit columns (migration 0013)


@merchant_endpoint
async def balance(request: Request, caller: SignedCaller) -> Response:
    gw = gateway_of(request)

    def read(conn: Connection) -> list[dict[str, Any]]:
        caller.verify(conn)
        return merchant_balances(conn, gw.ledger, caller.merchant_id)

    return json_response({"object": "balance", "balances": await gw.db.tx(read)})


def _int_param(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    # ASCII digits only ("²" is a digit to str.isdigit, not to int), and no longer than the bound
    if not (raw.isascii() and raw.isdigit() and len(raw) <= len(str(high))) or not low <= int(raw) <= high:
        raise invalid_request("parameter_invalid", f"{name} must be a whole number from {low} to {high}", name)
    return int(raw)


@merchant_endpoint
async def entries(request: Request, caller: SignedCaller) -> Response:
    """Newest first. Pass the returned next_cursor as ?cursor= for the next page."""
    gw = gateway_of(request)
    limit = _int_param(request, "limit", 20, 1, MAX_PAGE)
    cursor = _int_param(request, "cursor", None, 1, MAX_ID)

    def read(conn: Connection) -> list[Entry]:
        caller.verify(conn)
        return gw.ledger.entries_for_owner(conn, "merchant", caller.merchant_id, limit + 1, cursor)

    page = await gw.db.tx(read)
    more = len(page) > limit
    page = page[:limit]
    return json_response({"object": "list", "data": [entry_object(e, caller.merchant_id) for e in page],
                          "has_more": more, "next_cursor": page[-1].id if more else None})
