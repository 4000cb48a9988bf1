"""Health of each channel account, seen from this process: a rolling window of channel calls and a
circuit breaker per account.

- Every channel call (create, query, close, refund, …) is recorded: a call that gave no trustworthy
  answer (an exception, a timeout, a 5xx, an UNKNOWN outcome) is an error; a decline is not.
- A circuit opens when, within `window_seconds`, at least `min_calls` calls were made and the share
  of errors reached `error_rate`. While open, the router sends no new payment there. After
  `cooldown_seconds` it is half-open: one new payment may go through as a probe; its success closes
  the circuit, its failure opens it again.
- Circuits are shared by every process on the database (`paymux serve --workers N`, `paymux worker`,
  several hosts). Each process judges the calls it makes and, every `health_flush_seconds`, adds them
  to `channel_health` (minute buckets, for `paymux channels`), writes the circuit changes it made to
  `channel_circuits` (the newer change wins) and takes the ones other processes made: a circuit opened
  anywhere is open everywhere within two flushes. The half-open probe is taken in the database, by a
  conditional UPDATE of the account's row (open or half-open, changed a cool-down ago -> half-open,
  now): one process gets it, the others wait for its answer (or for a cool-down, if it never comes).
  What one process sees is judged alone: errors are not summed across processes before opening.
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Callable, Mapping

from sqlalchemy import Connection, func, select, update
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
    probe_since: float | None = None   # when a probe was taken, here or (as the database says) elsewhere
    probe_held: bool = False           # this process took it in the database and has not sent it yet

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
        self.seen: dict[str, tuple[str, datetime]] = {}   # each account's channel_circuits row as last read or written

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
            circuit = self._circuit(account)
            return circuit.probe_held or not self._probe_busy(circuit)
        return False

    def wants_probe(self, account: str) -> bool:
        """Half-open with no probe out that this process knows of: take it in the database first (claim_probe)."""
        circuit = self._circuit(account)
        return self.state(account) == HALF_OPEN and not circuit.probe_held and not self._probe_busy(circuit)

    def begin(self, account: str) -> None:
        """A create call is about to go to `account`; in half-open it is the probe (others wait)."""
        circuit = self._circuit(account)
        if self.state(account) == HALF_OPEN:
            circuit.probe_since = self.monotonic()
            circuit.probe_held = False

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
            circuit.probe_since, circuit.probe_held = None, False
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
        if state != HALF_OPEN:   # cooling down is not news; taking the probe is written by claim_probe
            self.changes[account] = (state, self.wall(), circuit.error_rate)
        log = self.log.warning if state == OPEN else self.log.info
        log("channel.circuit", channel_account=account, state=state, error_rate=round(circuit.error_rate, 3),
            calls=len(circuit.calls))

    # ---- shared through the database: numbers for `paymux channels`, circuits for every process ----

    def flush(self, conn: Connection) -> None:
        """Add what this process saw since the last flush to the shared minute buckets, write its circuit
        changes, and take the circuit changes other processes wrote."""
        buckets, self.unflushed = self.unflushed, collections.defaultdict(_Bucket)
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        for (account, minute), b in buckets.items():
            stmt = insert(health_table).values(channel_account=account, minute=minute, calls=b.calls,
                                               errors=b.errors, timeouts=b.timeouts, latency_ms=int(b.latency_ms))
            conn.execute(stmt.on_conflict_do_update(
                index_elements=["channel_account", "minute"],
                set_={name: getattr(health_table.c, name) + getattr(stmt.excluded, name)
                      for name in ("calls", "errors", "timeouts", "latency_ms")}))
        self._write_changes(conn)
        for row in conn.execute(select(circuits_table)):
            self._take(row.channel_account, row.state, row.changed_at)

    def claim_probe(self, conn: Connection, account: str) -> bool:
        """Take the half-open probe of `account` for this process: true for one process only. The row
        must be open or half-open (a probe that never answered) since a cool-down ago; it becomes
        half-open, now. Refused, the process takes the row as it is (another's probe, or a circuit
        closed or opened again elsewhere)."""
        circuit, now = self._circuit(account), self.wall()
        self._write_changes(conn)   # this process's own opening must be in the row it claims from
        cooled = now - timedelta(seconds=circuit.config.cooldown_seconds)
        claimed = conn.execute(update(circuits_table).where(
            circuits_table.c.channel_account == account, circuits_table.c.state.in_((OPEN, HALF_OPEN)),
            circuits_table.c.changed_at <= cooled).values(state=HALF_OPEN, changed_at=now)).rowcount == 1
        if claimed:
            circuit.probe_since, circuit.probe_held = self.monotonic(), True
            self.seen[account] = (HALF_OPEN, _utc(now))
            self.log.info("channel.circuit", channel_account=account, state=HALF_OPEN, probe="taken")
            return True
        row = conn.execute(select(circuits_table).where(circuits_table.c.channel_account == account)).first()
        if row is not None:
            self._take(account, row.state, row.changed_at)
        if self.state(account) == HALF_OPEN and not circuit.probe_held:
            circuit.probe_since = circuit.probe_since or self.monotonic()   # wait for the row to say more
        return False

    def _write_changes(self, conn: Connection) -> None:
        changes, self.changes = self.changes, {}
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        for account, (state, when, rate) in changes.items():
            stmt = insert(circuits_table).values(channel_account=account, state=state, changed_at=when,
                                                 error_rate=round(rate, 4))
            conn.execute(stmt.on_conflict_do_update(   # a change another process made later stays
                index_elements=["channel_account"], where=circuits_table.c.changed_at <= stmt.excluded.changed_at,
                set_={"state": stmt.excluded.state, "changed_at": stmt.excluded.changed_at,
                      "error_rate": stmt.excluded.error_rate}))
            self.seen[account] = (state, _utc(when))

    def _take(self, account: str, state: str, changed_at: datetime) -> None:
        """Another process's circuit change, read from the database, becomes this process's circuit."""
        changed_at = _utc(changed_at)
        if self.seen.get(account) == (state, changed_at):
            return
        self.seen[account] = (state, changed_at)
        circuit = self._circuit(account)
        if circuit.state == state == CLOSED:   # nothing to take (a process starting reads every row)
            return
        since = self.monotonic() - max(0.0, (self.wall() - changed_at).total_seconds())
        if state == OPEN:
            circuit.state, circuit.opened_at, circuit.probe_since, circuit.probe_held = OPEN, since, None, False
        elif state == HALF_OPEN:   # another process's probe is out: wait for its answer
            circuit.state, circuit.opened_at, circuit.probe_since, circuit.probe_held = HALF_OPEN, since, since, False
        else:
            circuit.state, circuit.probe_since, circuit.probe_held = CLOSED, None, False
            circuit.calls.clear()
            circuit.errors = 0
        self.log.info("channel.circuit", channel_account=account, state=state, seen="elsewhere")


def _utc(at: datetime) -> datetime:
    """A timestamp as it compares with the database's (naive UTC on SQLite, aware on PostgreSQL)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


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
