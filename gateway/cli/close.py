"""`paymux calendar` (working days, and what settles on each) and `paymux close-day status|run` (the daily
close; `paymux close` was taken: it closes a payment)."""
from __future__ import annotations

import argparse
import json
from datetime import date, timedelta
from typing import Any

from gateway.cli.common import Usage, settings_of
from gateway.close import runner
from gateway.close.schedule import CloseSchedule
from gateway.close.status import day_status
from gateway.compose import Backend
from gateway.plugins import discover_channel_types, make_plugin_manager
from gateway.workdays import CalendarUnknown, WorkingDays


def calendar(args: argparse.Namespace) -> int:
    if not 1 <= args.days <= 366:
        raise Usage("--days is 1 to 366")
    settings = settings_of(args)
    workdays = WorkingDays.from_settings({"calendar": {args.currency: args.calendar}} if args.calendar
                                         else settings.extra)
    days = workdays.of(args.currency)
    types = discover_channel_types(make_plugin_manager())
    channels = {a.id: a.settlement_days for a in settings.channel_accounts
                if a.plugin in types and types[a.plugin].statement_currency == args.currency}
    cycles = {"merchants": settings.merchant_settlement_days, **settings.merchant_settlement_overrides}
    out = []
    try:
        for i in range(args.days):
            day = args.start + timedelta(days=i)
            settles = {f"channel {a}": _span(days.settling_on(day, n)) for a, n in channels.items()}
            settles.update({f"{m} T+{n}": _span(days.settling_on(day, n)) for m, n in cycles.items()})
            advances = {}
            for merchant, n in cycles.items():
                for account, channel_n in channels.items():
                    if n < channel_n and days.is_working(day):   # paid before the channel pays: the platform's money
                        repaid = days.add(day, channel_n) if days.is_working(day) else None
                        advances[f"{merchant} via {account}"] = {
                            "repaid_on": repaid.isoformat() if repaid else None,
                            "calendar_days": (repaid - day).days if repaid else None}
            out.append({"date": day.isoformat(), "working": days.is_working(day),
                        "settles": {k: v for k, v in settles.items() if v}, "advances": advances})
    except CalendarUnknown as exc:
        raise Usage(str(exc)) from None
    if args.json:
        print(json.dumps({"currency": args.currency, "calendar": days.name, "days": out}, ensure_ascii=False))
        return 0
    print(f"{args.currency} working days by the {days.name} calendar")
    for d in out:
        what = "; ".join(f"{k}: {v}" for k, v in d["settles"].items()) or "-"
        print(f"{d['date']}  {'working' if d['working'] else 'off    '}  {what}")
        for who, advance in d["advances"].items():
            print(f"{'':21}advance: {who}'s payments of the day, paid today, repaid by the channel on "
                  f"{advance['repaid_on']} ({advance['calendar_days']} days of exposure)")
    return 0


def _span(days: list[date]) -> str:
    if not days:
        return ""
    return days[0].isoformat() if len(days) == 1 else f"{days[0].isoformat()}..{days[-1].isoformat()} ({len(days)} days)"


def status(args: argparse.Namespace) -> int:
    with Backend(settings_of(args)) as backend:
        rows = backend.in_transaction(lambda conn: day_status(conn, args.date))
    if args.json:
        print(json.dumps({"business_date": args.date.isoformat(), "closes": rows}, ensure_ascii=False))
        return 0
    if not rows:
        print(f"no close of {args.date} yet (the workers start each account's close at its publish_at, [close])")
        return 0
    for r in rows:
        print(f"{r['account']} ({r['kind']}) {r['business_date']}: {r['status']}"
              + (f", try {r['tries']}, next at {r['next_at']}" if r["status"] in ("waiting", "held", "failed") else "")
              + (f", alerted at {r['alerted_at']}" if r["alerted_at"] else "")
              + (f" - {r['held_by']}" if r["held_by"] else ""))
        for s in r["steps"]:
            counts = " ".join(f"{k}={v}" for k, v in s["counts"].items())
            print(f"  {s['step']:<11} {s['status']:<8} runs {s['runs']}  {s['finished_at'] or '-':<32} {counts}"
                  + (f"  ({s['message']})" if s["message"] and s["status"] != "done" else ""))
    return 0


def run(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    schedule = CloseSchedule.from_settings(settings.extra, {a.id for a in settings.channel_accounts})
    accounts = [a for a in schedule.accounts if args.account in (None, a.account)]
    if not accounts:
        raise Usage(f"no account {args.account!r} in [close]" if args.account else "[close] names no account")
    with Backend(settings) as backend:
        now = backend.clock.now()
        for account in accounts:
            said: Any = backend.in_transaction(lambda conn: runner.request_day(conn, account, args.date, now))
            print(f"{account.account} {args.date}: {said}")
    return 0
