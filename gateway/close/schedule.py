"""`[close]` in the configuration: which accounts the worker closes each day, and when.

    [close]
    lookback_days = 3                 # business days looked back for days not closed yet
    retry_seconds = [300, 600, 1800]  # waits between tries of a statement not published (then the last)
    lease_seconds = 600               # a worker holds a day this long; a killed worker's day is taken after
    [close.accounts.wxpay-main]       # a channel account: its statement of day D ...
    publish_at = "09:00"              # ... is published at this time of D + 1 (business time zone)
    deadline = "12:00"                # still missing then: an alert and a metric (the tries go on)
    [close.reserves.icbc-reserve]     # a reserve bank account: the bank file of day D
    publish_at = "10:00"
    deadline = "15:00"
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from gateway.errors import ConfigError
from ledger.days import BusinessDay

_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class AccountSchedule:
    account: str
    kind: str                 # channel | reserve
    publish_at: timedelta     # after the start of the day after the business day
    deadline: timedelta

    def due_at(self, day: BusinessDay, business_date: date) -> datetime:
        return day.start(business_date + timedelta(days=1)) + self.publish_at

    def deadline_at(self, day: BusinessDay, business_date: date) -> datetime:
        return day.start(business_date + timedelta(days=1)) + self.deadline


@dataclass(frozen=True)
class CloseSchedule:
    accounts: tuple[AccountSchedule, ...] = ()
    lookback_days: int = 3
    retry_seconds: tuple[float, ...] = (300.0, 600.0, 1800.0, 3600.0)
    lease_seconds: float = 600.0
    poll_seconds: float = 30.0

    def of(self, account: str) -> AccountSchedule | None:
        return next((a for a in self.accounts if a.account == account), None)

    def retry_after(self, tries: int) -> timedelta:
        return timedelta(seconds=self.retry_seconds[min(tries, len(self.retry_seconds) - 1)])

    def due(self, day: BusinessDay, now: datetime) -> list[tuple[AccountSchedule, date, datetime]]:
        """(account, business day, when it became due) for every day of the lookback whose file is due by now."""
        today = day.date_of(now)
        found = []
        for back in range(self.lookback_days, 0, -1):
            business_date = today - timedelta(days=back)
            for account in self.accounts:
                due_at = account.due_at(day, business_date)
                if due_at <= now:
                    found.append((account, business_date, due_at))
        return found

    @classmethod
    def from_settings(cls, extra: Mapping[str, Any], channel_accounts: set[str]) -> "CloseSchedule":
        raw = extra.get("close") or {}
        if not isinstance(raw, Mapping):
            raise ConfigError("[close] must be a table")
        unknown = set(raw) - {"accounts", "reserves", "lookback_days", "retry_seconds", "lease_seconds",
                              "poll_seconds"}
        if unknown:
            raise ConfigError(f"[close]: unknown key(s) {', '.join(sorted(unknown))}")
        accounts = []
        reserves = {r.get("id") for r in extra.get("reserve_accounts") or [] if isinstance(r, Mapping)}
        for kind, table in (("channel", "accounts"), ("reserve", "reserves")):
            for account, spec in (raw.get(table) or {}).items():
                where = f"close.{table}.{account}"
                if kind == "channel" and account not in channel_accounts:
                    raise ConfigError(f"{where}: no channel account {account!r} is configured")
                if kind == "reserve" and account not in reserves:
                    raise ConfigError(f"{where}: no reserve account {account!r} in [[reserve_accounts]]")
                if not isinstance(spec, Mapping) or set(spec) - {"publish_at", "deadline"}:
                    raise ConfigError(f"{where} may hold publish_at and deadline (\"HH:MM\")")
                publish = _time(spec.get("publish_at", "09:00"), f"{where}.publish_at")
                deadline = _time(spec.get("deadline", "12:00"), f"{where}.deadline")
                if deadline < publish:
                    raise ConfigError(f"{where}.deadline is before publish_at")
                accounts.append(AccountSchedule(account, kind, publish, deadline))
        retry = raw.get("retry_seconds", list(cls.retry_seconds))
        if not (isinstance(retry, list) and retry and all(isinstance(w, (int, float)) and w > 0 for w in retry)):
            raise ConfigError("close.retry_seconds must be a list of waits in seconds, each above 0")
        numbers = {}
        for key, least in (("lookback_days", 1), ("lease_seconds", 1), ("poll_seconds", 0.001)):
            value = raw.get(key, getattr(cls, key))
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= least):
                raise ConfigError(f"close.{key} must be a number of at least {least}")
            numbers[key] = value
        return cls(tuple(accounts), int(numbers["lookback_days"]), tuple(float(w) for w in retry),
                   float(numbers["lease_seconds"]), float(numbers["poll_seconds"]))


def _time(value: Any, where: str) -> timedelta:
    match = _TIME.match(str(value))
    if not match:
        raise ConfigError(f"{where} must be a time of day, \"HH:MM\"")
    return timedelta(hours=int(match.group(1)), minutes=int(match.group(2)))
