"""`paymux reconcile-splits`: a channel account's statement of splits of one day (gateway/split_recon.py)."""
from __future__ import annotations

import argparse
import json
from typing import Any

from gateway.cli.common import settings_of, with_gateway
from gateway.split_recon import split_reconciler


def reconcile_splits(args: argparse.Namespace) -> int:
    report = with_gateway(settings_of(args), "reconcile", lambda gw: split_reconciler(gw).reconcile(
        args.account, args.date))
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print_split_run(report)
    return 0 if report["status"] in ("completed", "superseded") else 1


def print_split_run(report: dict[str, Any]) -> None:
    account = report["channel_account"].removesuffix(":splits")
    print(f"{account} {report['business_date']} statement of splits: {report['status']} (run {report['run_id']})")
    if report["message"]:
        print(f"  {report['message']}")
    if report["status"] == "completed":
        summary = report["summary"]
        print(f"  {summary['splits']} splits ({summary['split_amount']:,}), {summary['returns']} returns "
              f"({summary['return_amount']:,}); " + ", ".join(
                  f"{name} {n}" for name, n in report["counts"].items() if n))
        print(f"  open for people: {report['open']} (`paymux recon list`)")
