"""Settlement and the daily report."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from gateway.cli.common import Operator, as_operator, settings_of
from gateway.compose import Backend
from gateway.console.identity import record
from gateway.plugins import discover_channel_types, make_plugin_manager
from gateway.reconciliation.settlement import SettlementRefused, Settler
from gateway.reports import daily_report as build_daily_report


def settle(args: argparse.Namespace) -> int:
    if args.force and not args.by:
        print("paymux: --force needs --by NAME: the approver who answers for settling with open differences "
              "(their password is asked for)", file=sys.stderr)
        return 2
    with Backend(settings_of(args)) as backend:
        settler = Settler(backend.settings, discover_channel_types(make_plugin_manager()), backend.booker)

        def forced(conn: Connection, op: Operator, now: datetime) -> dict[str, Any]:
            report = settler.settle(conn, args.date, now, op.name).as_dict()
            record(conn, op, "settle.force", args.date.isoformat(), None,
                   {"booked": len(report["booked"]), "skipped": len(report["skipped"])}, now=now, source="cli")
            return report

        try:
            report = as_operator(args, "settle.force", forced, backend) if args.force else \
                backend.in_transaction(lambda conn: settler.settle(conn, args.date, backend.clock.now())).as_dict()
        except SettlementRefused as exc:
            print(f"paymux: settlement refused: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    for b in report["booked"]:
        print(f"booked {b['kind']:<15} {b['owner']:<40} {b['business_date']} {b['amount']:>14,} {b['currency']}")
    for s in report["skipped"]:
        print(f"skipped {s}")
    if not report["booked"] and not report["skipped"]:
        print("nothing due")
    return 0


def daily_report(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    with Backend(settings) as backend:
        report = backend.in_transaction(lambda conn: build_daily_report(conn, settings, args.date))
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    print(f"daily report {report['date']}  (amounts in minor units)")
    print(f"\n{'channel account':<16}{'payments':>9}{'volume':>14}{'stmt rows':>10}{'ch. fees':>10}"
          f"{'settled':>14}  open differences")
    for c in report["channel_accounts"]:
        st = c["statement"] or {}
        diffs = ", ".join(f"{k} {v}" for k, v in c["open_differences"].items() if v) or "none"
        print(f"{c['channel_account']:<16}{c['payments']:>9}{c['volume']:>14,}{st.get('rows', '-'):>10}"
              f"{st.get('channel_fees', '-'):>10}{c['settled'] if c['settled'] is not None else '-':>14}  "
              f"{diffs if c['reconciled'] else 'not reconciled'}")
    print(f"\n{'merchant':<34}{'payments':>9}{'volume':>14}{'fees':>10}{'settled':>14}{'advanced':>12}")
    for m in report["merchants"]:
        print(f"{m['merchant_id']:<34}{m['payments']:>9}{m['volume']:>14,}{m['fees']:>10,}{m['settled']:>14,}"
              f"{m['advanced']:>12,}")
    print(f"\nrefunds paid back: {report['refunds']:,}; advances outstanding (exposure): "
          f"{report['advances_outstanding']:,}")
    for r in report["funds"]:
        print(f"\nreserve account {r['reserve_account']} ({r['currency']}, bank statements to "
              f"{r['latest_statement'] or 'none yet'})")
        print(f"{'channel account':<16}{'expected':>14}{'received':>14}{'difference':>14}{'in transit':>14}  classes")
        for c in r["channel_accounts"]:
            classes = ", ".join(f"{k} {v}" for k, v in c["classes"].items() if v) or "-"
            print(f"{c['channel_account']:<16}{c['expected']:>14,}{c['received']:>14,}{c['difference']:>14,}"
                  f"{c['in_transit']:>14,}  {classes}")
        unexpected = r["received_not_expected"]
        print(f"received, not expected: {unexpected['count']} lines, {unexpected['amount']:,}")
    return 0
