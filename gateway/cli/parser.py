"""The `paymux` command line as a table: every command, its arguments, and the function that runs it,
named "module:function" in gateway/cli/ and imported only when chosen (a command pays for its own
imports, not every command's)."""
from __future__ import annotations

import argparse
from datetime import date


def business_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


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
    p.add_argument("--workers", type=_positive, default=1, metavar="N",
                   help="processes serving the one port (default 1); each also runs the background work, which "
                        "they share through the database (on SQLite they take turns writing: use PostgreSQL)")
    p.set_defaults(fn="server:serve")

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply migrations").set_defaults(fn="server:db_upgrade")

    sub.add_parser("init", help="key file, schema and a demo merchant (idempotent)").set_defaults(fn="server:init")

    p = sub.add_parser("plugins", help="installed plugins and configured channel accounts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn="channels:plugins")

    p = sub.add_parser("plugin", help="channel-plugin authoring").add_subparsers(dest="plugin_command", required=True)
    p = p.add_parser("new", help="write a new, installable channel-plugin package that passes the conformance kit")
    p.add_argument("name", help="the plugin's module and channel name: lower case letters, digits, _ (e.g. kiosk)")
    p.add_argument("--dir", default=".", help="where to write the package directory NAME/ (default: here)")
    p.set_defaults(fn="plugin:new")

    p = sub.add_parser("reconcile", help="reconcile channel statements against the books")
    p.add_argument("--account", help="one channel account (default: every enabled one with statements, in parallel)")
    p.add_argument("--date", required=True, type=business_date, help="the business date, YYYY-MM-DD")
    p.add_argument("--file", help="the statement file (default: download it through the plugin)")
    p.add_argument("--defer-queries", action="store_true",
                   help="leave the channel queries that confirm late successes to `paymux recon confirm RUN_ID`")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn="recon:reconcile")

    recon = sub.add_parser("recon", help="reconciliation differences").add_subparsers(dest="recon_command",
                                                                                    required=True)
    p = recon.add_parser("confirm", help="ask the channel about a run's open status differences (late successes)")
    p.add_argument("run_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn="recon:confirm")
    p = recon.add_parser("list", help="open differences (--all: resolved ones too)")
    p.add_argument("--account")
    p.add_argument("--date", type=business_date)
    p.add_argument("--all", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn="recon:list_items")
    p = recon.add_parser("resolve", help="propose how to resolve a difference (another person approves)")
    p.add_argument("item_id", type=int)
    p.add_argument("--action", required=True, choices=["adjust", "dismiss"])
    _signs_in(p, "the operator who proposes")
    p.add_argument("--reason", required=True)
    p.set_defaults(fn="recon:resolve")
    p = recon.add_parser("approve", help="approve another person's proposal: it is booked")
    p.add_argument("item_id", type=int)
    p.add_argument("--proposal", required=True, type=int,
                   help="the proposal's number as `recon list` shows it: if it has changed since, nothing is done")
    _signs_in(p, "the approver")
    p.set_defaults(fn="recon:approve")

    positions = sub.add_parser("positions", help="channel positions (prefunded for payouts)")
    positions.set_defaults(fn="positions:list_positions", positions_command="list", currency="CNY", json=False)
    sub_positions = positions.add_subparsers(dest="positions_command")
    p = sub_positions.add_parser("list", help="each channel account's position")
    p.add_argument("--currency", default="CNY")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn="positions:list_positions")
    p = sub_positions.add_parser("topup", help="book cash sent from the reserve bank to a channel account")
    p.add_argument("account")
    p.add_argument("amount", type=int, help="minor units")
    p.add_argument("--currency", default="CNY")
    p.add_argument("--reference", required=True, help="names the transfer; booking it twice books it once")
    p.add_argument("--reason")
    _signs_in(p, "the approver who answers for the transfer")
    p.set_defaults(fn="positions:topup")

    p = sub.add_parser("settle", help="book channel and merchant settlements due on a date")
    p.add_argument("--date", required=True, type=business_date, help="the settlement date, YYYY-MM-DD")
    p.add_argument("--force", action="store_true", help="settle despite open differences (needs --by)")
    p.add_argument("--by", metavar="NAME", help="with --force: the approver who answers for it (signs in with "
                                               "their password)")
    p.add_argument("--password-stdin", action="store_true", help="read --by's password from standard input")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn="settlement:settle")

    report = sub.add_parser("report", help="reports").add_subparsers(dest="report_command", required=True)
    p = report.add_parser("daily", help="per channel account and merchant: volume, fees, refunds, differences, "
                                        "settlements")
    p.add_argument("--date", required=True, type=business_date)
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn="settlement:daily_report")

    p = sub.add_parser("channels", help="channel accounts: health, circuit, limits used today")
    p.add_argument("--minutes", type=int, default=15, help="health over the last MINUTES (default 15)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn="channels:channels")

    ledger = sub.add_parser("ledger", help="the books").add_subparsers(dest="ledger_command", required=True)
    ledger.add_parser("check", help="verify every ledger invariant; exits 1 naming each violation").set_defaults(
        fn="books:check")
    p = ledger.add_parser("balances", help="balances as a table")
    p.add_argument("--owner", help="platform, merchant[:ID] or channel_account[:ID]")
    p.set_defaults(fn="books:balances")
    for action in ("freeze", "unfreeze"):
        p = ledger.add_parser(action, help=f"{action} part of a merchant's available balance")
        p.add_argument("merchant_id")
        p.add_argument("amount", type=int, help="minor units")
        p.add_argument("--currency", default="CNY")
        p.add_argument("--reference", required=True, help="names the hold; freeze and unfreeze it once each")
        p.add_argument("--reason")
        _signs_in(p, "an operator who freezes, an approver who unfreezes")
        p.set_defaults(fn="books:hold")

    events = sub.add_parser("events", help="merchant events").add_subparsers(dest="events_command", required=True)
    p = events.add_parser("redeliver", help="send an event to its merchant again")
    p.add_argument("event_id")
    _signs_in(p, "the operator who sends it")
    p.set_defaults(fn="events:redeliver")

    sub.add_parser("worker", help="deliver merchant events and query open payments without serving HTTP "
                                  "(run as many as you like against PostgreSQL)").set_defaults(fn="server:worker")
    p = sub.add_parser("exceptions", help="open payments and refunds no channel answer has settled")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn="events:exceptions")

    statement = sub.add_parser("statement", help="channel statements").add_subparsers(
        dest="statement_command", required=True)
    p = statement.add_parser("download", help="download a channel account's statement file for one day")
    p.add_argument("--account", required=True)
    p.add_argument("--date", required=True, type=business_date, help="YYYY-MM-DD, the channel's business date")
    p.add_argument("--out", help="file to write (default: ACCOUNT-DATE.statement)")
    p.set_defaults(fn="channels:download_statement")

    p = sub.add_parser("simulate", help="run a channel simulator (e.g. wechatpay) for local development")
    p.add_argument("plugin")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090)
    p.set_defaults(fn="channels:simulate")

    merchant = sub.add_parser("merchant", help="merchants").add_subparsers(dest="merchant_command", required=True)
    p = merchant.add_parser("create", help="create a merchant and print its id and secret")
    p.add_argument("name")
    p.add_argument("--notify-url")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn="merchants:create")

    operator = sub.add_parser("operator", help="console operators").add_subparsers(dest="operator_command",
                                                                                  required=True)
    by_help = ("once an approver exists: the approver who answers for it (signs in with their password, asked "
               "for or the next line of --password-stdin)")
    p = operator.add_parser("create", help="create an operator (viewer, operator or approver)")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=("viewer", "operator", "approver"))
    p.add_argument("--password-stdin", action="store_true", help="read the password(s) from standard input")
    p.add_argument("--by", metavar="NAME", help=by_help)
    p.set_defaults(fn="operators:manage")
    p = operator.add_parser("password", help="set an operator's password; every session of theirs ends")
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true", help="read the password(s) from standard input")
    p.add_argument("--by", metavar="NAME", help=by_help)
    p.set_defaults(fn="operators:manage")
    for name, text in (("list", "list operators"), ("disable", "stop an operator signing in; their sessions end"),
                       ("enable", "let a disabled operator sign in again")):
        p = operator.add_parser(name, help=text)
        if name != "list":
            p.add_argument("name")
            p.add_argument("--password-stdin", action="store_true", help="read --by's password from standard input")
            p.add_argument("--by", metavar="NAME", help=by_help)
        p.set_defaults(fn="operators:manage")

    def client_command(name: str, fn: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--url", help="gateway URL (default: $PAYMUX_URL or the one `paymux init` saved)")
        p.add_argument("--merchant-id", help="default: $PAYMUX_MERCHANT_ID or the demo merchant")
        p.add_argument("--field", help="print only this field, e.g. id, status or action.url")
        p.set_defaults(fn=fn)
        return p

    p = client_command("pay", "payments:pay", "create a payment on a running gateway")
    p.add_argument("--amount", type=int, required=True, help="minor units (fen)")
    p.add_argument("--currency", default="CNY")
    p.add_argument("--subject", default="paymux test payment")
    p.add_argument("--order", help="merchant_order_no (default: a random one)")
    p.add_argument("--channel")
    p.add_argument("--method")
    p.add_argument("--notify-url")
    p.add_argument("--idempotency-key")
    p = client_command("get", "payments:get", "show a payment")
    p.add_argument("payment_id")
    p.add_argument("--sync", action="store_true", help="ask the channel first")
    p = client_command("close", "payments:close", "close an unpaid payment")
    p.add_argument("payment_id")
    p = client_command("refund", "payments:refund", "refund a payment")
    p.add_argument("payment_id")
    p.add_argument("--amount", type=int, required=True)
    p.add_argument("--refund-no")
    p.add_argument("--reason")
    p = client_command("get-refund", "payments:get_refund", "show a refund")
    p.add_argument("refund_id")
    return parser
