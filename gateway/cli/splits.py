"""`paymux reconcile-splits`: a channel account's statement of splits of one day (gateway/split_recon.py)."""
from __future__ import annotations

import argparse
import json

from gateway.cli.common import settings_of, with_gateway
from gateway.split_recon import split_reconciler


def reconcile_splits(args: argparse.Namespace) -> int:
    report = with_gateway(settings_of(args), "reconcile", lambda gw: split_reconciler(gw).reconcile(
        args.account, args.date))
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(f"{args.account} {report['business_date']} splits: {report['status']} (run {report['run_id']})")
        if report["message"]:
            print(f"  {report['message']}")
        if report["status"] == "completed":
            summary = report["summary"]
            print(f"  {summary['splits']} splits ({summary['split_amount']:,}), {summary['returns']} returns "
                  f"({summary['return_amount']:,}); " + ", ".join(
                      f"{name} {n}" for name, n in report["counts"].items() if n))
            print(f"  open for people: {report['open']} (`paymux recon list`)")
    return 0 if report["status"] in ("completed", "superseded") else 1
