"""/v1/payments"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.api.common import (check_notify_url, gateway_of, idempotency_claim, json_response, merchant_endpoint,
                                parse_json, query_flag, query_text, stored_response)
from gateway.api.schemas import REFERENCE_LENGTH, CreatePaymentBody, NewAttemptBody, parse_body
from gateway.auth import SignedCaller
from gateway.payments import NewPayment


@merchant_endpoint
async def create_payment(request: Request, caller: SignedCaller) -> Response:
    claim = idempotency_claim(request, caller)
    data = parse_body(CreatePaymentBody, parse_json(caller.body))
    await check_notify_url(request, caller, data.notify_url)
    new = NewPayment(data.merchant_order_no, data.amount, data.currency, data.subject, data.channel, data.method,
                     data.notify_url, data.expires_in, data.metadata,
                     client_ip=request.client.host if request.client else None, splits=tuple(data.splits),
                     splittable=data.splittable or bool(data.splits))
    return stored_response(await gateway_of(request).payments.create_payment(caller, new, claim))


@merchant_endpoint
async def get_payment(request: Request, caller: SignedCaller) -> Response:
    sync = query_flag(request, "sync")
    return json_response(await gateway_of(request).payments.get_payment(caller, request.path_params["payment_id"],
                                                                        sync))


@merchant_endpoint
async def find_payment(request: Request, caller: SignedCaller) -> Response:
    order_no = query_text(request, "merchant_order_no", REFERENCE_LENGTH)
    payment = await gateway_of(request).payments.find_payment(caller, order_no, query_flag(request, "sync"))
    return json_response({"object": "list", "data": [payment]})


@merchant_endpoint
async def new_attempt(request: Request, caller: SignedCaller) -> Response:
    data = parse_body(NewAttemptBody, parse_json(caller.body) if caller.body.strip() else {})
    payment = await gateway_of(request).payments.new_attempt(caller, request.path_params["payment_id"], data.method,
                                                             data.channel)
    return json_response(payment)


@merchant_endpoint
async def list_attempts(request: Request, caller: SignedCaller) -> Response:
    data = await gateway_of(request).payments.list_attempts(caller, request.path_params["payment_id"])
    return json_response({"object": "list", "data": data})


@merchant_endpoint
async def close_payment(request: Request, caller: SignedCaller) -> Response:
    return json_response(await gateway_of(request).payments.close_payment(caller, request.path_params["payment_id"]))
