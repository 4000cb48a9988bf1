"""The `paymux` command."""
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from gateway.config import Settings, load_settings
from gateway.errors import ConfigError

DEMO_MERCHANT = "demo"
CREDENTIALS_FILE = Path(".paymux/merchant.json")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None))


def _box_and_db(settings: Settings):  # noqa: ANN202
    from gateway.db import Database
    from gateway.secretbox import SecretBox

    return SecretBox.from_settings(settings), Database(settings.database_url)


def _in_transaction(args: argparse.Namespace, fn: Any) -> Any:
    """fn(conn) in one transaction on the configured database, for commands that do not serve."""
    from gateway.db import Database

    database = Database(_settings(args).database_url)
    try:
        with database.transaction() as conn:
            return fn(conn)
    finally:
        database.dispose()


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from gateway import db

    settings = _settings(args)
    db.upgrade(settings.database_url, settings.secret_key)
    print(f"database at {db.make_url_safe(settings.database_url)} is up to date")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    """Everything `make run` needs on a fresh machine; safe to run again."""
    from gateway import db
    from gateway.clock import Clock
    from gateway.merchants import create_merchant, first_merchant
    from gateway.secretbox import ensure_key_file

    settings = _settings(args)
    if (created := ensure_key_file(_key_file(settings) or settings.secret_key)) is not None:
        print(f"created secret key file {created}")
        settings = _settings(args)
    db.upgrade(settings.database_url, settings.secret_key)
    box, database = _box_and_db(settings)
    with database.transaction() as conn:
        creds = first_merchant(conn, box, DEMO_MERCHANT) or create_merchant(conn, box, Clock(), DEMO_MERCHANT)
    database.dispose()
    CREDENTIALS_FILE.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(CREDENTIALS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)   # a file left by an earlier version may be readable by others
    with os.fdopen(fd, "w") as f:
        json.dump({"merchant_id": creds.merchant_id, "secret": creds.secret, "url": settings.public_url}, f)
    print(f"demo merchant (saved to {CREDENTIALS_FILE}, which `paymux pay` reads):")
    print(f"  merchant_id = {creds.merchant_id}")
    print(f"  secret      = {creds.secret}")
    return 0


def _key_file(settings: Settings) -> str | None:
    """The `file:` reference the config gives secret_key (once the file exists, settings hold its
    value), so that init can make an existing key file private too."""
    import tomllib

    if os.environ.get("PAYMUX_SECRET_KEY") or settings.config_path is None:
        return None
    reference = tomllib.loads(settings.config_path.read_text()).get("secret_key")
    return reference if isinstance(reference, str) and reference.startswith("file:") else None


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway import db
    from gateway.app import create_app
    from gateway.logs import configure_logging

    settings = _settings(args)
    database = db.Database(settings.database_url)
    current, head = db.schema_state(database.engine)
    database.dispose()
    if current != head:
        print(f"paymux: the database schema is at {current or 'nothing'}, this code needs {head}: "
              f"run `paymux db upgrade`", file=sys.stderr)
        return 2
    configure_logging(settings.log_json)
    app = create_app(settings)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from gateway.plugins import discover_channel_types, make_plugin_manager

    types = discover_channel_types(make_plugin_manager())
    settings = _settings(args)
    listing = {
        "plugins": [{"name": name, "module": t.__module__, "methods": list(t.methods),
                     "capabilities": sorted(c.value for c in t.capabilities)} for name, t in sorted(types.items())],
        "channel_accounts": [{"id": a.id, "plugin": a.plugin, "enabled": a.enabled,
                              "installed": a.plugin in types} for a in settings.channel_accounts],
    }
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    print("plugins:")
    for p in listing["plugins"]:
        print(f"  {p['name']:<12} methods: {', '.join(p['methods']) or '-'}; capabilities: {', '.join(p['capabilities'])}")
    print("channel accounts:")
    for a in listing["channel_accounts"]:
        state = "enabled" if a["enabled"] else "disabled"
        missing = "" if a["installed"] else "  (plugin NOT INSTALLED)"
        print(f"  {a['id']:<12} plugin {a['plugin']:<10} {state}{missing}")
    return 0


