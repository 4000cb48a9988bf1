"""Who closes which day, once: the (account, day) rows, leased by one worker at a time, run step by step.

A worker takes a day by one conditional UPDATE (its status, lease and next try as it read them), so of two
workers one wins; a day whose worker died is taken again once its lease has passed, and resumes at the
first step not done (each step is idempotent, so one cut mid-step is run again, booking nothing twice).
"""
from __future__ import annotations

import asyncio
import os
import socket
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter
from sqlalchemy import Connection, Row, and_, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.close.schedule import AccountSchedule, CloseSchedule
from gateway.close.steps import STEPS, DayContext, Step, StepResult
from gateway.models import CloseDay, CloseStep

if TYPE_CHECKING:
    from gateway.service import Gateway

days = CloseDay.__table__
steps = CloseStep.__table__
RETRY_HELD = timedelta(hours=1)   # a held day is looked at again this often (an operator may have resolved it)
_ALERTS: dict[int, Counter] = {}


def schedule_of(gateway: "Gateway") -> CloseSchedule:
    return CloseSchedule.from_settings(gateway.settings.extra, {a.id for a in gateway.settings.channel_accounts})


def alerts(gateway: "Gateway") -> Counter:
    """paymux_close_alerts{account,reason}: a statement still missing at its deadline (one per day)."""
    key = id(gateway.metrics.registry)
    if key not in _ALERTS:
        _ALERTS[key] = Counter("paymux_close_alerts", "Daily-close alerts: statements still missing at the deadline",
                               ["account", "reason"], registry=gateway.metrics.registry)
    return _ALERTS[key]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


def _insert(conn: Connection) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)


def ensure_days(conn: Connection, schedule: CloseSchedule, gateway: "Gateway", now: datetime) -> None:
    """A row for every (account, day) whose file is due by now (the rows already there are left alone)."""
    for account, business_date, due_at in schedule.due(gateway.ledger.day, now):
        conn.execute(_insert(conn)(days).values(account=account.account, kind=account.kind,
                                                business_date=business_date, status="waiting", next_at=due_at,
                                                tries=0).on_conflict_do_nothing())


def request_day(conn: Connection, account: AccountSchedule, business_date: date, now: datetime) -> str:
    """Run a day again from its first step (each is idempotent: what was booked is not booked twice), due
    now for the next worker; refused while a worker runs it. What became of the request."""
    row = conn.execute(select(days).where(days.c.account == account.account,
                                          days.c.business_date == business_date)).first()
    if row is None:
        conn.execute(_insert(conn)(days).values(account=account.account, kind=account.kind, business_date=business_date,
                                                status="waiting", next_at=now, tries=0).on_conflict_do_nothing())
        return "queued"
    if row.status == "running" and row.lease_until is not None and _aware(row.lease_until) >= now:
        return f"running at {row.leased_by}: not queued again"
    conn.execute(update(steps).where(steps.c.close_day_id == row.id, steps.c.status == "done").values(status="again"))
    conn.execute(update(days).where(days.c.id == row.id).values(status="waiting", next_at=now, lease_until=None,
                                                                tries=0, finished_at=None))
    return "queued again"


