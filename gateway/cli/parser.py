"""The `paymux` command line as a table: every command, its arguments, and the function that runs it,
named "module:function" in gateway/cli/ and imported only when chosen (a command pays for its own
imports, not every command's). Every argument has help (tests/cli/test_parser.py walks them); amounts
are minor units (fen, cents) everywhere; `--config` is accepted before or after the command."""
from __future__ import annotations

import argparse
import textwrap
from datetime import date
from typing import Callable


OK, REFUSED, USAGE, UNREACHABLE, INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = {   # what `paymux` ends with (gateway/cli/__init__.py main); listed in --help
    OK: "done",
    REFUSED: "refused: the gateway, a channel or the books said no (the line says why), something named is "
             "unknown, or `ledger check` found violations",
    USAGE: "usage: a wrong or missing argument, a config error, missing credentials or password",
    UNREACHABLE: "cannot reach the gateway (the client commands) or the database",
    INTERRUPTED: "interrupted (Ctrl-C)",
}

MINOR = "in minor units (fen, cents: 100 is 1.00 CNY)"
JSON_HELP = "print JSON instead of a table"

# Every environment variable paymux reads (tests/cli/test_help.py checks the code reads no other).
ENVIRONMENT = {
    "PAYMUX_CONFIG": "config file when --config is not given (default: conf/paymux.toml, else the packaged one)",
    "PAYMUX_DATABASE_URL": "overrides the config's [database] url",
    "PAYMUX_SECRET_KEY": "overrides the config's secret_key (seals merchant secrets at rest)",
    "PAYMUX_PUBLIC_URL": "overrides the config's public_url (how channels reach this gateway)",
    "PAYMUX_URL": "the gateway the client commands call (default: the URL `paymux init` saved)",
    "PAYMUX_MERCHANT_ID": "the merchant the client commands sign as (needs PAYMUX_MERCHANT_SECRET too)",
    "PAYMUX_MERCHANT_SECRET": "that merchant's secret (default: the demo merchant `paymux init` saved)",
    "PAYMUX_OPERATOR_PASSWORD": "the new password for `operator create | password` instead of asking for it",
    "PAYMUX_SERVE_PROCESSES": "set by `serve --workers N` for the processes it starts (they share the default "
                              "[database] threads); not for setting by hand",
    "PAYMUX_CLOCK_OFFSET_FILE": "a testing aid, never for production: a file holding seconds the commands' clock "
                                "(the worker's too) adds to the wall clock",
}


def _epilog() -> str:
    def table(rows: dict, width: int) -> str:
        return "\n".join(textwrap.fill(str(text), 100, initial_indent=f"  {str(key):<{width}} ",
                                        subsequent_indent=" " * (width + 3)) for key, text in rows.items())

    return "\n\n".join([
        textwrap.fill(f"Amounts are {MINOR} on the command line, as in the API.", 100),
        f"exit codes:\n{table(EXIT_CODES, 4)}",
        f"environment variables:\n{table(ENVIRONMENT, 25)}",
        textwrap.fill("The client commands (pay, get, close, refund, get-refund) sign as the demo merchant "
                      "`paymux init` saved for the config (.paymux/merchant.json for paymux.toml, "
                      ".paymux/merchant-STEM.json for STEM.toml), or as --merchant-id with --merchant-secret.", 100)])


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


def _json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help=JSON_HELP)


def _list_group(sub: argparse._SubParsersAction, name: str, help_text: str, list_help: str, fn: str,
                add_list_arguments: Callable[[argparse.ArgumentParser], None]) -> argparse._SubParsersAction:
    """A group whose default is its list: `paymux NAME [--json …]` is `paymux NAME list [--json …]`."""
    group = sub.add_parser(name, help=f"{help_text} (alone: {list_help})", description=f"{help_text}; without a "
                           f"command, {list_help}")
    add_list_arguments(group)
    commands = group.add_subparsers(dest=f"{name}_command", metavar="COMMAND")
    p = commands.add_parser("list", help=list_help)
    add_list_arguments(p)
    p.set_defaults(fn=fn)
    group.set_defaults(fn=fn, **{f"{name}_command": "list"})
    return commands


