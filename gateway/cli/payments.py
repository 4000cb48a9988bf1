"""A merchant's calls to a running gateway: pay, get, close, refund, get-refund. Signed with the
demo merchant `paymux init` saved, or the one the environment names."""
from __future__ import annotations

import argparse
import json
import os
import secrets
from typing import Any

from gateway.cli import CREDENTIALS_FILE
from gateway.client import Client
from gateway.errors import ConfigError


def _client(args: argparse.Namespace) -> Client:
    saved: dict[str, Any] = {}
    if CREDENTIALS_FILE.is_file():
        saved = json.loads(CREDENTIALS_FILE.read_text())
    merchant_id = args.merchant_id or os.environ.get("PAYMUX_MERCHANT_ID") or saved.get("merchant_id")
    secret = os.environ.get("PAYMUX_MERCHANT_SECRET") or saved.get("secret")
    url = args.url or os.environ.get("PAYMUX_URL") or saved.get("url") or "http://127.0.0.1:8000"
    if not merchant_id or not secret:
        raise ConfigError("no merchant credentials: run `paymux init`, or set PAYMUX_MERCHANT_ID and "
                          "PAYMUX_MERCHANT_SECRET")
    return Client(url, merchant_id, secret)


def _show(obj: dict[str, Any], field: str | None) -> None:
    if field is None:
        print(json.dumps(obj, indent=2, ensure_ascii=False))
        return
    value: Any = obj
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    print("" if value is None else value)


def pay(args: argparse.Namespace) -> int:
    fields = {"merchant_order_no": args.order or "order-" + secrets.token_hex(6), "amount": args.amount,
              "currency": args.currency, "subject": args.subject}
    for key in ("channel", "method", "notify_url"):
        if getattr(args, key):
            fields[key] = getattr(args, key)
    _show(_client(args).create_payment(idempotency_key=args.idempotency_key, **fields), args.field)
    return 0


def get(args: argparse.Namespace) -> int:
    _show(_client(args).get_payment(args.payment_id, sync=args.sync), args.field)
    return 0


def close(args: argparse.Namespace) -> int:
    _show(_client(args).close_payment(args.payment_id), args.field)
    return 0


def refund(args: argparse.Namespace) -> int:
    fields = {"merchant_refund_no": args.refund_no or "refund-" + secrets.token_hex(6), "amount": args.amount}
    if args.reason:
        fields["reason"] = args.reason
    _show(_client(args).create_refund(args.payment_id, **fields), args.field)
    return 0


def get_refund(args: argparse.Namespace) -> int:
    _show(_client(args).get_refund(args.refund_id), args.field)
    return 0
