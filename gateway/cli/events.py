"""Merchant events (`paymux events [list] | redeliver`), and the payments and refunds no channel answer
has settled."""
from __future__ import annotations

import argparse
import json
import sys

from sqlalchemy import select

from gateway.cli.common import as_operator, in_transaction
from gateway.console.actions import redeliver_event
from gateway.janitor import exceptions as open_exceptions
from gateway.notifier import events


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
    else:
        print(f"{'kind':<8} {'id':<30} {'account':<12} {'amount (minor)':>14} {'status':<10}")
    for e in found:
        print(f"{e['kind']:<8} {e['id']:<30} {e['channel_account']:<12} {e['amount']:>14} {e['status']:<10} "
              f"asked {e['queries']}x, open since {e['since']}")
    return 0


def list_events(args: argparse.Namespace) -> int:
    """The newest merchant events (the outbox) and how their delivery stands, filtered."""
    query = select(events).order_by(events.c.seq.desc()).limit(args.limit)
    for column, value in ((events.c.merchant_id, args.merchant), (events.c.type, args.type),
                          (events.c.status, args.status)):
        if value:
            query = query.where(column == value)
    rows = in_transaction(args, lambda conn: conn.execute(query).all())
    found = [{"id": r.id, "type": r.type, "merchant_id": r.merchant_id, "resource_id": r.resource_id,
              "status": r.status, "attempts": r.attempts, "created_at": r.created_at.isoformat(),
              "delivered_at": r.delivered_at.isoformat() if r.delivered_at else None, "last_error": r.last_error}
             for r in rows]
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=False))
        return 0
    if not found:
        print("no events" + (" match" if args.merchant or args.type or args.status else " yet"))
        return 0
    print(f"{'event':<30} {'type':<24} {'merchant':<30} {'resource':<30} {'status':<11} {'tries':>5}  created")
    for e in found:
        print(f"{e['id']:<30} {e['type']:<24} {e['merchant_id']:<30} {e['resource_id']:<30} {e['status']:<11} "
              f"{e['attempts']:>5}  {e['created_at']}")
    return 0
