"""The arguments of `paymux calendar` and `paymux close status|run` (also named `close-day status|run`; their
commands: gateway/cli/close.py), apart from it so that the parser imports nothing that imports the CLI back."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date


DAY_CLOSE = ("status", "run")   # no payment id is either: `paymux close status|run` is the daily close


def day_close_alias(argv: list[str]) -> list[str]:
    """`paymux close status|run …` as `paymux close-day status|run …`: `paymux close PAYMENT_ID` closes a
    payment, and the issue's (and an operator's) name for the day's close is `close status`."""
    for i, word in enumerate(argv[:-1]):
        if word.startswith("-") or (i and argv[i - 1] == "--config"):   # an option, or --config's value
            continue
        if word == "close" and argv[i + 1] in DAY_CLOSE:
            return [*argv[:i], "close-day", *argv[i + 1:]]
        break   # the command is another one
    return argv


def add_commands(sub: argparse._SubParsersAction, business_date: Callable[[str], date],
                 json_flag: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("calendar", help="working days from a date, and what settles on each (T+n by the calendar "
                                        "of each currency, [calendar])")
    p.add_argument("--from", dest="start", required=True, type=business_date, help="the first day, YYYY-MM-DD")
    p.add_argument("--days", type=int, default=14, help="how many days to show (default 14, at most 366)")
    p.add_argument("--currency", default="CNY", help="the currency whose calendar counts (default CNY)")
    p.add_argument("--calendar", help="try a calendar before configuring it: china, or a country code (default: "
                                      "[calendar] of the currency)")
    json_flag(p)
    p.set_defaults(fn="close:calendar")
    # `paymux close PAYMENT_ID` closes a payment; `paymux close status|run` reaches these (day_close_alias)
    close = sub.add_parser("close-day", help="the daily close the workers run on the [close] schedule (also "
                                             "`paymux close status|run`)").add_subparsers(
        dest="close_command", required=True, metavar="{status,run}")
    p = close.add_parser("status", help="each account's close of a day: its steps' states, times, counts, what "
                                        "holds it up")
    p.add_argument("--date", required=True, type=business_date, help="the business day, YYYY-MM-DD")
    json_flag(p)
    p.set_defaults(fn="close:status")
    p = close.add_parser("run", help="run a day's close again, from its first step (a worker takes it at once)")
    p.add_argument("--date", required=True, type=business_date, help="the business day, YYYY-MM-DD")
    p.add_argument("--account", help="one account of [close] (default: all of them)")
    p.set_defaults(fn="close:run")
