"""The books: `paymux ledger check | balances | freeze | unfreeze`."""
from __future__ import annotations

import argparse
from datetime import datetime

from sqlalchemy import Connection

from gateway.books import full_check
from gateway.cli.common import Operator, as_operator, in_transaction, settings_of
from gateway.compose import Backend
from gateway.console.identity import record
from ledger.core import Entry


def check(args: argparse.Namespace) -> int:
    problems = in_transaction(args, full_check)
    for problem in problems:
        print(problem)
    print(f"ledger check: {len(problems)} violation(s)" if problems else "ledger check: clean")
    return 1 if problems else 0


def balances(args: argparse.Namespace) -> int:
    owner_type, _, owner_id = (args.owner or "").partition(":")
    with Backend(settings_of(args)) as backend:
        ledger = backend.ledger
        found = backend.in_transaction(lambda conn: ledger.balances(conn, owner_type or None, owner_id or None))
    print(f"{'owner':<44} {'account':<22} {'cur':<4} {'balance':>16}")
    for b in found:
        owner = b.owner_type if not b.account.owner_id else f"{b.owner_type}:{b.account.owner_id}"
        print(f"{owner:<44} {b.account.code:<22} {b.account.currency:<4} {b.normal:>16,}")
    return 0


def hold(args: argparse.Namespace) -> int:
    """Freeze (an operator) or unfreeze (an approver) part of a merchant's available balance, as one
    booked entry, audited under the operator who signed in."""
    action = f"ledger.{args.ledger_command}"
    with Backend(settings_of(args)) as backend:
        booker = backend.booker
        book = booker.freeze if args.ledger_command == "freeze" else booker.unfreeze

        def held(conn: Connection, op: Operator, now: datetime) -> Entry:
            entry = book(conn, args.merchant_id, args.currency, args.amount, f"hold:{args.reference}", now,
                         memo=f"{args.reason or args.ledger_command} (by {op.name})")
            record(conn, op, action, f"merchant:{args.merchant_id}", None,
                   {"amount": args.amount, "currency": args.currency, "reference": args.reference,
                    "entry": entry.key}, now=now, source="cli")
            return entry

        entry = as_operator(args, action, held, backend)   # a refusal or a ledger error: main() says it, exit 1
    print(f"entry {entry.id} ({entry.key}): {args.ledger_command} {args.amount} {args.currency} for {args.merchant_id}")
    return 0
