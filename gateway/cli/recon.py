"""Reconciliation: reconcile a day's statements, then confirm, list, propose and approve differences."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from gateway.channel import Capability
from gateway.cli.common import as_operator, in_transaction, settings_of, with_gateway
from gateway.cli.splits import print_split_run
from gateway.compose import Backend
from gateway.config import Settings
from gateway.console.actions import approve_resolution, propose_resolution
from gateway.plugins import discover_channel_types, make_plugin_manager
from gateway.reports import open_items, run_report
from gateway.split_recon import split_reconciler


def reconcile(args: argparse.Namespace) -> int:
    """One account and day here; every enabled account with statements in parallel processes."""
    settings = settings_of(args)
    if args.account is None:
        return _reconcile_all(args, settings)
    if args.file is not None and not Path(args.file).is_file():
        print(f"paymux: {args.file} is not a file", file=sys.stderr)
        return 2
    report = with_gateway(settings, "reconcile", lambda gw: _with_splits(gw, args))
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        _print_run(report)
        if "splits" in report:
            print_split_run(report["splits"])
    done = ("completed", "superseded")
    return 0 if report["status"] in done and report.get("splits", {"status": "completed"})["status"] in done else 1


async def _with_splits(gw: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The statement; then, where the channel pays receivers itself, its statement of splits of the day
    (settlement waits for both where splits are in play: gateway/split_recon.py). An operator's file is
    the trade statement alone: `paymux reconcile-splits` reads the statement of splits then."""
    report = await gw.reconciler.reconcile(args.account, args.date, Path(args.file) if args.file else None,
                                           confirm=not args.defer_queries)
    account = gw.host.account(args.account)
    if args.file is None and report["status"] in ("completed", "superseded") and \
            account.supports(Capability.SPLIT_STATEMENT):
        report = {**report, "splits": await split_reconciler(gw).reconcile(args.account, args.date)}
    return report


def _print_run(report: dict[str, Any]) -> None:
    print(f"{report['channel_account']} {report['business_date']}: {report['status']} (run {report['run_id']})")
    if report["message"]:
        print(f"  {report['message']}")
    if report["status"] != "failed":
        print(f"  {report['statement_rows']} statement lines; " + ", ".join(
            f"{name} {n}" for name, n in report["counts"].items()))
        print(f"  resolved by rule: {report['auto_resolved']}; open for people: {report['open']}")


def _reconcile_all(args: argparse.Namespace, settings: Settings) -> int:
    types = discover_channel_types(make_plugin_manager())
    accounts = [a.id for a in settings.channel_accounts
                if a.enabled and a.plugin in types and Capability.STATEMENT in types[a.plugin].capabilities]
    base = [sys.executable, "-m", "gateway.cli"] + (["--config", args.config] if args.config else [])
    procs = {a: subprocess.Popen(base + ["reconcile", "--account", a, "--date", args.date.isoformat(), "--json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for a in accounts}
    reports, worst = [], 0
    for account, proc in procs.items():
        out, err = proc.communicate()
        try:
            report = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            report = {"channel_account": account, "status": "failed", "message": err.strip()[-500:] or "no answer"}
        reports.append(report)
        worst = max(worst, proc.returncode)
    if args.json:
        print(json.dumps(reports, ensure_ascii=False))
    else:
        for report in reports:
            if "run_id" in report:
                _print_run(report)
            else:
                print(f"{report['channel_account']}: failed: {report['message']}")
    return worst


def confirm(args: argparse.Namespace) -> int:
    row = with_gateway(settings_of(args), "reconcile", lambda gw: gw.reconciler.confirm_run(args.run_id))
    report = run_report(row)
    print(json.dumps(report, ensure_ascii=False) if args.json else
          f"run {report['run_id']}: resolved by rule {report['auto_resolved']}, open {report['open']}")
    return 0


def list_items(args: argparse.Namespace) -> int:
    found = in_transaction(args, lambda conn: open_items(conn, args.account, args.date, args.all))
    if args.json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
        return 0
    if not found:
        print("nothing open: every difference is resolved")
    for i in found:
        p = i.get("proposal")
        proposal = f"  proposal #{p['id']}: {p['action']} by {p['by']}: {p['reason']}" if p else ""
        print(f"{i['id']:>6} {i['business_date']} {i['channel_account']:<12} {i['class']:<18} {i['kind']:<7} "
              f"{i['reference']:<34} channel {i['channel_amount']} {i['channel_status']} / here {i['local_amount']} "
              f"{i['local_status']}  difference {i['difference']}  [{i['status']}]{proposal}")
    return 0


def resolve(args: argparse.Namespace) -> int:
    item = as_operator(args, "recon.propose", lambda conn, op, now: propose_resolution(
        conn, op, args.item_id, args.action, args.reason, now, source="cli"))
    proposal = item["proposal"]
    print(f"item {item['id']}: {args.action} proposed by {proposal['by']} (proposal #{proposal['id']}); another "
          f"person approves it with `paymux recon approve {item['id']} --proposal {proposal['id']} --by NAME`")
    return 0


def approve(args: argparse.Namespace) -> int:
    with Backend(settings_of(args)) as backend:
        booker = backend.booker
        item = as_operator(args, "recon.approve", lambda conn, op, now: approve_resolution(
            conn, op, args.item_id, args.proposal, booker, now, source="cli"), backend)
    print(f"item {item['id']}: {item['resolution']} approved ({item['resolved_by']})")
    return 0
