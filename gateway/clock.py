"""One clock, passed in, so tests and the janitor can move time."""
from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.errors import ConfigError

# A testing aid, never set in production: the file named here holds an offset in seconds that the
# commands' clock (`paymux worker`'s included) adds to the wall clock, so that a test moves a real
# worker process over days. Unset (the default), the clock is the wall clock.
OFFSET_FILE_VARIABLE = "PAYMUX_CLOCK_OFFSET_FILE"


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def timestamp(self) -> int:
        return int(self.now().timestamp())


class OffsetFileClock(Clock):
    """The wall clock plus the offset (seconds, a number) the file holds, read again at most every
    `every` seconds: the test that owns the file rewrites it (whole, by a rename) to move time."""

    def __init__(self, path: Path, every: float = 0.05) -> None:
        self.path, self.every = path, every
        self._offset, self._read_at = timedelta(), float("-inf")
        self._refresh()

    def _refresh(self) -> None:
        try:
            self._offset = timedelta(seconds=float(self.path.read_text().strip()))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{OFFSET_FILE_VARIABLE}={self.path}: an offset in seconds is expected "
                              f"({type(exc).__name__}: {exc})") from None
        self._read_at = time.monotonic()

    def now(self) -> datetime:
        if time.monotonic() - self._read_at >= self.every:
            self._refresh()
        return datetime.now(UTC) + self._offset


def clock_of(environ: Mapping[str, str] = os.environ) -> Clock:
    """The commands' clock: the wall clock, unless $PAYMUX_CLOCK_OFFSET_FILE (a testing aid) names a file."""
    path = environ.get(OFFSET_FILE_VARIABLE)
    return OffsetFileClock(Path(path)) if path else Clock()
