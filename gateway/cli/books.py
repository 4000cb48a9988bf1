"""The books: `paymux ledger check | balances | freeze | unfreeze`."""
from __future__ import annotations

import argparse
import json
from datetime import datetime

from sqlalchemy import Connection, select

from gateway.books import full_check
from gateway.cli import Refused, Usage
from gateway.cli.common import Operator, as_operator, in_transaction, settings_of
from gateway.compose import Backend
from gateway.console.identity import record
from gateway.merchants import merchants
from ledger.chart import OWNER_TYPES
from ledger.core import Entry


def check(args: argparse.Namespace) -> int:
    problems = in_transaction(args, full_check)
    for problem in problems:
        print(problem)
    print(f"ledger check: {len(problems)} violation(s)" if problems else "ledger check: clean")
    return 1 if problems else 0


def merchant_known(conn: Connection, merchant_id: str) -> bool:
    return conn.execute(select(merchants.c.id).where(merchants.c.id == merchant_id)).first() is not None


def balances(args: argparse.Namespace) -> int:
    """Balances of every account, or one owner's; an owner named that does not exist is refused, not
    shown as an empty table."""
    owner_type, _, owner_id = (args.owner or "").partition(":")
    if owner_type and owner_type not in OWNER_TYPES:
        raise Usage(f"--owner {args.owner}: the owner is one of {', '.join(OWNER_TYPES)}, optionally :ID")
    with Backend(settings_of(args)) as backend:
        ledger = backend.ledger
        if owner_type == "merchant" and owner_id and not backend.in_transaction(
                lambda conn: merchant_known(conn, owner_id)):
            raise Refused(f"unknown_merchant: no merchant {owner_id} (`paymux merchant list` shows them)")
        if owner_type == "channel_account" and owner_id and backend.settings.account(owner_id) is None:
            raise Refused(f"unknown_channel_account: the config has no channel account {owner_id} "
                          "(`paymux plugins` lists them)")
        found = backend.in_transaction(lambda conn: ledger.balances(conn, owner_type or None, owner_id or None))
    rows = [{"owner_type": b.owner_type, "owner_id": b.account.owner_id, "account": b.account.code,
             "currency": b.account.currency, "balance": b.normal} for b in found]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'owner':<44} {'account':<22} {'cur':<4} {'balance (minor units)':>22}")
    for r in rows:
        owner = r["owner_type"] if not r["owner_id"] else f"{r['owner_type']}:{r['owner_id']}"
        print(f"{owner:<44} {r['account']:<22} {r['currency']:<4} {r['balance']:>22,}")
    if not rows:
        print("(no accounts yet: nothing has been booked for this owner)")
    return 0


def hold(args: argparse.Namespace) -> int:
    """Freeze (an operator) or unfreeze (an approver) part of a merchant's available balance, as one
    booked entry, audited under the operator who signed in."""
    action = f"ledger.{args.ledger_command}"
    with Backend(settings_of(args)) as backend:
        booker = backend.booker
        if not backend.in_transaction(lambda conn: merchant_known(conn, args.merchant_id)):
            raise Refused(f"unknown_merchant: no merchant {args.merchant_id} (`paymux merchant list` shows them)")
        book = booker.freeze if args.ledger_command == "freeze" else booker.unfreeze

        def held(conn: Connection, op: Operator, now: datetime) -> Entry:
            entry = book(conn, args.merchant_id, args.currency, args.amount, f"hold:{args.reference}", now,
                         memo=f"{args.reason or args.ledger_command} (by {op.name})")
            record(conn, op, action, f"merchant:{args.merchant_id}", None,
                   {"amount": args.amount, "currency": args.currency, "reference": args.reference,
                    "entry": entry.key}, now=now, source="cli")
            return entry

        entry = as_operator(args, action, held, backend)   # a refusal or a ledger error: main() says it, exit 1
    print(f"entry {entry.id} ({entry.key}): {args.ledger_command} {args.amount} {args.currency} (minor units) "
          f"for {args.merchant_id}")
    return 0
