"""/v1/payments/{id}/refunds and /v1/refunds/{id}"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.api.common import (authenticate, gateway_of, idempotency_claim, json_response, parse_json,
                                stored_response)
from gateway.api.schemas import CreateRefundBody, parse_body
from gateway.payments import NewRefund


async def create_refund(request: Request) -> Response:
    merchant, body = await authenticate(request)
    claim = idempotency_claim(request, merchant, body)
    data = parse_body(CreateRefundBody, parse_json(body))
    new = NewRefund(data.merchant_refund_no, data.amount, data.reason)
    payment_id = request.path_params["payment_id"]
    return stored_response(await gateway_of(request).payments.create_refund(merchant.id, payment_id, new, claim))


async def get_refund(request: Request) -> Response:
    merchant, _ = await authenticate(request)
    return json_response(await gateway_of(request).payments.get_refund(merchant.id, request.path_params["refund_id"]))
