"""/v1/payouts, /v1/receivers and /v1/payments/{id}/splits: marketplace money movement."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.api.common import (check_notify_url, gateway_of, json_response, merchant_endpoint, parse_json, query_flag,
                                query_text)
from gateway.api.schemas import (REFERENCE_LENGTH, CreatePayoutBody, CreateReceiverBody, CreateSplitBody,
                                 FinishSplitsBody, parse_body)
from gateway.auth import SignedCaller
from gateway.payouts import NewPayout


async def _new_payout(request: Request, caller: SignedCaller) -> NewPayout:
    data = parse_body(CreatePayoutBody, parse_json(caller.body))
    await check_notify_url(request, caller, data.notify_url)
    bank = data.bank_account
    return NewPayout(data.merchant_payout_no, data.amount, data.currency, bank.name, bank.number, bank.bank_code,
                     data.remark, data.notify_url, data.channel)


@merchant_endpoint
async def create_payout(request: Request, caller: SignedCaller) -> Response:
    status, payout = await gateway_of(request).payouts.create(caller, await _new_payout(request, caller))
    return json_response(payout, status)


@merchant_endpoint
async def create_receiver_payout(request: Request, caller: SignedCaller) -> Response:
    """A payout of a receiver whose money paymux holds, from its available balance."""
    gateway = gateway_of(request)
    receiver_id = request.path_params["receiver_id"]
    await gateway.splits.receivers.get_receiver(caller, receiver_id)   # the merchant's, or 404
    new = await _new_payout(request, caller)
    status, payout = await gateway.payouts.create(caller, new, receiver_id)
    return json_response(payout, status)


@merchant_endpoint
async def get_payout(request: Request, caller: SignedCaller) -> Response:
    return json_response(await gateway_of(request).payouts.get(caller, request.path_params["payout_id"],
                                                               sync=query_flag(request, "sync")))


@merchant_endpoint
async def find_payout(request: Request, caller: SignedCaller) -> Response:
    number = query_text(request, "merchant_payout_no", REFERENCE_LENGTH)
    payout = await gateway_of(request).payouts.get(caller, merchant_payout_no=number, sync=query_flag(request, "sync"))
    return json_response({"object": "list", "data": [payout]})


@merchant_endpoint
async def create_receiver(request: Request, caller: SignedCaller) -> Response:
    data = parse_body(CreateReceiverBody, parse_json(caller.body))
    receiver = await gateway_of(request).splits.receivers.create_receiver(caller, data.type, data.name, data.account,
                                                                dict(data.bindings), data.held_by,
                                                                data.settlement_days)
    return json_response(receiver, 201)


@merchant_endpoint
async def get_receiver(request: Request, caller: SignedCaller) -> Response:
    return json_response(await gateway_of(request).splits.receivers.get_receiver(caller, request.path_params["receiver_id"]))


@merchant_endpoint
async def finish_splits(request: Request, caller: SignedCaller) -> Response:
    if caller.body.strip():
        parse_body(FinishSplitsBody, parse_json(caller.body))
    status, release = await gateway_of(request).splits.finish(caller, request.path_params["payment_id"])
    return json_response(release, status)


@merchant_endpoint
async def create_split(request: Request, caller: SignedCaller) -> Response:
    data = parse_body(CreateSplitBody, parse_json(caller.body))
    status, split = await gateway_of(request).splits.create(caller, request.path_params["payment_id"],
                                                            data.merchant_split_no, data.receiver, data.amount,
                                                            data.description)
    return json_response(split, status)


@merchant_endpoint
async def list_splits(request: Request, caller: SignedCaller) -> Response:
    data = await gateway_of(request).splits.list_for(caller, request.path_params["payment_id"])
    return json_response({"object": "list", "data": data})


@merchant_endpoint
async def get_split(request: Request, caller: SignedCaller) -> Response:
    return json_response(await gateway_of(request).splits.get(caller, request.path_params["split_id"],
                                                              sync=query_flag(request, "sync")))