def cmd_channels(args: argparse.Namespace) -> int:
    """Each channel account: routing settings, health over the last minutes, circuit, limits used today."""
    from gateway.clock import Clock
    from gateway.health import channel_listing

    settings = _settings(args)
    listing = _in_transaction(args, lambda conn: channel_listing(conn, settings, Clock().now(), args.minutes))
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    print(f"{'account':<14}{'plugin':<11}{'state':<10}{'prio':>5}{'wt':>4}  {'circuit':<10}"
          f"{'calls':>7}{'errors':>7}{'ok%':>7}{'ms':>8}  today (count/amount of limits)")
    for c in listing:
        rate = "-" if c["success_rate"] is None else f"{c['success_rate'] * 100:.1f}"
        latency = "-" if c["mean_latency_ms"] is None else f"{c['mean_latency_ms']:.0f}"
        limits = c["limits"]
        today = (f"{c['today']['count']}/{limits.get('daily_count', '∞')} "
                 f"{c['today']['amount']}/{limits.get('daily_amount', '∞')}")
        print(f"{c['id']:<14}{c['plugin']:<11}{'enabled' if c['enabled'] else 'disabled':<10}{c['priority']:>5}"
              f"{c['weight']:>4}  {c['circuit']['state']:<10}{c['calls']:>7}{c['errors']:>7}{rate:>7}{latency:>8}  "
              f"{today}")
    return 0


def _date(text: str) -> Any:
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _with_gateway(settings: Settings, role: str, work: Any) -> Any:
    """Run `await work(gateway)` with a gateway built for a command (no HTTP server)."""
    import asyncio

    from gateway.logs import configure_logging, get_logger
    from gateway.service import Gateway

    configure_logging(settings.log_json)

    async def run() -> Any:
        gateway = Gateway.build(settings, get_logger(role=role))
        try:
            return await work(gateway)
        finally:
            await gateway.aclose()

    return asyncio.run(run())


def cmd_reconcile(args: argparse.Namespace) -> int:
    """One account and day here; every enabled account with statements in parallel processes."""
    from gateway.reconcile import Reconciler

    settings = _settings(args)
    if args.account is None:
        return _reconcile_all(args, settings)
    if args.file is not None and not Path(args.file).is_file():
        print(f"paymux: {args.file} is not a file", file=sys.stderr)
        return 2
    report = _with_gateway(settings, "reconcile", lambda gw: Reconciler(gw).reconcile(
        args.account, args.date, Path(args.file) if args.file else None, confirm=not args.defer_queries))
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        _print_run(report)
    return 0 if report["status"] in ("completed", "superseded") else 1


def _print_run(report: dict[str, Any]) -> None:
    print(f"{report['channel_account']} {report['business_date']}: {report['status']} (run {report['run_id']})")
    if report["message"]:
        print(f"  {report['message']}")
    if report["status"] != "failed":
        print(f"  {report['statement_rows']} statement lines; " + ", ".join(
            f"{name} {n}" for name, n in report["counts"].items()))
        print(f"  resolved by rule: {report['auto_resolved']}; open for people: {report['open']}")


def _reconcile_all(args: argparse.Namespace, settings: Settings) -> int:
    import subprocess

    from gateway.channel import Capability
    from gateway.plugins import discover_channel_types, make_plugin_manager

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


def cmd_settle(args: argparse.Namespace) -> int:
    from gateway.clock import Clock
    from gateway.plugins import discover_channel_types, make_plugin_manager
    from gateway.service import make_ledger
    from gateway.settlement import SettlementRefused, Settler
    from ledger.booking import Booker

    if args.force and not args.by:
        print("paymux: --force needs --by NAME: the approver who answers for settling with open differences "
              "(their password is asked for)", file=sys.stderr)
        return 2
    settings = _settings(args)
    settler = Settler(settings, discover_channel_types(make_plugin_manager()), Booker(make_ledger(settings)))

    def forced(conn: Any, op: Any, now: Any) -> dict[str, Any]:
        from gateway.console.identity import record

        report = settler.settle(conn, args.date, now, op.name).as_dict()
        record(conn, op, "settle.force", args.date.isoformat(), None,
               {"booked": len(report["booked"]), "skipped": len(report["skipped"])}, now=now, source="cli")
        return report

    try:
        report = _as_operator(args, "settle.force", forced) if args.force else \
            _in_transaction(args, lambda conn: settler.settle(conn, args.date, Clock().now())).as_dict()
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


