"""The janitor: asks channels about what they have not told us, closes what expired, and hands what
no answer resolves to people.

- Every attempt still open (created, pending, unknown) on a processing payment, and every processing
  refund, is queried on a schedule counted from its start (10 s, 20 s, 30 s, 1 m, … then hourly);
  after query_give_up_seconds it is marked an exception (`paymux exceptions`) and left alone.
- An open attempt that is no longer its payment's current one (a failover left it behind) is closed
  at its channel rather than queried: nobody holds its action, and a close settles it for good.
- A processing payment past its expires_at is closed at the channel; if the close reveals it was
  paid, it becomes succeeded like any late success.
- Every processing row of every operation kind (gateway/operations.py: refunds, payouts, splits,
  returns, split releases, and any kind the gateway is built with) is handed to its kind's `sync` on
  the same schedule, in the registry's order. A refund, split, return or release the channel never heard of is sent again under its
  one number (never another); a payout never is — it is asked about until the channel answers or the
  settled statements prove it absent (gateway/payouts.py). A split declared with its payment is
  first sent here, once the payment succeeded (and once the channel takes splits of it). Unknown
  answers never fail anything: only the channel's own final word does (each plugin's answers table).
- Rows are leased by pushing next_query_at forward (FOR UPDATE SKIP LOCKED on PostgreSQL), so any
  number of processes share the work and none asks twice at once. Queries keep to a per-account rate.
"""
from __future__ import annotations

import asyncio
import secrets
import time
from datetime import timedelta
from typing import Any, Awaitable, Callable, Iterable, Mapping

import structlog
from sqlalchemy import Connection, Row, Select, Table, and_, or_, select, update
from structlog.typing import FilteringBoundLogger

from gateway.clock import Clock
from gateway.db import Database
from gateway.kinds import BUILTIN_KINDS
from gateway.models import Attempt, Payment
from gateway.operations import OperationKind, Operations
from gateway.payment_rows import OPEN_ATTEMPT, current_attempt
from gateway.payments import PaymentService
from gateway.schedule import QuerySchedule

attempts = Attempt.__table__
payments = Payment.__table__
BATCH = 20


class RateLimiter:
    """At most `rate` calls a second per channel account (its own `queries_per_second`, or the
    default), in this process: politeness to the channel (its query APIs are rate-limited), not a
    correctness rule."""

    def __init__(self, rate: float, per_account: Mapping[str, float] | None = None) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.intervals = {account: 1.0 / r if r > 0 else 0.0 for account, r in (per_account or {}).items()}
        self.next_free: dict[str, float] = {}
        self.lock = asyncio.Lock()

    async def wait(self, account: str) -> None:
        async with self.lock:
            now = time.monotonic()
            start = max(now, self.next_free.get(account, now))
            self.next_free[account] = start + self.intervals.get(account, self.interval)
        if start > now:
            await asyncio.sleep(start - now)


