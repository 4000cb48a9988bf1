"""Health of each channel account, seen from this process: a rolling window of channel calls and a
circuit breaker per account.

- Every channel call (create, query, close, refund, …) is recorded: a call that gave no trustworthy
  answer (an exception, a timeout, a 5xx, an UNKNOWN outcome) is an error; a decline is not.
- A circuit opens when, within `window_seconds`, at least `min_calls` calls were made and the share
  of errors reached `error_rate`. While open, the router sends no new payment there. After
  `cooldown_seconds` it is half-open: one new payment may go through as a probe; its success closes
  the circuit, its failure opens it again.
- Circuits are per process, as in most breakers: each server and worker judges what it sees. What
  each saw is summed into the database every few seconds (`channel_health` in minute buckets, and the
  last circuit change per account in `channel_circuits`) for `paymux channels`.
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Callable, Mapping

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite
from structlog.typing import FilteringBoundLogger

from gateway.config import CircuitConfig
from gateway.models import ChannelCircuit, ChannelHealth

health_table = ChannelHealth.__table__
circuits_table = ChannelCircuit.__table__

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass
class _Circuit:
    config: CircuitConfig
    calls: collections.deque = field(default_factory=collections.deque)   # (monotonic time, ok)
    errors: int = 0
    state: str = CLOSED
    opened_at: float = 0.0
    probe_since: float | None = None

    def trim(self, now: float) -> None:
        horizon = now - self.config.window_seconds
        while self.calls and self.calls[0][0] < horizon:
            _, ok = self.calls.popleft()
            self.errors -= not ok

    @property
    def error_rate(self) -> float:
        return self.errors / len(self.calls) if self.calls else 0.0


@dataclass
class _Bucket:
    calls: int = 0
    errors: int = 0
    timeouts: int = 0
    latency_ms: float = 0.0


class HealthBoard:
    """Rolling health and circuit per channel account, in this process."""

    def __init__(self, configs: Mapping[str, CircuitConfig], log: FilteringBoundLogger,
                 monotonic: Callable[[], float] = time.monotonic, wall: Callable[[], datetime] | None = None) -> None:
        self.circuits = {account: _Circuit(config) for account, config in configs.items()}
        self.log = log
        self.monotonic = monotonic
        self.wall = wall or (lambda: datetime.now(UTC))
        self.unflushed: dict[tuple[str, datetime], _Bucket] = collections.defaultdict(_Bucket)
        self.changes: dict[str, tuple[str, datetime, float]] = {}

    def _circuit(self, account: str) -> _Circuit:
        if account not in self.circuits:
            self.circuits[account] = _Circuit(CircuitConfig())
        return self.circuits[account]

    # ---- the router's questions ----

    def state(self, account: str) -> str:
        """closed, open, or half_open (cooled down: the next payment may probe)."""
        circuit = self._circuit(account)
        if circuit.state == OPEN and self.monotonic() - circuit.opened_at >= circuit.config.cooldown_seconds:
            self._move(account, circuit, HALF_OPEN)
        return circuit.state

    def available(self, account: str) -> bool:
        """Would a new payment be let through now (without taking the half-open probe)?"""
        state = self.state(account)
        if state == CLOSED:
            return True
        if state == HALF_OPEN:
            return not self._probe_busy(self._circuit(account))
        return False

    def begin(self, account: str) -> None:
        """A create call is about to go to `account`; in half-open it is the probe (others wait)."""
        circuit = self._circuit(account)
        if self.state(account) == HALF_OPEN:
            circuit.probe_since = self.monotonic()

    def _probe_busy(self, circuit: _Circuit) -> bool:
        # A probe that never reported back (its process task died) frees the slot after a cool-down.
        return circuit.probe_since is not None and \
            self.monotonic() - circuit.probe_since < circuit.config.cooldown_seconds

    # ---- what happened ----

    def record(self, account: str, operation: str, ok: bool, timeout: bool, seconds: float) -> None:
        now = self.monotonic()
        circuit = self._circuit(account)
        circuit.calls.append((now, ok))
        circuit.errors += not ok
        circuit.trim(now)
        minute = self.wall().replace(second=0, microsecond=0)
        bucket = self.unflushed[(account, minute)]
        bucket.calls += 1
        bucket.errors += not ok
        bucket.timeouts += timeout
        bucket.latency_ms += seconds * 1000
        if self.state(account) == HALF_OPEN:  # the probe (or any call) tells whether the channel is back
            circuit.probe_since = None
            if ok:
                circuit.calls.clear()
                circuit.errors = 0
                self._move(account, circuit, CLOSED)
            else:
                self._move(account, circuit, OPEN)
        elif circuit.state == CLOSED and not ok and len(circuit.calls) >= circuit.config.min_calls \
                and circuit.error_rate >= circuit.config.error_rate:
            self._move(account, circuit, OPEN)

    def _move(self, account: str, circuit: _Circuit, state: str) -> None:
        if state == OPEN:
            circuit.opened_at = self.monotonic()
        circuit.state = state
        self.changes[account] = (state, self.wall(), circuit.error_rate)
        log = self.log.warning if state == OPEN else self.log.info
        log("channel.circuit", channel_account=account, state=state, error_rate=round(circuit.error_rate, 3),
            calls=len(circuit.calls))

    # ---- into the database, for `paymux channels` ----

    def flush(self, conn: Connection) -> None:
        """Add what this process saw since the last flush to the shared minute buckets."""
        buckets, self.unflushed = self.unflushed, collections.defaultdict(_Bucket)
        changes, self.changes = self.changes, {}
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        for (account, minute), b in buckets.items():
            stmt = insert(health_table).values(channel_account=account, minute=minute, calls=b.calls,
                                               errors=b.errors, timeouts=b.timeouts, latency_ms=int(b.latency_ms))
            conn.execute(stmt.on_conflict_do_update(
                index_elements=["channel_account", "minute"],
                set_={name: getattr(health_table.c, name) + getattr(stmt.excluded, name)
                      for name in ("calls", "errors", "timeouts", "latency_ms")}))
        for account, (state, when, rate) in changes.items():
            stmt = insert(circuits_table).values(channel_account=account, state=state, changed_at=when,
                                                 error_rate=round(rate, 4))
            conn.execute(stmt.on_conflict_do_update(
                index_elements=["channel_account"],
                set_={"state": stmt.excluded.state, "changed_at": stmt.excluded.changed_at,
                      "error_rate": stmt.excluded.error_rate}))


@dataclass(frozen=True)
class CircuitSeen:
    """The last circuit change any process recorded for an account."""

    state: str
    since: datetime
    error_rate: float


@dataclass(frozen=True)
class RecentHealth:
    """An account's channel calls summed over a window, as every process flushed them."""

    calls: int = 0
    errors: int = 0
    timeouts: int = 0
    success_rate: float | None = None
    mean_latency_ms: float | None = None
    circuit: CircuitSeen | None = None