def cmd_report_daily(args: argparse.Namespace) -> int:
    from gateway.settlement import daily_report

    settings = _settings(args)
    report = _in_transaction(args, lambda conn: daily_report(conn, settings, args.date))
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
    return 0


def cmd_recon_confirm(args: argparse.Namespace) -> int:
    from gateway.reconcile import Reconciler, run_report

    row = _with_gateway(_settings(args), "reconcile", lambda gw: Reconciler(gw).confirm_run(args.run_id))
    report = run_report(row)
    print(json.dumps(report, ensure_ascii=False) if args.json else
          f"run {report['run_id']}: resolved by rule {report['auto_resolved']}, open {report['open']}")
    return 0


def cmd_recon_list(args: argparse.Namespace) -> int:
    from gateway.reconcile import open_items

    found = _in_transaction(args, lambda conn: open_items(conn, args.account, args.date, args.all))
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


def cmd_recon_resolve(args: argparse.Namespace) -> int:
    from gateway.console.actions import propose_resolution

    item = _as_operator(args, "recon.propose", lambda conn, op, now: propose_resolution(
        conn, op, args.item_id, args.action, args.reason, now, source="cli"))
    proposal = item["proposal"]
    print(f"item {item['id']}: {args.action} proposed by {proposal['by']} (proposal #{proposal['id']}); another "
          f"person approves it with `paymux recon approve {item['id']} --proposal {proposal['id']} --by NAME`")
    return 0


def cmd_recon_approve(args: argparse.Namespace) -> int:
    from gateway.console.actions import approve_resolution
    from gateway.service import make_ledger
    from ledger.booking import Booker

    booker = Booker(make_ledger(_settings(args)))
    item = _as_operator(args, "recon.approve", lambda conn, op, now: approve_resolution(
        conn, op, args.item_id, args.proposal, booker, now, source="cli"))
    print(f"item {item['id']}: {item['resolution']} approved ({item['resolved_by']})")
    return 0


class Refused(Exception):
    """A command not done, with the line that says why (exit status 1)."""


def _as_operator(args: argparse.Namespace, action: str, fn: Any) -> Any:
    """fn(conn, operator, now) in one transaction, as the operator `--by` names, once they have signed
    in with their password (`--password-stdin`, or asked for) by the console's rules — the same tries
    and lockout, audited — and only if they hold the role the console needs for `action`."""
    import getpass

    from gateway.clock import Clock
    from gateway.console.actions import NEEDS
    from gateway.console.identity import RANK, SignInLimit, SignInRefused, authenticate
    from gateway.db import Database
    from gateway.errors import PaymuxError

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.by}: ")
    settings = _settings(args)
    database = Database(settings.database_url)
    try:
        op = authenticate(database, args.by, password, Clock().now(), "cli", None, SignInLimit.of(settings))
        needs = NEEDS[action]
        if RANK[op.role] < RANK[needs]:
            raise Refused(f"not_allowed: {op.name} is a {op.role}; this needs an {needs}")
        return database.run_tx(lambda conn: fn(conn, op, Clock().now()))
    except SignInRefused as exc:
        raise Refused(f"{exc.code}: {exc}") from None
    except PaymuxError as exc:
        raise Refused(f"{exc.code}: {exc.message}") from None
    finally:
        database.dispose()


def cmd_merchant_create(args: argparse.Namespace) -> int:
    import asyncio

    from gateway.clock import Clock
    from gateway.errors import PaymuxError
    from gateway.merchants import create_merchant
    from gateway.netguard import check_notify_url

    settings = _settings(args)
    try:   # the same rule as a notify_url given with a payment
        asyncio.run(check_notify_url(args.notify_url, settings.notify_allow_private_networks, "--notify-url"))
    except PaymuxError as exc:
        print(f"paymux: {exc.message}", file=sys.stderr)
        return 2
    box, database = _box_and_db(settings)
    with database.transaction() as conn:
        creds = create_merchant(conn, box, Clock(), args.name, args.notify_url)
    database.dispose()
    if args.json:
        print(json.dumps({"merchant_id": creds.merchant_id, "secret": creds.secret}))
    else:
        print(f"merchant_id = {creds.merchant_id}\nsecret      = {creds.secret}")
    return 0


