"""Merchants: `paymux merchant [list] | create`."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys

from sqlalchemy import select

from gateway.cli.common import in_transaction, settings_of
from gateway.compose import Backend
from gateway.errors import PaymuxError
from gateway.merchants import create_merchant, merchants
from gateway.netguard import check_notify_url


def create(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    try:   # the same rule as a notify_url given with a payment
        asyncio.run(check_notify_url(args.notify_url, settings.notify_allow_private_networks, "--notify-url"))
    except PaymuxError as exc:
        print(f"paymux: {exc.message}", file=sys.stderr)
        return 2
    with Backend(settings) as backend:
        box = backend.box
        with backend.transaction() as conn:
            creds = create_merchant(conn, box, backend.clock, args.name, args.notify_url)
    if args.json:
        print(json.dumps({"merchant_id": creds.merchant_id, "secret": creds.secret}))
    else:
        print(f"merchant_id = {creds.merchant_id}\nsecret      = {creds.secret}")
    return 0


def list_merchants(args: argparse.Namespace) -> int:
    """Every merchant: id, name, status, notify URL, created (their secrets never leave the box)."""
    rows = in_transaction(args, lambda conn: conn.execute(
        select(merchants.c.id, merchants.c.name, merchants.c.status, merchants.c.notify_url, merchants.c.created_at)
        .order_by(merchants.c.created_at, merchants.c.id)).all())
    found = [{"merchant_id": r.id, "name": r.name, "status": r.status, "notify_url": r.notify_url,
              "created_at": r.created_at.isoformat(timespec="seconds")} for r in rows]
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=False))
        return 0
    if not found:
        print("no merchants: `paymux init` makes the demo one, `paymux merchant create NAME` others")
        return 0
    print(f"{'merchant_id':<30} {'name':<24} {'status':<8} {'created':<26} notify_url")
    for m in found:
        print(f"{m['merchant_id']:<30} {m['name']:<24} {m['status']:<8} {m['created_at']:<26} {m['notify_url'] or '-'}")
    return 0
