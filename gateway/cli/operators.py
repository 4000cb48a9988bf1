"""Console operators: `paymux operator create | password | list | disable | enable`."""
from __future__ import annotations

import argparse
import sys
from datetime import datetime

from sqlalchemy import Connection, select

from gateway.cli.common import Operator, as_operator, in_transaction, read_password
from gateway.clock import Clock
from gateway.console.identity import (OperatorError, Someone, create_operator, operators, record, set_disabled,
                                      set_password)


def manage(args: argparse.Namespace) -> int:
    """Console operators: create, or set the password of (from --password-stdin,
    $PAYMUX_OPERATOR_PASSWORD, or asked for); list; disable, enable. Once an approver exists, who may
    sign in is decided by one: --by NAME signs them in (their password asked for, or the next line of
    --password-stdin) and the change is audited; before that (the first operators) the server's own
    user decides."""
    if args.operator_command == "list":
        rows = in_transaction(args, lambda conn: conn.execute(select(operators).order_by(operators.c.name)).all())
        if not rows:
            print("no operators yet: `paymux operator create NAME --role approver` makes the first")
        for r in rows:
            print(f"{r.name:<24}{r.role:<10}{'disabled' if r.disabled else 'active':<10}"
                  f"{r.last_sign_in_at.isoformat() if r.last_sign_in_at else 'never signed in'}")
        return 0
    password = None
    if args.operator_command in ("create", "password"):
        password = read_password(args, args.name, "PAYMUX_OPERATOR_PASSWORD")

    def change(conn: Connection, by: Operator | Someone, now: datetime) -> str | bool:
        if args.operator_command == "create":
            done = create_operator(conn, args.name, args.role, password, now)
        elif args.operator_command == "password":
            done = set_password(conn, args.name, password, now)
        else:
            done = set_disabled(conn, args.name, args.operator_command == "disable", now)
        if done:
            record(conn, by, f"operator.{args.operator_command}", f"operator:{args.name}", None,
                   {"role": args.role} if args.operator_command == "create" else None, now=now, source="cli")
        return done

    approvers = select(operators.c.id).where(operators.c.role == "approver", operators.c.disabled.is_(False))
    try:
        if in_transaction(args, lambda conn: conn.execute(approvers).first()) is None:
            done = in_transaction(args, lambda conn: change(conn, Someone("(server)"), Clock().now()))
        elif not args.by:
            print("paymux: an approver must answer for this: add --by NAME (they sign in with their password)",
                  file=sys.stderr)
            return 2
        else:
            done = as_operator(args, "operator.admin", change)
    except OperatorError as exc:
        print(f"paymux: {exc}", file=sys.stderr)
        return 2
    if not done:
        print(f"paymux: no operator {args.name!r}", file=sys.stderr)
        return 2
    if args.operator_command == "create":
        print(f"operator {args.name} ({args.role}) created: {done}")
    else:
        print(f"{args.name}: " + {"password": "password set; every session of theirs has ended",
                                  "disable": "disabled; every session of theirs has ended",
                                  "enable": "enabled"}[args.operator_command])
    return 0