def _aware(at: datetime) -> datetime:
    """SQLite gives back the UTC times it was given without their zone."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def claim(conn: Connection, now: datetime, who: str, lease: timedelta) -> Row | None:
    """The oldest day due (or whose worker's lease passed), now leased here; None if none (or another won)."""
    row = conn.execute(select(days).where(or_(
        and_(days.c.status.in_(("waiting", "held", "failed")), days.c.next_at <= now),
        and_(days.c.status == "running", days.c.lease_until < now)))
        .order_by(days.c.business_date, days.c.id).limit(1)).first()
    if row is None:
        return None
    same = and_(days.c.status == row.status, days.c.next_at == row.next_at,
                days.c.lease_until == row.lease_until if row.lease_until is not None else days.c.lease_until.is_(None))
    won = conn.execute(update(days).where(days.c.id == row.id, same).values(
        status="running", lease_until=now + lease, leased_by=who, started_at=row.started_at or now))
    return conn.execute(select(days).where(days.c.id == row.id)).first() if won.rowcount == 1 else None


def _step_rows(conn: Connection, day_id: int) -> dict[str, Row]:
    return {r.step: r for r in conn.execute(select(steps).where(steps.c.close_day_id == day_id))}


def _start_step(conn: Connection, day: Row, step: Step, now: datetime, lease: timedelta, before: Row | None) -> int:
    """The step is running; the day's lease is renewed for it (a slow day is not taken by another meanwhile).
    Its row still running from before is a worker killed in it: what that left half-done is put right first
    (the step's cut_off); how many things were."""
    put_right = 0
    if before is not None and before.status == "running" and step.cut_off is not None:
        put_right = step.cut_off(conn, day.account, day.business_date, _aware(before.started_at), now)
    day_id, name = day.id, step.name
    conn.execute(update(days).where(days.c.id == day_id).values(lease_until=now + lease))
    if conn.execute(update(steps).where(steps.c.close_day_id == day_id, steps.c.step == name)
                    .values(status="running", runs=steps.c.runs + 1, started_at=now, finished_at=None,
                            message=None)).rowcount == 0:
        conn.execute(insert(steps).values(close_day_id=day_id, step=name, status="running", runs=1, started_at=now))
    return put_right


def _end_step(conn: Connection, day_id: int, name: str, result: StepResult, now: datetime) -> None:
    conn.execute(update(steps).where(steps.c.close_day_id == day_id, steps.c.step == name).values(
        status=result.status, finished_at=now, counts=result.counts or None, message=result.message))


async def run_day(gateway: "Gateway", schedule: CloseSchedule, row: Row) -> str:
    """Run a leased day's steps not done yet, in order; the day's status after it. A step waiting or failed
    stops the day there; a held one does not stop the steps after it (the day stays held, with its reason)."""
    clock, db = gateway.clock, gateway.db
    account = schedule.of(row.account)
    deadline = account.deadline_at(gateway.ledger.day, row.business_date) if account else None
    done = await db.tx(lambda conn: _step_rows(conn, row.id))
    earlier = {name: dict(r.counts or {}) for name, r in done.items() if r.status == "done"}
    held: tuple[str, StepResult] | None = None
    for step in [s for s in STEPS if row.kind in s.kinds]:
        if step.name in earlier:
            continue
        now = clock.now()
        put_right = await db.tx(lambda conn: _start_step(conn, row, step, now, timedelta(
            seconds=schedule.lease_seconds), done.get(step.name)))
        if put_right:
            gateway.log.warning("close.step_cut_off", channel_account=row.account, day=str(row.business_date),
                                step=step.name, put_right=put_right)
        ctx = DayContext(gateway, row.account, row.business_date, now, earlier, deadline)
        try:
            result = await step.run(ctx)
        except Exception as exc:  # noqa: BLE001  (written on the step for the operator; the worker goes on)
            gateway.log.exception("close.step_failed", channel_account=row.account, day=str(row.business_date), step=step.name)
            result = StepResult("failed", message=f"{type(exc).__name__}: {str(exc)[:400]}")
        finished = clock.now()
        await db.tx(lambda conn: _end_step(conn, row.id, step.name, result, finished))
        gateway.log.info("close.step", channel_account=row.account, day=str(row.business_date), step=step.name,
                         status=result.status, **{k: v for k, v in result.counts.items() if k != "file"})
        if result.status == "held":   # what is held waits for a person; the statements and report still go out
            held = held or (step.name, result)
            continue
        if result.status != "done":
            await _stop(gateway, schedule, row, step.name, result, finished)
            return result.status
        earlier[step.name] = result.counts
    if held is not None:
        await _stop(gateway, schedule, row, held[0], held[1], clock.now())
        return "held"
    await db.tx(lambda conn: conn.execute(update(days).where(days.c.id == row.id).values(
        status="done", finished_at=clock.now(), lease_until=None, message=None)))
    return "done"


async def _stop(gateway: "Gateway", schedule: CloseSchedule, row: Row, step: str, result: StepResult,
                now: datetime) -> None:
    """A step that cannot finish now: when to try again, and the alert once a missing file is past its deadline."""
    account = schedule.of(row.account)
    values: dict[str, Any] = {"status": result.status, "lease_until": None,
                              "message": f"{step}: {result.message or result.status}"[:500]}
    if result.status == "held":
        values["next_at"] = now + RETRY_HELD
    else:
        values["next_at"] = now + schedule.retry_after(row.tries)
        values["tries"] = row.tries + 1
    deadline = account.deadline_at(gateway.ledger.day, row.business_date) if account else None
    if result.status == "waiting" and row.alerted_at is None and deadline is not None and now >= deadline:
        values["alerted_at"] = now
        alerts(gateway).labels(row.account, "statement_missing").inc()
        gateway.log.error("alert.close_statement_missing", channel_account=row.account, day=str(row.business_date),
                          deadline=deadline.isoformat(), tries=row.tries + 1, message=result.message)
    await gateway.db.tx(lambda conn: conn.execute(update(days).where(days.c.id == row.id).values(**values)))


async def tick(gateway: "Gateway", schedule: CloseSchedule | None = None, who: str | None = None) -> int:
    """One pass: add the days now due, then run every day due, one at a time; how many were run."""
    schedule = schedule or schedule_of(gateway)
    if not schedule.accounts:
        return 0
    who = who or worker_name()
    await gateway.db.tx(lambda conn: ensure_days(conn, schedule, gateway, gateway.clock.now()))
    ran = 0
    lease = timedelta(seconds=schedule.lease_seconds)
    while (row := await gateway.db.tx(lambda conn: claim(conn, gateway.clock.now(), who, lease))) is not None:
        await run_day(gateway, schedule, row)
        ran += 1
    return ran


async def loop(gateway: "Gateway", poll_seconds: float | None = None, who: str | None = None) -> None:
    """`paymux worker`'s daily close: a pass every poll_seconds (`[close] poll_seconds`)."""
    schedule = schedule_of(gateway)
    while True:
        try:
            await tick(gateway, schedule, who)
        except Exception:  # noqa: BLE001  (a database hiccup: try again at the next poll)
            gateway.log.exception("close.loop_error")
        await asyncio.sleep(schedule.poll_seconds if poll_seconds is None else poll_seconds)
