"""When the janitor asks a channel about an open attempt or refund: per channel account.

Waits are counted from the row's start (so a restart keeps the schedule): the account's
`query_schedule_seconds` (or the global one), then hourly until `query_give_up_seconds`, after
which the row is an exception for people.
"""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Mapping


class QuerySchedule:
    def __init__(self, default: tuple[float, ...], give_up_seconds: float,
                 per_account: Mapping[str, tuple[float, ...]] | None = None) -> None:
        self.give_up = give_up_seconds
        self.default = list(itertools.accumulate(default)) or [give_up_seconds]
        self.per_account = {account: list(itertools.accumulate(waits)) or [give_up_seconds]
                            for account, waits in (per_account or {}).items()}

    def _offsets(self, account: str | None) -> list[float]:
        return self.per_account.get(account, self.default) if account else self.default

    def first(self, account: str | None = None) -> timedelta:
        return timedelta(seconds=self._offsets(account)[0])

    def next_at(self, started: datetime, queries: int, account: str | None = None) -> datetime | None:
        """When to ask after `queries` questions, counted from the start; None once past giving up."""
        offsets = self._offsets(account)
        if queries < len(offsets):
            offset = offsets[queries]
        else:
            offset = offsets[-1] + 3600 * (queries - len(offsets) + 1)
        return None if offset > self.give_up else started + timedelta(seconds=offset)