class Janitor:
    def __init__(self, db: Database, payments_service: PaymentService, operations: Operations, clock: Clock,
                 log: FilteringBoundLogger, schedule: QuerySchedule, poll: float, limiter: RateLimiter,
                 lease_seconds: float = 120.0) -> None:
        self.db, self.payments, self.operations, self.clock, self.log = db, payments_service, operations, clock, log
        self.lease = timedelta(seconds=lease_seconds)
        self.schedule = schedule
        self.poll = poll
        self.limiter = limiter

    # ---- claiming work ----

    def _lease(self, conn: Connection, table: Table, query: Select, column: str = "next_query_at") -> list[Row]:
        """A batch of due rows, each pushed `column` a lease ahead: another process's janitor skips them
        (rows it has locked meanwhile too, on PostgreSQL) until the lease passes."""
        now = self.clock.now()
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(of=table, skip_locked=True)
        rows = conn.execute(query.limit(BATCH)).all()
        if rows:
            conn.execute(update(table).where(table.c.id.in_([r.id for r in rows])).values({column: now + self.lease}))
        return rows

    def _claim_attempts(self, conn: Connection) -> list[Row]:
        now = self.clock.now()
        return self._lease(conn, attempts, select(attempts).join(payments, payments.c.id == attempts.c.payment_id).where(
            and_(payments.c.status == "processing", attempts.c.status.in_(OPEN_ATTEMPT),
                 attempts.c.exception_at.is_(None), attempts.c.next_query_at <= now))
            .order_by(attempts.c.next_query_at))

    def _claim(self, table: Table) -> Callable[[Connection], list[Row]]:
        """Lease a batch of an operation table's processing rows that are due."""
        def claim(conn: Connection) -> list[Row]:
            now = self.clock.now()
            return self._lease(conn, table, select(table).where(and_(
                table.c.status == "processing", table.c.exception_at.is_(None), table.c.next_query_at <= now))
                .order_by(table.c.next_query_at))
        return claim

    def _expired(self, conn: Connection) -> list[Row]:
        """Expired payments still processing, leased: one process closes each at its channel."""
        now = self.clock.now()
        return self._lease(conn, payments, select(payments).where(and_(
            payments.c.status == "processing", payments.c.expires_at <= now,
            or_(payments.c.expiry_lease_until.is_(None), payments.c.expiry_lease_until <= now)))
            .order_by(payments.c.expires_at), column="expiry_lease_until")

    # ---- doing it ----

    async def sweep(self) -> int:
        """One pass; returns how many things it asked about. Its log lines, channel calls and the
        events it causes carry one request id (jan_…), like a merchant request's. A row whose work
        fails is logged and left leased (asked again once its lease runs out); the pass goes on."""
        structlog.contextvars.bind_contextvars(request_id="jan_" + secrets.token_hex(8))
        work = 0
        for p in await self.db.tx(self._expired):
            await self.limiter.wait(p.channel_account)
            if await self._guarded("expiry", p.id, self._expire(p)):
                work += 1
        for attempt in await self.db.tx(self._claim_attempts):
            await self.limiter.wait(attempt.channel_account)
            if await self._guarded("attempts", attempt.id, self._ask_attempt(attempt)):
                work += 1
        for kind in self.operations:
            for row in await self.db.tx(self._claim(kind.table)):
                await self.limiter.wait(row.channel_account)
                if await self._guarded(kind.table.name, row.id, self._ask(kind, row)):
                    work += 1
            try:   # what may change after an end (a payout's return), on the kind's own schedule
                work += await kind.watch()
            except Exception as exc:  # noqa: BLE001  as a row's: logged, and the pass goes on
                self.log.warning("janitor.watch_failed", kind=kind.name, error=type(exc).__name__,
                                 detail=str(exc)[:200])
        return work

    async def _guarded(self, what: str, row_id: str, job: Awaitable[None]) -> bool:
        try:
            await job
        except Exception as exc:  # noqa: BLE001  one bad row must not stop the rest of the pass
            self.log.warning("janitor.row_failed", table=what, id=row_id, error=type(exc).__name__,
                             detail=str(exc)[:200])
            return False
        return True

    async def _expire(self, p: Row) -> None:
        closed = await self.payments.close_at_channel(p, source="expiry")
        self.log.debug("janitor.expiry", payment_id=p.id, closed=closed)

    async def _ask_attempt(self, attempt: Row) -> None:
        p, current = await self.db.tx(lambda conn: (
            conn.execute(select(payments).where(payments.c.id == attempt.payment_id)).first(),
            current_attempt(conn, attempt.payment_id).id))
        if current == attempt.id:
            await self.payments.sync_payment(p, source="janitor", attempt=attempt)
        else:  # left behind by a failover or a new attempt: retire it at its channel
            await self.payments.close_at_channel(p, source="janitor", attempt_only=True, attempt=attempt)
        await self.db.tx(lambda conn: self._reschedule(conn, attempts, attempt))

    async def _ask(self, kind: OperationKind, row: Row) -> None:
        await kind.sync(row)
        await self.db.tx(lambda conn: self._reschedule(conn, kind.table, row))

    def _reschedule(self, conn: Connection, table: Table, row: Row) -> None:
        """Still open after the question? Plan the next one, or give up and hand it to people."""
        current = conn.execute(select(table.c.status).where(table.c.id == row.id)).scalar_one()
        still_open = current in OPEN_ATTEMPT if table is attempts else current == "processing"
        if not still_open:
            return
        queries = row.queries + 1
        when = self.schedule.next_at(row.created_at, queries, row.channel_account)
        values: dict[str, Any] = {"queries": queries, "next_query_at": when}
        if when is None:
            values["exception_at"] = self.clock.now()
            self.log.warning("janitor.exception", table=table.name, id=row.id, queries=queries)
        conn.execute(update(table).where(table.c.id == row.id).values(**values))

    async def run(self) -> None:
        while True:
            try:
                while await self.sweep():
                    pass
            except Exception as exc:  # noqa: BLE001  one bad row must not stop the sweeping
                self.log.warning("janitor.failed", error=type(exc).__name__, detail=str(exc)[:200])
            await asyncio.sleep(self.poll)


def exceptions(conn: Connection, kinds: Iterable[type[OperationKind] | OperationKind] = BUILTIN_KINDS
               ) -> list[dict[str, Any]]:
    """What the janitor gave up on: open attempts, and every operation kind's rows no answer has settled."""
    found = []
    for a in conn.execute(select(attempts, payments.c.merchant_id, payments.c.amount)
                          .join(payments, payments.c.id == attempts.c.payment_id)
                          .where(and_(attempts.c.exception_at.is_not(None), payments.c.status == "processing"))):
        found.append({"kind": "payment", "id": a.payment_id, "out_trade_no": a.out_trade_no,
                      "channel_account": a.channel_account, "merchant_id": a.merchant_id, "amount": a.amount,
                      "status": a.status, "queries": a.queries, "since": a.exception_at.isoformat()})
    for kind in kinds:
        found += kind.stuck(conn)
    return found
