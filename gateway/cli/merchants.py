"""Merchants: `paymux merchant create`."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys

from gateway.cli.common import settings_of
from gateway.compose import Backend
from gateway.errors import PaymuxError
from gateway.merchants import create_merchant
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
