"""Working days: what T+n counts. A settlement cycle of n days ends on the n-th working day after the
business day, by the calendar of the money's currency ("碰到假日，T+1等7天").

`[calendar]` in the configuration names a calendar per currency:
- "china": China's public holidays and make-up working days (调休), from the `chinese-calendar`
  package, which knows the years the State Council has announced and refuses the others;
- a country code ("US", "GB", "SG" …): weekends and that country's public holidays from `holidays`,
  known for the years in `years` (default: 2000 to next year);
- a table {holidays = [...], workdays = [...], weekend = [5, 6], first = "…", last = "…"}, or
  {file = "calendar.toml"} holding those keys: a calendar kept in configuration, known from `first`
  to `last`; with `extends = "china"`, the dates after what chinesecalendar knows (the year the State
  Council announced in November, before the package has it).
A currency without a calendar counts every day (T+1 is the next calendar day), as before this module.
A date past what its calendar knows raises CalendarUnknown: settlement refuses rather than guesses.
"""
from __future__ import annotations

import tomllib

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError

# A holiday run is at most a few weeks: a search for the days that settle on one date looks this far back.
LONGEST_BREAK = timedelta(days=31)


class CalendarUnknown(Exception):
    """The calendar does not know a date: settling by guess could pay a day early or late."""

    code = "calendar_unknown"

    def __init__(self, currency: str, day: date, reason: str) -> None:
        super().__init__(f"the {currency} working-day calendar does not know {day.isoformat()} ({reason}); "
                         f"extend it before settling: the dates after its last in a calendar file, [calendar] "
                         f"{currency} = {{extends = \"china\", file = \"calendar.toml\"}} (last, holidays, "
                         f"workdays), or a newer chinesecalendar (pip install -U chinesecalendar)")
        self.currency, self.day = currency, day


@dataclass(frozen=True)
class DayCalendar:
    """One currency's working days. `is_working` raises CalendarUnknown outside the known range."""

    currency: str
    name: str
    working: Callable[[date], bool]
    first: date | None = None
    last: date | None = None

    def is_working(self, day: date) -> bool:
        if (self.first and day < self.first) or (self.last and day > self.last):
            raise CalendarUnknown(self.currency, day, f"the {self.name} calendar knows {self.first} to {self.last}")
        return self.working(day)

    def add(self, day: date, n: int) -> date:
        """The day T+n ends on: the n-th working day after `day` (T+0: `day` itself if it is a working
        day, else the next working day)."""
        current = day
        if n == 0:
            while not self.is_working(current):
                current += timedelta(days=1)
            return current
        while n:
            current += timedelta(days=1)
            if self.is_working(current):
                n -= 1
        return current

    def settling_on(self, settle_date: date, n: int) -> list[date]:
        """The business days whose T+n ends on `settle_date` (none if it is not a working day; after a
        holiday, the day before it and every day of it)."""
        if not self.is_working(settle_date):
            return []
        return [day for day in _days(settle_date - LONGEST_BREAK - timedelta(days=2 * n), settle_date)
                if self.add(day, n) == settle_date]


def _days(first: date, last: date) -> Iterator[date]:
    while first <= last:
        yield first
        first += timedelta(days=1)


def every_day(currency: str) -> DayCalendar:
    return DayCalendar(currency, "calendar-day", lambda day: True)


def china(currency: str) -> DayCalendar:
    import chinese_calendar

    known = [*chinese_calendar.holidays, *chinese_calendar.workdays]
    first, last = min(known).replace(month=1, day=1), max(known).replace(month=12, day=31)
    return DayCalendar(currency, "china", chinese_calendar.is_workday, first, last)


def country(currency: str, code: str, years: tuple[int, int], where: str) -> DayCalendar:
    import holidays

    try:
        public = holidays.country_holidays(code, years=range(years[0], years[1] + 1))
    except NotImplementedError:
        raise ConfigError(f"{where}: {code!r} is neither 'china' nor a country the holidays package knows") from None
    return DayCalendar(currency, code, lambda day: day.weekday() < 5 and day not in public,
                       date(years[0], 1, 1), date(years[1], 12, 31))


def from_file(currency: str, raw: Mapping[str, Any], where: str) -> DayCalendar:
    """The dates in the configuration, or in the TOML file it names (`file = "…"`, the same keys)."""
    if "file" in raw:
        try:
            raw = {**tomllib.loads(Path(str(raw["file"])).read_text()), **{k: v for k, v in raw.items() if k != "file"}}
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{where}.file cannot be read as TOML: {exc}") from None
    base = raw.get("extends")
    if base is not None:   # a built-in calendar, and these dates after its last (a year it does not know yet)
        if base != "china":
            raise ConfigError(f"{where}.extends may name \"china\"")
        known = china(currency)
        assert known.last is not None
        own = from_file(currency, {k: v for k, v in raw.items() if k != "extends"}, where)
        if own.first is None or own.first > known.last + timedelta(days=1):
            raise ConfigError(f"{where}: first is after {known.last + timedelta(days=1)}: a gap the calendars "
                              f"would not know")
        return DayCalendar(currency, "china+configured", lambda day: known.working(day) if day <= known.last
                           else own.working(day), known.first, own.last)
    unknown = set(raw) - {"holidays", "workdays", "weekend", "first", "last"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    try:
        off = {date.fromisoformat(str(d)) for d in raw.get("holidays", [])}
        on = {date.fromisoformat(str(d)) for d in raw.get("workdays", [])}
        first, last = date.fromisoformat(str(raw["first"])), date.fromisoformat(str(raw["last"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"{where} needs first and last (YYYY-MM-DD) and dates in holidays/workdays: {exc}") from None
    weekend = set(raw.get("weekend", [5, 6]))
    return DayCalendar(currency, "configured", lambda day: day in on or (day.weekday() not in weekend
                                                                         and day not in off), first, last)


@dataclass(frozen=True)
class WorkingDays:
    """The calendars of every currency, from `[calendar]`."""

    calendars: Mapping[str, DayCalendar] = field(default_factory=dict)

    def of(self, currency: str) -> DayCalendar:
        return self.calendars.get(currency) or every_day(currency)

    @classmethod
    def from_settings(cls, extra: Mapping[str, Any]) -> "WorkingDays":
        raw = extra.get("calendar") or {}
        if not isinstance(raw, Mapping):
            raise ConfigError("[calendar] must be a table of currency = calendar")
        today = date.today()
        years = raw.get("years", [2000, today.year + 1])
        if not (isinstance(years, list) and len(years) == 2 and all(isinstance(y, int) for y in years)):
            raise ConfigError("calendar.years must be [first year, last year]")
        calendars: dict[str, DayCalendar] = {}
        for currency, spec in raw.items():
            if currency == "years":
                continue
            where = f"calendar.{currency}"
            if isinstance(spec, Mapping):
                calendars[currency] = from_file(currency, spec, where)
            elif spec == "china":
                calendars[currency] = china(currency)
            elif spec in ("none", "every_day"):
                calendars[currency] = every_day(currency)
            elif isinstance(spec, str):
                calendars[currency] = country(currency, spec, (years[0], years[1]), where)
            else:
                raise ConfigError(f"{where} must be \"china\", a country code or a table of dates")
        return cls(calendars)
