"""The business day: the one accounting period every part of paymux counts in.

A business day is a date in the business time zone, starting at the day-cut hour instead of midnight
(a day-cut of 2 puts 01:30 on the 22nd into the 21st). The books date entries by it; routing counts
an account's daily limits from its start; reconciliation dates our successes by it and loads the
records around it. This module is the only place that does the arithmetic.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class BusinessDay:
    tz: ZoneInfo
    day_cut: timedelta

    @classmethod
    def of(cls, business_timezone: str = "Asia/Shanghai", day_cut_hour: int = 0) -> "BusinessDay":
        return cls(ZoneInfo(business_timezone), timedelta(hours=day_cut_hour))

    def date_of(self, at: datetime) -> date:
        """The business date of a moment: its date in the business time zone, after the day-cut."""
        return (at.astimezone(self.tz) - self.day_cut).date()

    def start(self, day: date) -> datetime:
        """The first moment of a business date (aware, in the business time zone): the inverse of date_of."""
        return datetime.combine(day, time(), self.tz) + self.day_cut

    def start_of_day_containing(self, at: datetime) -> datetime:
        return self.start(self.date_of(at))

    @property
    def time_zone(self) -> str:
        """The zone's name, for column-wise conversions (polars) that take a name."""
        return str(self.tz)

    @property
    def cut_seconds(self) -> int:
        """The day-cut as whole seconds: a business date is the local date of (local time - cut)."""
        return int(self.day_cut.total_seconds())