def cmd_operator(args: argparse.Namespace) -> int:
    """Console operators: create, or set the password of (from --password-stdin,
    $PAYMUX_OPERATOR_PASSWORD, or asked for); list; disable, enable. Once an approver exists, who may
    sign in is decided by one: --by NAME signs them in (their password asked for, or the next line of
    --password-stdin) and the change is audited; before that (the first operators) the server's own
    user decides."""
    import getpass

    from sqlalchemy import select

    from gateway.clock import Clock
    from gateway.console.identity import (OperatorError, Someone, create_operator, operators, record, set_disabled,
                                          set_password)

    if args.operator_command == "list":
        rows = _in_transaction(args, lambda conn: conn.execute(select(operators).order_by(operators.c.name)).all())
        for r in rows:
            print(f"{r.name:<24}{r.role:<10}{'disabled' if r.disabled else 'active':<10}"
                  f"{r.last_sign_in_at.isoformat() if r.last_sign_in_at else 'never signed in'}")
        return 0
    password = None
    if args.operator_command in ("create", "password"):
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = os.environ.get("PAYMUX_OPERATOR_PASSWORD") or getpass.getpass(f"password for {args.name}: ")

    def change(conn: Any, by: Any, now: Any) -> Any:
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
        if _in_transaction(args, lambda conn: conn.execute(approvers).first()) is None:
            done = _in_transaction(args, lambda conn: change(conn, Someone("(server)"), Clock().now()))
        elif not args.by:
            print("paymux: an approver must answer for this: add --by NAME (they sign in with their password)",
                  file=sys.stderr)
            return 2
        else:
            done = _as_operator(args, "operator.admin", change)
    except OperatorError as exc:
        print(f"paymux: {exc}", file=sys.stderr)
        return 2
    except Refused as exc:
        print(f"paymux: {exc}", file=sys.stderr)
        return 1
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


def cmd_ledger_check(args: argparse.Namespace) -> int:
    from gateway.books import full_check

    problems = _in_transaction(args, full_check)
    for problem in problems:
        print(problem)
    print(f"ledger check: {len(problems)} violation(s)" if problems else "ledger check: clean")
    return 1 if problems else 0


def cmd_ledger_balances(args: argparse.Namespace) -> int:
    from gateway.db import Database
    from gateway.service import make_ledger

    settings = _settings(args)
    owner_type, _, owner_id = (args.owner or "").partition(":")
    database = Database(settings.database_url)
    with database.transaction() as conn:
        balances = make_ledger(settings).balances(conn, owner_type or None, owner_id or None)
    database.dispose()
    print(f"{'owner':<44} {'account':<22} {'cur':<4} {'balance':>16}")
    for b in balances:
        owner = b.owner_type if not b.account.owner_id else f"{b.owner_type}:{b.account.owner_id}"
        print(f"{owner:<44} {b.account.code:<22} {b.account.currency:<4} {b.normal:>16,}")
    return 0


