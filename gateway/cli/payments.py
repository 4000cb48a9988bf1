"""A merchant's calls to a running gateway: pay, get, close, refund, get-refund. Signed with the
demo merchant `paymux init` saved for the config, or the merchant --merchant-id (or the environment)
names together with its secret: a merchant id is never signed for with another merchant's secret."""
from __future__ import annotations

import argparse
import json
import os
import secrets
from typing import Any, Callable

import httpx

from gateway.cli import Unreachable, Usage, credentials_file, read_credentials
from gateway.client import Client


def _client(args: argparse.Namespace) -> Client:
    merchant_id = args.merchant_id or os.environ.get("PAYMUX_MERCHANT_ID")
    secret = args.merchant_secret or os.environ.get("PAYMUX_MERCHANT_SECRET")
    try:
        saved = read_credentials(args.config)
    except Usage:   # another config's demo merchant: no matter when the merchant is given whole
        if not (merchant_id and secret):
            raise
        saved = {}
    url = args.url or os.environ.get("PAYMUX_URL") or saved.get("url") or "http://127.0.0.1:8000"
    if merchant_id and not secret:
        if merchant_id != saved.get("merchant_id"):
            raise Usage(f"--merchant-id {merchant_id} needs its secret: give --merchant-secret or set "
                        "PAYMUX_MERCHANT_SECRET (the demo merchant's secret signs only for the demo merchant)")
        secret = saved["secret"]
    if secret and not merchant_id:
        if not saved.get("merchant_id"):
            raise Usage("a merchant secret without a merchant: give --merchant-id or set PAYMUX_MERCHANT_ID")
        merchant_id = saved["merchant_id"]
    merchant_id, secret = merchant_id or saved.get("merchant_id"), secret or saved.get("secret")
    if not merchant_id or not secret:
        raise Usage(f"no merchant credentials ({credentials_file(args.config)} does not exist): run `paymux init`"
                    " for this config, or give --merchant-id and --merchant-secret")
    return Client(url, merchant_id, secret)


def _call(args: argparse.Namespace, work: Callable[[Client], dict[str, Any]]) -> int:
    client = _client(args)
    try:
        obj = work(client)
    except httpx.TransportError as exc:
        url = client.http.base_url
        raise Unreachable(f"cannot reach the gateway at {url} ({type(exc).__name__}): start it with `paymux serve`"
                          " in another terminal, or point --url or PAYMUX_URL at it") from None
    finally:
        client.close()
    _show(obj, args.field)
    return 0


def _show(obj: dict[str, Any], field: str | None) -> None:
    """The whole answer as JSON, or one field of it: a string or number as it is, structure as JSON."""
    value: Any = obj
    for part in (field.split(".") if field else []):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, (dict, list)):
        print(json.dumps(value, indent=2, ensure_ascii=False))
    elif isinstance(value, bool):
        print(json.dumps(value))
    else:
        print("" if value is None else value)


def pay(args: argparse.Namespace) -> int:
    fields = {"merchant_order_no": args.order or "order-" + secrets.token_hex(6), "amount": args.amount,
              "currency": args.currency, "subject": args.subject}
    for key in ("channel", "method", "notify_url"):
        if getattr(args, key):
            fields[key] = getattr(args, key)
    return _call(args, lambda client: client.create_payment(idempotency_key=args.idempotency_key, **fields))


def get(args: argparse.Namespace) -> int:
    return _call(args, lambda client: client.get_payment(args.payment_id, sync=args.sync))


def close(args: argparse.Namespace) -> int:
    return _call(args, lambda client: client.close_payment(args.payment_id))


def refund(args: argparse.Namespace) -> int:
    fields = {"merchant_refund_no": args.refund_no or "refund-" + secrets.token_hex(6), "amount": args.amount}
    if args.reason:
        fields["reason"] = args.reason
    return _call(args, lambda client: client.create_refund(args.payment_id, **fields))


def get_refund(args: argparse.Namespace) -> int:
    return _call(args, lambda client: client.get_refund(args.refund_id))
