"""/v1/payments/{id}/refunds and /v1/refunds/{id}"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.api.common import (gateway_of, idempotency_claim, json_response, merchant_endpoint, parse_json, query_flag,
                                stored_response)
from gateway.api.schemas import CreateRefundBody, parse_body
from gateway.auth import SignedCaller
from gateway.refunds import NewRefund


@merchant_endpoint
async def create_refund(request: Request, caller: SignedCaller) -> Response:
    claim = idempotency_claim(request, caller)
    data = parse_body(CreateRefundBody, parse_json(caller.body))
    new = NewRefund(data.merchant_refund_no, data.amount, data.reason)
    payment_id = request.path_params["payment_id"]
    return stored_response(await gateway_of(request).refunds.create_refund(caller, payment_id, new, claim))


@merchant_endpoint
async def get_refund(request: Request, caller: SignedCaller) -> Response:
    return json_response(await gateway_of(request).refunds.get_refund(caller, request.path_params["refund_id"],
                                                                       query_flag(request, "sync")))