def recent_health(conn: Connection, since: datetime) -> dict[str, RecentHealth]:
    """Summed calls, errors, timeouts and mean latency per account since `since`, plus the last
    circuit change any process recorded."""
    found: dict[str, RecentHealth] = {}
    for row in conn.execute(select(health_table.c.channel_account, func.sum(health_table.c.calls),
                                   func.sum(health_table.c.errors), func.sum(health_table.c.timeouts),
                                   func.sum(health_table.c.latency_ms))
                            .where(health_table.c.minute >= since).group_by(health_table.c.channel_account)):
        account, calls, errors, timeouts, latency = row
        calls = int(calls or 0)
        found[account] = RecentHealth(calls, int(errors or 0), int(timeouts or 0),
                                      round(1 - int(errors or 0) / calls, 4) if calls else None,
                                      round(int(latency or 0) / calls, 1) if calls else None)
    for row in conn.execute(select(circuits_table)):
        found[row.channel_account] = replace(found.get(row.channel_account, RecentHealth()),
                                             circuit=CircuitSeen(row.state, row.changed_at, row.error_rate))
    return found


def purge(conn: Connection, before: datetime) -> None:
    conn.execute(health_table.delete().where(health_table.c.minute < before))


HEALTH_KEEP = timedelta(days=31)
