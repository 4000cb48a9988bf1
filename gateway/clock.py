"""One clock, passed in, so tests and the janitor can move time."""
from __future__ import annotations

from datetime import UTC, datetime


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def timestamp(self) -> int:
        return int(self.now().timestamp())
