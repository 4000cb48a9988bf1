"""Merchant events and the payments and refunds no channel answer has settled."""
from __future__ import annotations

import argparse
import json
import sys

from gateway.cli.common import as_operator, in_transaction
from gateway.console.actions import redeliver_event
from gateway.janitor import exceptions as open_exceptions


def redeliver(args: argparse.Namespace) -> int:
    if not as_operator(args, "event.redeliver", lambda conn, op, now: redeliver_event(
            conn, op, args.event_id, now, source="cli")):
        print(f"paymux: no event {args.event_id} with an endpoint to deliver to", file=sys.stderr)
        return 1
    print(f"event {args.event_id} queued for delivery")
    return 0


def exceptions(args: argparse.Namespace) -> int:
    found = in_transaction(args, open_exceptions)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        print("no exceptions: every open payment and operation is still being asked about")
    for e in found:
        print(f"{e['kind']:<8} {e['id']:<30} {e['channel_account']:<12} {e['amount']:>12} {e['status']:<10} "
              f"asked {e['queries']}x, open since {e['since']}")
    return 0
