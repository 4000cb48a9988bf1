"""/v1/statements/{date}: the merchant's statement of a business day, as the daily close produced it.
JSON in pages (cursor: the last line's number), or CSV streamed page by page (never built whole)."""
from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.api.common import gateway_of, json_response, merchant_endpoint
from gateway.api.ledger import MAX_ID, MAX_PAGE, _int_param
from gateway.auth import SignedCaller
from gateway.errors import PaymuxError, invalid_request
from gateway.statements import COLUMNS, PAGE, balances, header, lines


def _day(request: Request) -> date:
    try:
        return date.fromisoformat(request.path_params["business_date"])
    except ValueError:
        raise invalid_request("invalid_date", "The business date is YYYY-MM-DD.", "business_date") from None


def _not_ready(day: date) -> PaymuxError:
    return PaymuxError(404, "invalid_request_error", "statement_not_ready",
                       f"No statement of {day.isoformat()} yet: it is produced by the daily close of that day.")


async def _header(request: Request, caller: SignedCaller, day: date) -> Any:
    def read(conn: Any) -> Any:
        caller.verify(conn)
        return header(conn, caller.merchant_id, day)

    row = await gateway_of(request).db.tx(read)
    if row is None:
        raise _not_ready(day)
    return row


def _summary(row: Any) -> dict[str, Any]:
    return {"object": "statement", "merchant_id": row.merchant_id, "business_date": row.business_date.isoformat(),
            "lines_total": row.lines, "produced_at": row.produced_at.isoformat(), "balances": balances(row)}


@merchant_endpoint
async def get_statement(request: Request, caller: SignedCaller) -> Response:
    day = _day(request)
    limit = _int_param(request, "limit", 100, 1, MAX_PAGE)
    cursor = _int_param(request, "cursor", None, 1, MAX_ID) or 0
    row = await _header(request, caller, day)
    page = await gateway_of(request).db.tx(lambda conn: lines(conn, row, cursor, limit + 1))
    more = len(page) > limit
    page = page[:limit]
    return json_response({**_summary(row), "lines": {"object": "list", "data": page, "has_more": more,
                                                     "next_cursor": page[-1]["line"] if more else None}})


@merchant_endpoint
async def get_statement_csv(request: Request, caller: SignedCaller) -> Response:
    day = _day(request)
    row = await _header(request, caller, day)
    gateway = gateway_of(request)

    async def rows() -> AsyncIterator[bytes]:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        after = 0
        while True:
            page = await gateway.db.tx(lambda conn: lines(conn, row, after, PAGE))
            for line in page:
                writer.writerow([line[c] for c in COLUMNS])
            yield out.getvalue().encode("utf-8")
            out.seek(0)
            out.truncate()
            if len(page) < PAGE:
                break
            after = page[-1]["line"]
        for b in balances(row):
            writer.writerow(["balance", "", "closing", "", b["balance_kind"], b["currency"], b["closing"], "", "", "",
                             f"opening {b['opening']}"])
        yield out.getvalue().encode("utf-8")

    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="statement-{row.merchant_id}-{day.isoformat()}.csv"'})


def openapi_paths(path_param: Any, json: Any, errors: Any, ref: Any) -> dict[str, Any]:
    day = path_param("business_date")
    page = [{"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1,
                                                                            "maximum": MAX_PAGE}},
            {"name": "cursor", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1},
             "description": "lines.next_cursor of the previous page"}]
    return {
        "/v1/statements/{business_date}.csv": {"get": {
            "operationId": "getStatementCsv", "summary": "The merchant's statement of a business day as CSV (streamed)",
            "parameters": [day], "responses": {"200": {"description": "The statement", "content": {
                "text/csv": {"schema": {"type": "string"}}}}, **errors(400, 401, 404)}}},
        "/v1/statements/{business_date}": {"get": {
            "operationId": "getStatement", "summary": "The merchant's statement of a business day: balances and "
                                                      "a page of lines",
            "parameters": [day, *page],
            "responses": {"200": json(ref("Statement"), "The statement"), **errors(400, 401, 404)}}},
    }


def openapi_schemas() -> dict[str, Any]:
    text = {"type": ["string", "null"]}
    line = {"type": "object", "properties": {
        "line": {"type": "integer"}, "booked_at": {"type": "string"}, "kind": {"type": "string"},
        "event_type": {"type": "string"}, "balance_kind": {"type": "string"}, "currency": {"type": "string"},
        "amount": {"type": "integer"}, "reference": text, "merchant_reference": text, "channel_reference": text,
        "memo": text}}
    return {"Statement": {"type": "object", "properties": {
        "object": {"const": "statement"}, "merchant_id": {"type": "string"},
        "business_date": {"type": "string", "format": "date"}, "lines_total": {"type": "integer"},
        "produced_at": {"type": "string"},
        "balances": {"type": "array", "items": {"type": "object", "properties": {
            "balance_kind": {"type": "string"}, "currency": {"type": "string"}, "opening": {"type": "integer"},
            "closing": {"type": "integer"}}}},
        "lines": {"type": "object", "properties": {"object": {"const": "list"}, "has_more": {"type": "boolean"},
                                                   "next_cursor": {"type": ["integer", "null"]},
                                                   "data": {"type": "array", "items": line}}}}}}
