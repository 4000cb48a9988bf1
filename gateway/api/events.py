"""/v1/events: the merchant's events, for polling instead of (or besides) receiving them."""
from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.common import gateway_of, json_response, merchant_endpoint
from gateway.api.ledger import MAX_ID, MAX_PAGE, _int_param
from gateway.auth import SignedCaller
from gateway.models import MerchantEvent
from gateway.notifier import event_object

events = MerchantEvent.__table__


@merchant_endpoint
async def list_events(request: Request, caller: SignedCaller) -> Response:
    """Newest first; pass next_cursor as ?cursor= for older ones. Each event keeps its id forever."""
    limit = _int_param(request, "limit", 20, 1, MAX_PAGE)
    cursor = _int_param(request, "cursor", None, 1, MAX_ID)

    def read(conn):  # noqa: ANN001, ANN202
        caller.verify(conn)
        query = (select(events).where(events.c.merchant_id == caller.merchant_id)
                 .order_by(events.c.seq.desc()).limit(limit + 1))
        if cursor is not None:
            query = query.where(events.c.seq < cursor)
        return conn.execute(query).all()

    rows = await gateway_of(request).db.tx(read)
    more = len(rows) > limit
    rows = rows[:limit]
    data = [{**event_object(r), "delivery": {"status": r.status, "attempts": r.attempts},
             "request_id": r.request_id} for r in rows]
    return json_response({"object": "list", "data": data, "has_more": more,
                          "next_cursor": rows[-1].seq if more else None})
