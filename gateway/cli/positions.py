"""Channel positions (prefunded for payouts): each account's balance, and an approver's top-up."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from sqlalchemy import Connection

from gateway import positions
from gateway.cli.common import Operator, as_operator, settings_of
from gateway.compose import Backend
from gateway.console.identity import record
from gateway.payouts import position_balances
from ledger.core import Entry


def list_positions(args: argparse.Namespace) -> int:
    """position: what the account can still pay out; held: what payouts in flight hold of it."""
    with Backend(settings_of(args)) as backend:
        ledger = backend.ledger
        balances = backend.in_transaction(lambda conn: position_balances(
            conn, ledger, [a.id for a in backend.settings.channel_accounts], args.currency))
    rows = [{"channel_account": account, "currency": args.currency, "position": position, "held": held}
            for account, (position, held) in balances.items()]
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'channel account':<20}{'currency':<10}{'position':>16}{'held':>16}  (minor units)")
    for r in rows:
        print(f"{r['channel_account']:<20}{r['currency']:<10}{r['position']:>16,}{r['held']:>16,}")
    return 0


def topup(args: argparse.Namespace) -> int:
    """Book cash sent to a channel account's position, as the approver who signed in, audited."""
    with Backend(settings_of(args)) as backend:
        booker = backend.booker
        if backend.settings.account(args.account) is None:
            print(f"paymux: no channel account {args.account!r}", file=sys.stderr)
            return 2
        if args.amount <= 0:
            print("paymux: the amount must be a positive number of minor units", file=sys.stderr)
            return 2

        def book(conn: Connection, op: Operator, now: datetime) -> Entry:
            entry = positions.top_up(conn, booker, args.account, args.amount, args.currency, args.reference, now,
                                     memo=f"{args.reason or 'top-up'} (by {op.name})")
            record(conn, op, "position.topup", f"channel_account:{args.account}", None,
                   {"amount": args.amount, "currency": args.currency, "reference": args.reference, "entry": entry.key},
                   now=now, source="cli")
            return entry

        entry = as_operator(args, "position.topup", book, backend)   # a refusal or a ledger error: main() says it, exit 1
    print(f"entry {entry.id} ({entry.key}): {args.account} position +{args.amount} {args.currency} (minor units)")
    return 0