def cmd_ledger_hold(args: argparse.Namespace) -> int:
    """Freeze (an operator) or unfreeze (an approver) part of a merchant's available balance, as one
    booked entry, audited under the operator who signed in."""
    from gateway.console.identity import record
    from gateway.service import make_ledger
    from ledger.booking import Booker
    from ledger.errors import LedgerError

    booker = Booker(make_ledger(_settings(args)))
    book = booker.freeze if args.ledger_command == "freeze" else booker.unfreeze
    action = f"ledger.{args.ledger_command}"

    def hold(conn: Any, op: Any, now: Any) -> Any:
        entry = book(conn, args.merchant_id, args.currency, args.amount, f"hold:{args.reference}", now,
                     memo=f"{args.reason or args.ledger_command} (by {op.name})")
        record(conn, op, action, f"merchant:{args.merchant_id}", None,
               {"amount": args.amount, "currency": args.currency, "reference": args.reference, "entry": entry.key},
               now=now, source="cli")
        return entry

    try:
        entry = _as_operator(args, action, hold)
    except LedgerError as exc:
        print(f"paymux: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except Refused as exc:
        print(f"paymux: {exc}", file=sys.stderr)
        return 1
    print(f"entry {entry.id} ({entry.key}): {args.ledger_command} {args.amount} {args.currency} for {args.merchant_id}")
    return 0


def cmd_positions(args: argparse.Namespace) -> int:
    """Each channel account's position (prefunded for payouts), or a top-up of one (an approver's, signed
    in), as a booked entry."""
    from gateway.payouts import position_balances
    from gateway.service import make_ledger
    from ledger.booking import Booker
    from ledger.errors import LedgerError

    settings = _settings(args)
    ledger = make_ledger(settings)
    if args.positions_command == "topup":
        if settings.account(args.account) is None:
            print(f"paymux: no channel account {args.account!r}", file=sys.stderr)
            return 2
        if args.amount <= 0:
            print("paymux: the amount must be a positive number of minor units", file=sys.stderr)
            return 2
        from gateway.console.identity import record

        def topup(conn: Any, op: Any, now: Any) -> Any:
            entry = Booker(ledger).book(
                conn, "position.topup", f"position:{args.account}:{args.reference}", merchant_id="",
                channel_account=args.account, currency=args.currency, variables={"amount": args.amount},
                now=now, memo=f"{args.reason or 'top-up'} (by {op.name})")
            record(conn, op, "position.topup", f"channel_account:{args.account}", None,
                   {"amount": args.amount, "currency": args.currency, "reference": args.reference, "entry": entry.key},
                   now=now, source="cli")
            return entry

        try:
            entry = _as_operator(args, "position.topup", topup)
        except LedgerError as exc:
            print(f"paymux: {exc.code}: {exc.message}", file=sys.stderr)
            return 1
        except Refused as exc:
            print(f"paymux: {exc}", file=sys.stderr)
            return 1
        print(f"entry {entry.id} ({entry.key}): {args.account} position +{args.amount} {args.currency}")
        return 0
    # position: what the account can still pay out; held: what payouts in flight hold of it.
    balances = _in_transaction(args, lambda conn: position_balances(
        conn, ledger, [a.id for a in settings.channel_accounts], args.currency))
    rows = [{"channel_account": account, "currency": args.currency, "position": position, "held": held}
            for account, (position, held) in balances.items()]
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'channel account':<20}{'currency':<10}{'position':>16}{'held':>16}")
    for r in rows:
        print(f"{r['channel_account']:<20}{r['currency']:<10}{r['position']:>16,}{r['held']:>16,}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run a channel's simulator on its own, with keys kept under .paymux/simulators/<plugin>/."""
    import uvicorn

    from gateway.plugins import discover_channel_types, make_plugin_manager

    channel_type = discover_channel_types(make_plugin_manager()).get(args.plugin)
    workdir = Path(".paymux/simulators") / args.plugin
    made = channel_type.standalone_simulator(workdir, f"http://{args.host}:{args.port}") if channel_type else None
    if made is None:
        print(f"paymux: plugin {args.plugin!r} has no standalone simulator", file=sys.stderr)
        return 2
    app, account_block = made
    print(f"# {args.plugin} simulator on http://{args.host}:{args.port}; add this account to your config:\n")
    print(account_block, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_statement_download(args: argparse.Namespace) -> int:
    from gateway.channel import StatementUnavailable

    day = args.date
    try:
        content = _with_gateway(_settings(args), "statement", lambda gw: gw.download_statement(args.account, day))
    except StatementUnavailable as exc:
        print(f"paymux: no statement for {args.account} on {day}: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out or f"{args.account}-{day.isoformat()}.statement")
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)   # a bill names payers: ours alone
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(content)
    print(f"saved {len(content)} bytes to {out}")
    return 0


def cmd_events_redeliver(args: argparse.Namespace) -> int:
    from gateway.console.actions import redeliver_event

    if not _as_operator(args, "event.redeliver", lambda conn, op, now: redeliver_event(
            conn, op, args.event_id, now, source="cli")):
        print(f"paymux: no event {args.event_id} with an endpoint to deliver to", file=sys.stderr)
        return 1
    print(f"event {args.event_id} queued for delivery")
    return 0


def cmd_exceptions(args: argparse.Namespace) -> int:
    from gateway.janitor import exceptions

    found = _in_transaction(args, exceptions)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        print("no exceptions: every open payment and refund is still being asked about")
    for e in found:
        print(f"{e['kind']:<8} {e['id']:<30} {e['channel_account']:<12} {e['amount']:>12} {e['status']:<10} "
              f"asked {e['queries']}x, open since {e['since']}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """The background work without HTTP: deliver merchant events, query open payments, close expired ones."""
    import asyncio

    async def work(gateway: Any) -> None:
        await asyncio.gather(gateway.notifier.run(), gateway.janitor.run(), gateway.health_loop())

    try:
        _with_gateway(_settings(args), "worker", work)
    except KeyboardInterrupt:
        pass
    return 0


# ---- client commands: talk to a running gateway ----

def _client(args: argparse.Namespace):  # noqa: ANN202
    from gateway.client import Client

    saved: dict[str, Any] = {}
    if CREDENTIALS_FILE.is_file():
        saved = json.loads(CREDENTIALS_FILE.read_text())
    merchant_id = args.merchant_id or os.environ.get("PAYMUX_MERCHANT_ID") or saved.get("merchant_id")
    secret = os.environ.get("PAYMUX_MERCHANT_SECRET") or saved.get("secret")
    url = args.url or os.environ.get("PAYMUX_URL") or saved.get("url") or "http://127.0.0.1:8000"
    if not merchant_id or not secret:
        raise ConfigError("no merchant credentials: run `paymux init`, or set PAYMUX_MERCHANT_ID and "
                          "PAYMUX_MERCHANT_SECRET")
    return Client(url, merchant_id, secret)


def _show(obj: dict[str, Any], field: str | None) -> None:
    if field is None:
        print(json.dumps(obj, indent=2, ensure_ascii=False))
        return
    value: Any = obj
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    print("" if value is None else value)


def cmd_pay(args: argparse.Namespace) -> int:
    fields = {"merchant_order_no": args.order or "order-" + secrets.token_hex(6), "amount": args.amount,
              "currency": args.currency, "subject": args.subject}
    for key in ("channel", "method", "notify_url"):
        if getattr(args, key):
            fields[key] = getattr(args, key)
    _show(_client(args).create_payment(idempotency_key=args.idempotency_key, **fields), args.field)
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    _show(_client(args).get_payment(args.payment_id, sync=args.sync), args.field)
    return 0


def cmd_close(args: argparse.Namespace) -> int:
    _show(_client(args).close_payment(args.payment_id), args.field)
    return 0


def cmd_refund(args: argparse.Namespace) -> int:
    fields = {"merchant_refund_no": args.refund_no or "refund-" + secrets.token_hex(6), "amount": args.amount}
    if args.reason:
        fields["reason"] = args.reason
    _show(_client(args).create_refund(args.payment_id, **fields), args.field)
    return 0


def cmd_get_refund(args: argparse.Namespace) -> int:
    _show(_client(args).get_refund(args.refund_id), args.field)
    return 0


def _signs_in(p: argparse.ArgumentParser, who: str) -> None:
    """--by NAME and --password-stdin: a command an operator answers for signs them in first."""
    p.add_argument("--by", required=True, metavar="NAME", help=f"{who}: an operator, who signs in with their "
                                                               "password (asked for, or --password-stdin)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paymux", description="paymux payment gateway")
    parser.add_argument("--config", help="config file (default: $PAYMUX_CONFIG or conf/paymux.toml)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the gateway")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(fn=cmd_serve)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply migrations").set_defaults(fn=cmd_db_upgrade)

    sub.add_parser("init", help="key file, schema and a demo merchant (idempotent)").set_defaults(fn=cmd_init)

    p = sub.add_parser("plugins", help="installed plugins and configured channel accounts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_plugins)

    p = sub.add_parser("reconcile", help="reconcile channel statements against the books")
    p.add_argument("--account", help="one channel account (default: every enabled one with statements, in parallel)")
    p.add_argument("--date", required=True, type=_date, help="the business date, YYYY-MM-DD")
    p.add_argument("--file", help="the statement file (default: download it through the plugin)")
    p.add_argument("--defer-queries", action="store_true",
                   help="leave the channel queries that confirm late successes to `paymux recon confirm RUN_ID`")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_reconcile)

    recon = sub.add_parser("recon", help="reconciliation differences").add_subparsers(dest="recon_command",
                                                                                    required=True)
    p = recon.add_parser("confirm", help="ask the channel about a run's open status differences (late successes)")
    p.add_argument("run_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_recon_confirm)
    p = recon.add_parser("list", help="open differences (--all: resolved ones too)")
    p.add_argument("--account")
    p.add_argument("--date", type=_date)
    p.add_argument("--all", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_recon_list)
    p = recon.add_parser("resolve", help="propose how to resolve a difference (another person approves)")
    p.add_argument("item_id", type=int)
    p.add_argument("--action", required=True, choices=["adjust", "dismiss"])
    _signs_in(p, "the operator who proposes")
    p.add_argument("--reason", required=True)
    p.set_defaults(fn=cmd_recon_resolve)
    p = recon.add_parser("approve", help="approve another person's proposal: it is booked")
    p.add_argument("item_id", type=int)
    p.add_argument("--proposal", required=True, type=int,
                   help="the proposal's number as `recon list` shows it: if it has changed since, nothing is done")
    _signs_in(p, "the approver")
    p.set_defaults(fn=cmd_recon_approve)

    positions = sub.add_parser("positions", help="channel positions (prefunded for payouts)")
    positions.set_defaults(fn=cmd_positions, positions_command="list", currency="CNY", json=False)
    sub_positions = positions.add_subparsers(dest="positions_command")
    p = sub_positions.add_parser("list", help="each channel account's position")
    p.add_argument("--currency", default="CNY")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_positions)
    p = sub_positions.add_parser("topup", help="book cash sent from the reserve bank to a channel account")
    p.add_argument("account")
    p.add_argument("amount", type=int, help="minor units")
    p.add_argument("--currency", default="CNY")
    p.add_argument("--reference", required=True, help="names the transfer; booking it twice books it once")
    p.add_argument("--reason")
    _signs_in(p, "the approver who answers for the transfer")
    p.set_defaults(fn=cmd_positions)

    p = sub.add_parser("settle", help="book channel and merchant settlements due on a date")
    p.add_argument("--date", required=True, type=_date, help="the settlement date, YYYY-MM-DD")
    p.add_argument("--force", action="store_true", help="settle despite open differences (needs --by)")
    p.add_argument("--by", metavar="NAME", help="with --force: the approver who answers for it (signs in with "
                                               "their password)")
    p.add_argument("--password-stdin", action="store_true", help="read --by's password from standard input")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_settle)

    report = sub.add_parser("report", help="reports").add_subparsers(dest="report_command", required=True)
    p = report.add_parser("daily", help="per channel account and merchant: volume, fees, refunds, differences, "
                                        "settlements")
    p.add_argument("--date", required=True, type=_date)
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_report_daily)

    p = sub.add_parser("channels", help="channel accounts: health, circuit, limits used today")
    p.add_argument("--minutes", type=int, default=15, help="health over the last MINUTES (default 15)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_channels)

    ledger = sub.add_parser("ledger", help="the books").add_subparsers(dest="ledger_command", required=True)
    ledger.add_parser("check", help="verify every ledger invariant; exits 1 naming each violation").set_defaults(
        fn=cmd_ledger_check)
    p = ledger.add_parser("balances", help="balances as a table")
    p.add_argument("--owner", help="platform, merchant[:ID] or channel_account[:ID]")
    p.set_defaults(fn=cmd_ledger_balances)
    for action in ("freeze", "unfreeze"):
        p = ledger.add_parser(action, help=f"{action} part of a merchant's available balance")
        p.add_argument("merchant_id")
        p.add_argument("amount", type=int, help="minor units")
        p.add_argument("--currency", default="CNY")
        p.add_argument("--reference", required=True, help="names the hold; freeze and unfreeze it once each")
        p.add_argument("--reason")
        _signs_in(p, "an operator who freezes, an approver who unfreezes")
        p.set_defaults(fn=cmd_ledger_hold)

    events = sub.add_parser("events", help="merchant events").add_subparsers(dest="events_command", required=True)
    p = events.add_parser("redeliver", help="send an event to its merchant again")
    p.add_argument("event_id")
    _signs_in(p, "the operator who sends it")
    p.set_defaults(fn=cmd_events_redeliver)

    sub.add_parser("worker", help="deliver merchant events and query open payments without serving HTTP "
                                  "(run as many as you like against PostgreSQL)").set_defaults(fn=cmd_worker)
    p = sub.add_parser("exceptions", help="open payments and refunds no channel answer has settled")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_exceptions)

    statement = sub.add_parser("statement", help="channel statements").add_subparsers(
        dest="statement_command", required=True)
    p = statement.add_parser("download", help="download a channel account's statement file for one day")
    p.add_argument("--account", required=True)
    p.add_argument("--date", required=True, type=_date, help="YYYY-MM-DD, the channel's business date")
    p.add_argument("--out", help="file to write (default: ACCOUNT-DATE.statement)")
    p.set_defaults(fn=cmd_statement_download)

    p = sub.add_parser("simulate", help="run a channel simulator (e.g. wechatpay) for local development")
    p.add_argument("plugin")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090)
    p.set_defaults(fn=cmd_simulate)

    merchant = sub.add_parser("merchant", help="merchants").add_subparsers(dest="merchant_command", required=True)
    p = merchant.add_parser("create", help="create a merchant and print its id and secret")
    p.add_argument("name")
    p.add_argument("--notify-url")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_merchant_create)

    operator = sub.add_parser("operator", help="console operators").add_subparsers(dest="operator_command",
                                                                                  required=True)
    by_help = ("once an approver exists: the approver who answers for it (signs in with their password, asked "
               "for or the next line of --password-stdin)")
    p = operator.add_parser("create", help="create an operator (viewer, operator or approver)")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=("viewer", "operator", "approver"))
    p.add_argument("--password-stdin", action="store_true", help="read the password(s) from standard input")
    p.add_argument("--by", metavar="NAME", help=by_help)
    p.set_defaults(fn=cmd_operator)
    p = operator.add_parser("password", help="set an operator's password; every session of theirs ends")
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true", help="read the password(s) from standard input")
    p.add_argument("--by", metavar="NAME", help=by_help)
    p.set_defaults(fn=cmd_operator)
    for name, text in (("list", "list operators"), ("disable", "stop an operator signing in; their sessions end"),
                       ("enable", "let a disabled operator sign in again")):
        p = operator.add_parser(name, help=text)
        if name != "list":
            p.add_argument("name")
            p.add_argument("--password-stdin", action="store_true", help="read --by's password from standard input")
            p.add_argument("--by", metavar="NAME", help=by_help)
        p.set_defaults(fn=cmd_operator)

    def client_command(name: str, fn: Any, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--url", help="gateway URL (default: $PAYMUX_URL or the one `paymux init` saved)")
        p.add_argument("--merchant-id", help="default: $PAYMUX_MERCHANT_ID or the demo merchant")
        p.add_argument("--field", help="print only this field, e.g. id, status or action.url")
        p.set_defaults(fn=fn)
        return p

    p = client_command("pay", cmd_pay, "create a payment on a running gateway")
    p.add_argument("--amount", type=int, required=True, help="minor units (fen)")
    p.add_argument("--currency", default="CNY")
    p.add_argument("--subject", default="paymux test payment")
    p.add_argument("--order", help="merchant_order_no (default: a random one)")
    p.add_argument("--channel")
    p.add_argument("--method")
    p.add_argument("--notify-url")
    p.add_argument("--idempotency-key")
    p = client_command("get", cmd_get, "show a payment")
    p.add_argument("payment_id")
    p.add_argument("--sync", action="store_true", help="ask the channel first")
    p = client_command("close", cmd_close, "close an unpaid payment")
    p.add_argument("payment_id")
    p = client_command("refund", cmd_refund, "refund a payment")
    p.add_argument("payment_id")
    p.add_argument("--amount", type=int, required=True)
    p.add_argument("--refund-no")
    p.add_argument("--reason")
    p = client_command("get-refund", cmd_get_refund, "show a refund")
    p.add_argument("refund_id")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from gateway.client import PaymuxAPIError

    try:
        return args.fn(args)
    except ConfigError as exc:
        print(f"paymux: {exc}", file=sys.stderr)
        return 2
    except (PaymuxAPIError, Refused) as exc:
        print(f"paymux: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