def _config_everywhere(parser: argparse.ArgumentParser) -> None:
    """`--config` after the command too: each sub-parser takes it, and leaves the top one's when not given."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                child.add_argument("--config", default=argparse.SUPPRESS, metavar="FILE",
                                   help="config file (as before the command)")
                _config_everywhere(child)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paymux", description="paymux payment gateway", epilog=_epilog(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", metavar="FILE",
                        help="config file (default: $PAYMUX_CONFIG or conf/paymux.toml); also after the command")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run the gateway (the API and the console)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    p.add_argument("--workers", type=_positive, default=1, metavar="N",
                   help="processes serving the one port (default 1); each also runs the background work, which "
                        "they share through the database (on SQLite they take turns writing: use PostgreSQL)")
    p.set_defaults(fn="server:serve")

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True,
                                                                     metavar="COMMAND")
    db.add_parser("upgrade", help="apply migrations").set_defaults(fn="server:db_upgrade")

    sub.add_parser("init", help="key file, schema and a demo merchant (idempotent); the merchant is saved per "
                                "config under .paymux/").set_defaults(fn="server:init")

    p = sub.add_parser("plugins", help="installed plugins and configured channel accounts")
    _json(p)
    p.set_defaults(fn="channels:plugins")

    p = sub.add_parser("plugin", help="channel-plugin authoring").add_subparsers(
        dest="plugin_command", required=True, metavar="COMMAND")
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
    _json(p)
    p.set_defaults(fn="recon:reconcile")

    recon = sub.add_parser("recon", help="reconciliation differences").add_subparsers(
        dest="recon_command", required=True, metavar="COMMAND")
    p = recon.add_parser("confirm", help="ask the channel about a run's open status differences (late successes)")
    p.add_argument("run_id", help="the run, as `paymux reconcile` printed it")
    _json(p)
    p.set_defaults(fn="recon:confirm")
    p = recon.add_parser("list", help="open differences (--all: resolved ones too)")
    p.add_argument("--account", help="only this channel account's")
    p.add_argument("--date", type=business_date, help="only this business date's, YYYY-MM-DD")
    p.add_argument("--all", action="store_true", help="resolved differences too")
    _json(p)
    p.set_defaults(fn="recon:list_items")
    p = recon.add_parser("resolve", help="propose how to resolve a difference (another person approves)")
    p.add_argument("item_id", type=int, help="the difference, as `paymux recon list` numbers it")
    p.add_argument("--action", required=True, choices=["adjust", "dismiss"],
                   help="adjust: book the channel's figure; dismiss: close it without booking")
    _signs_in(p, "the operator who proposes")
    p.add_argument("--reason", required=True, help="why, for the approver and the audit log")
    p.set_defaults(fn="recon:resolve")
    p = recon.add_parser("approve", help="approve another person's proposal: it is booked")
    p.add_argument("item_id", type=int, help="the difference, as `paymux recon list` numbers it")
    p.add_argument("--proposal", required=True, type=int,
                   help="the proposal's number as `recon list` shows it: if it has changed since, nothing is done")
    _signs_in(p, "the approver")
    p.set_defaults(fn="recon:approve")

    def position_list_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--currency", default="CNY", help="currency of the positions (default CNY)")
        _json(p)

    positions = _list_group(sub, "positions", "channel positions (prefunded for payouts)",
                            f"each channel account's position and what payouts hold of it, {MINOR}",
                            "positions:list_positions", position_list_arguments)
    p = positions.add_parser("topup", help="book cash sent from the reserve bank to a channel account")
    p.add_argument("account", help="the channel account, as the config names it")
    p.add_argument("amount", type=int, help=f"the amount sent, {MINOR}")
    p.add_argument("--currency", default="CNY", help="default CNY")
    p.add_argument("--reference", required=True, help="names the transfer; booking it twice books it once")
    p.add_argument("--reason", help="a memo for the entry and the audit log")
    _signs_in(p, "the approver who answers for the transfer")
    p.set_defaults(fn="positions:topup")

    p = sub.add_parser("settle", help="book channel and merchant settlements due on a date")
    p.add_argument("--date", required=True, type=business_date, help="the settlement date, YYYY-MM-DD")
    p.add_argument("--force", action="store_true", help="settle despite open differences (needs --by)")
    p.add_argument("--by", metavar="NAME", help="with --force: the approver who answers for it (signs in with "
                                               "their password)")
    p.add_argument("--password-stdin", action="store_true", help="read --by's password from standard input")
    _json(p)
    p.set_defaults(fn="settlement:settle")

    report = sub.add_parser("report", help="reports").add_subparsers(dest="report_command", required=True,
                                                                     metavar="COMMAND")
    p = report.add_parser("daily", help="per channel account and merchant: volume, fees, refunds, differences, "
                                        f"settlements, {MINOR}")
    p.add_argument("--date", required=True, type=business_date, help="the business date, YYYY-MM-DD")
    _json(p)
    p.set_defaults(fn="settlement:daily_report")
    p = report.add_parser("margin", help=f"fee income less channel cost per channel account and merchant, {MINOR}")
    p.add_argument("--since", required=True, type=business_date, help="the first business date, YYYY-MM-DD")
    p.add_argument("--until", type=business_date, help="the last business date, YYYY-MM-DD (default: --since)")
    p.add_argument("--currency", default="CNY", help="default CNY")
    _json(p)
    p.set_defaults(fn="fees:margin")

    fees = sub.add_parser("fees", help="fee rules (docs/fees.md)").add_subparsers(dest="fees_command", required=True,
                                                                                  metavar="COMMAND")
    p = fees.add_parser("quote", help="the fee on an amount and the rule that produced it")
    p.add_argument("--merchant", required=True, help="the merchant id")
    p.add_argument("--account", required=True, help="the channel account id")
    p.add_argument("--method", default="*", help="the payment method, e.g. qr (default: a rule for any method)")
    p.add_argument("--amount", type=int, required=True, help=f"the amount, {MINOR}")
    p.add_argument("--kind", choices=("payment", "payout", "cost"), default="payment",
                   help="payment: the merchant's fee (default); payout: the merchant's payout fee; cost: what the "
                        "channel charges us")
    p.add_argument("--volume", type=int, help="the merchant's month volume a tier is chosen by (default: its "
                                              f"succeeded payments this month before today), {MINOR}")
    _json(p)
    p.set_defaults(fn="fees:quote")

    p = sub.add_parser("channels", help="channel accounts: health, circuit, limits used today")
    p.add_argument("--minutes", type=int, default=15, help="health over the last MINUTES (default 15)")
    _json(p)
    p.set_defaults(fn="channels:channels")

    ledger = sub.add_parser("ledger", help="the books").add_subparsers(dest="ledger_command", required=True,
                                                                       metavar="COMMAND")
    ledger.add_parser("check", help="verify every ledger invariant; exits 1 naming each violation").set_defaults(
        fn="books:check")
    p = ledger.add_parser("balances", help=f"balances as a table, {MINOR}")
    p.add_argument("--owner", help="platform, merchant[:ID] or channel_account[:ID] (an unknown ID: exit 1)")
    _json(p)
    p.set_defaults(fn="books:balances")
    for action in ("freeze", "unfreeze"):
        p = ledger.add_parser(action, help=f"{action} part of a merchant's available balance")
        p.add_argument("merchant_id", help="the merchant (mch_…); an unknown one is refused")
        p.add_argument("amount", type=int, help=f"the amount to {action}, {MINOR}")
        p.add_argument("--currency", default="CNY", help="default CNY")
        p.add_argument("--reference", required=True, help="names the hold; freeze and unfreeze it once each")
        p.add_argument("--reason", help="a memo for the entry and the audit log")
        _signs_in(p, "an operator who freezes, an approver who unfreezes")
        p.set_defaults(fn="books:hold")

    def event_list_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--merchant", metavar="MERCHANT_ID", help="only this merchant's events")
        p.add_argument("--type", help="only events of this type, e.g. payment.succeeded")
        p.add_argument("--status", choices=("pending", "delivered", "dead", "no_endpoint"),
                       help="only events in this delivery state")
        p.add_argument("--limit", type=_positive, default=50, help="at most this many, newest first (default 50)")
        _json(p)

    events = _list_group(sub, "events", "merchant events", "the newest merchant events and their delivery",
                         "events:list_events", event_list_arguments)
    p = events.add_parser("redeliver", help="send an event to its merchant again")
    p.add_argument("event_id", help="the event (evt_…)")
    _signs_in(p, "the operator who sends it")
    p.set_defaults(fn="events:redeliver")

    sub.add_parser("worker", help="deliver merchant events and query open payments without serving HTTP "
                                  "(run as many as you like against PostgreSQL)").set_defaults(fn="server:worker")
    p = sub.add_parser("exceptions", help=f"open payments and refunds no channel answer has settled ({MINOR})")
    _json(p)
    p.set_defaults(fn="events:exceptions")

    statement = sub.add_parser("statement", help="channel statements").add_subparsers(
        dest="statement_command", required=True, metavar="COMMAND")
    p = statement.add_parser("download", help="download a channel account's statement file for one day")
    p.add_argument("--account", required=True, help="the channel account, as the config names it")
    p.add_argument("--date", required=True, type=business_date, help="YYYY-MM-DD, the channel's business date")
    p.add_argument("--out", help="file to write (default: .paymux/statements/ACCOUNT-DATE.statement)")
    p.set_defaults(fn="channels:download_statement")

    p = sub.add_parser("simulate", help="run a channel simulator (e.g. wechatpay) for local development")
    p.add_argument("plugin", help="the plugin whose simulator to run, as `paymux plugins` names it")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8090, help="port to listen on (default 8090)")
    p.set_defaults(fn="channels:simulate")

    merchant = _list_group(sub, "merchant", "merchants", "every merchant (never their secrets)",
                           "merchants:list_merchants", _json)
    p = merchant.add_parser("create", help="create a merchant and print its id and secret")
    p.add_argument("name", help="the merchant's name, for people")
    p.add_argument("--notify-url", help="where its events are POSTed (the same rules as a payment's notify_url)")
    p.add_argument("--json", action="store_true", help="print {merchant_id, secret} as JSON")
    p.set_defaults(fn="merchants:create")

    operator = _list_group(sub, "operator", "console operators", "every operator, their role and last sign-in",
                           "operators:manage", lambda p: None)
    by_help = ("once an approver exists: the approver who answers for it (signs in with their password, asked "
               "for or the next line of --password-stdin)")
    for name, text in (("create", "create an operator (viewer, operator or approver)"),
                       ("password", "set an operator's password; every session of theirs ends"),
                       ("disable", "stop an operator signing in; their sessions end"),
                       ("enable", "let a disabled operator sign in again")):
        p = operator.add_parser(name, help=text)
        p.add_argument("name", help="the operator's sign-in name")
        if name == "create":
            p.add_argument("--role", required=True, choices=("viewer", "operator", "approver"),
                           help="viewer: reads; operator: proposes and acts; approver: approves and manages")
        if name in ("create", "password"):
            p.add_argument("--password-stdin", action="store_true",
                           help="read the new password (then --by's) from standard input, a line each; without "
                                "it, $PAYMUX_OPERATOR_PASSWORD or asked for on the terminal")
        else:
            p.add_argument("--password-stdin", action="store_true", help="read --by's password from standard input")
        p.add_argument("--by", metavar="NAME", help=by_help)
        p.set_defaults(fn="operators:manage")

    def client_command(name: str, fn: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=f"{help_text}. Signs as the demo merchant `paymux "
                           "init` saved for the config, or as --merchant-id with --merchant-secret.")
        p.add_argument("--url", help="gateway URL (default: $PAYMUX_URL or the one `paymux init` saved)")
        p.add_argument("--merchant-id", help="sign as this merchant (default: $PAYMUX_MERCHANT_ID or the demo "
                                             "merchant); needs its secret")
        p.add_argument("--merchant-secret", metavar="SECRET",
                       help="that merchant's secret (default: $PAYMUX_MERCHANT_SECRET, or the demo merchant's)")
        p.add_argument("--field", help="print only this field, e.g. id, status or action.url (structure as JSON)")
        p.set_defaults(fn=fn)
        return p

    p = client_command("pay", "payments:pay", "create a payment on a running gateway")
    p.add_argument("--amount", type=int, required=True, help=f"the amount to pay, {MINOR}")
    p.add_argument("--currency", default="CNY", help="ISO 4217 code (default CNY)")
    p.add_argument("--subject", default="paymux test payment", help="what the payer sees")
    p.add_argument("--order", help="merchant_order_no (default: a random one)")
    p.add_argument("--channel", help="the channel account to use, as `paymux plugins` lists them (default: "
                                     "the gateway's routing chooses)")
    p.add_argument("--method", help="the payment method, e.g. native or jsapi, as `paymux plugins` lists them "
                                    "(default: routing chooses one the channel account offers)")
    p.add_argument("--notify-url", help="where this payment's events are POSTed (default: the merchant's)")
    p.add_argument("--idempotency-key", help="sent as Idempotency-Key: the same key twice creates one payment")
    p = client_command("get", "payments:get", "show a payment")
    p.add_argument("payment_id", help="the payment (pay_…)")
    p.add_argument("--sync", action="store_true", help="ask the channel first")
    p = client_command("close", "payments:close", "close an unpaid payment (`paymux close status|run`: the "
                                                  "daily close, as close-day)")
    p.add_argument("payment_id", help="the payment (pay_…); `status` and `run` are the daily close's commands")
    p = client_command("refund", "payments:refund", "refund a payment")
    p.add_argument("payment_id", help="the payment (pay_…)")
    p.add_argument("--amount", type=int, required=True, help=f"the amount to refund, {MINOR}")
    p.add_argument("--refund-no", help="merchant_refund_no (default: a random one)")
    p.add_argument("--reason", help="why, as the channel is told")
    p = client_command("get-refund", "payments:get_refund", "show a refund")
    p.add_argument("refund_id", help="the refund (rfd_…)")

    bank = sub.add_parser("bank", help="the reserve bank account: import its statements (funds reconciliation)") \
        .add_subparsers(dest="bank_command", required=True, metavar="COMMAND")
    p = bank.add_parser("import", help="read a reserve account's bank file (MT940, camt.053, CSV) and reconcile it")
    p.add_argument("--account", required=True, help="the reserve account, as [[reserve_accounts]] names it")
    p.add_argument("--file", required=True, help="the bank's file")
    p.add_argument("--format", choices=("mt940", "camt053", "csv"), help="default: recognized from the content")
    p.add_argument("--date", type=business_date, help="the day the file closes (default: as the file says)")
    _json(p)
    p.set_defaults(fn="bank:import_file")
    from gateway.cli.close_args import add_commands as add_close_commands   # calendar, close-day status|run
    add_close_commands(sub, business_date, _json)

    p = sub.add_parser("reconcile-splits", help="reconcile a channel account's statement of splits (what it paid "
                                                "receivers itself) against the books; settlement waits for it")
    p.add_argument("--account", required=True, help="the channel account (its plugin declares split_statement)")
    p.add_argument("--date", required=True, type=business_date, help="the business date, YYYY-MM-DD")
    _json(p)
    p.set_defaults(fn="splits:reconcile_splits")

    _config_everywhere(parser)
    return parser
