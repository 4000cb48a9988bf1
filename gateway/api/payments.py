"""/v1/payments"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.api.common import (authenticate, gateway_of, idempotency_claim, json_response, parse_json, query_flag,
                                stored_response)
from gateway.api.schemas import CreatePaymentBody, parse_body
from gateway.errors import invalid_request
from gateway.payments import NewPayment


async def create_payment(request: Request) -> Response:
    merchant, body = await authenticate(request)
    claim = idempotency_claim(request, merchant, body)
    data = parse_body(CreatePaymentBody, parse_json(body))
    new = NewPayment(data.merchant_order_no, data.amount, data.currency, data.subject, data.channel, data.method,
                     data.notify_url, data.expires_in, data.metadata)
    return stored_response(await gateway_of(request).payments.create_payment(merchant.id, new, claim))


async def get_payment(request: Request) -> Response:
    merchant, _ = await authenticate(request)
    sync = query_flag(request, "sync")
    payment = await gateway_of(request).payments.get_payment(merchant.id, request.path_params["payment_id"], sync)
    return json_response(payment)


async def find_payment(request: Request) -> Response:
    merchant, _ = await authenticate(request)
    order_no = request.query_params.get("merchant_order_no")
    if not order_no:
        raise invalid_request("parameter_missing", "merchant_order_no is required", "merchant_order_no")
    payment = await gateway_of(request).payments.find_payment(merchant.id, order_no, query_flag(request, "sync"))
    return json_response({"object": "list", "data": [payment]})


async def close_payment(request: Request) -> Response:
    merchant, _ = await authenticate(request)
    payment = await gateway_of(request).payments.close_payment(merchant.id, request.path_params["payment_id"])
    return json_response(payment)
