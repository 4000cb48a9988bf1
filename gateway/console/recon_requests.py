"""Reconciliation runs started from the console. The web process only writes a request row (audited);
a `paymux worker` process claims it (an UPDATE from queued to running that one process wins), runs
it through the same Reconciler as `paymux reconcile` and, for an account with a statement of splits
(Capability.SPLIT_STATEMENT), through the same SplitReconciler as `paymux reconcile-splits`, and writes
the outcome back: the run's id or why it failed (the statement of splits' run named in the message).
The console shows each request's status."""
from __future__ import annotations

import asyncio
import os
import socket
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterable

from sqlalchemy import Connection, Row, and_, insert, or_, select, update

from gateway.channel import Capability
from gateway.console.identity import record
from gateway.errors import PaymuxError
from gateway.models import ReconRequest
from gateway.split_recon import split_reconciler

if TYPE_CHECKING:
    from gateway.service import Gateway

requests = ReconRequest.__table__
POLL_SECONDS = 1.0
RECLAIM_AFTER = timedelta(hours=1)


class RequestRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def request_run(conn: Connection, op: Row, account_ids: Iterable[str], account: str, day: date | None,
                today: date, now: datetime, *, source: str, client_ip: str | None = None) -> int:
    """Queue a run of `account` for `day` (a past or present business day); refused with a code otherwise."""
    if account not in set(account_ids):
        raise RequestRefused("unknown_channel", f"No channel account {account!r}.")
    if day is None or day > today:
        raise RequestRefused("invalid_date", "The business day is a date, today or before.")
    request_id = conn.execute(insert(requests).values(
        channel_account=account, business_date=day, status="queued", requested_by=op.name,
        requested_by_id=op.id, requested_at=now).returning(requests.c.id)).scalar_one()
    record(conn, op, "recon.request", f"channel:{account}", None,
           {"request": request_id, "business_date": day.isoformat()}, now=now, source=source, client_ip=client_ip)
    return request_id


def recent(conn: Connection, limit: int = 20) -> list[Any]:
    return conn.execute(select(requests).order_by(requests.c.id.desc()).limit(limit)).all()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


def claim(conn: Connection, now: datetime, who: str) -> Row | None:
    """The oldest queued request, now running here; None if there is none (or another worker won it).
    A request left running longer than RECLAIM_AFTER (its worker was killed) is taken again: a run of
    the same statement gives the same answer."""
    row = conn.execute(select(requests).where(or_(
        requests.c.status == "queued",
        and_(requests.c.status == "running", requests.c.started_at < now - RECLAIM_AFTER)))
        .order_by(requests.c.id).limit(1)).first()
    if row is None:
        return None
    same = (requests.c.status == "queued" if row.status == "queued"
            else and_(requests.c.status == "running", requests.c.started_at == row.started_at))
    won = conn.execute(update(requests).where(requests.c.id == row.id, same)
                       .values(status="running", started_at=now, executed_by=who))
    return row if won.rowcount == 1 else None


async def run_one(gateway: Gateway) -> bool:
    """Claim and run one queued request; False if there was none."""
    who = worker_name()
    row = await gateway.db.tx(lambda conn: claim(conn, gateway.clock.now(), who))
    if row is None:
        return False
    status, run_id, message = "failed", None, None
    try:
        report = await gateway.reconciler.reconcile(row.channel_account, row.business_date)
        run_id, message = report["run_id"], report.get("message")
        status = "done" if report["status"] != "failed" else "failed"
        if gateway.host.account(row.channel_account).supports(Capability.SPLIT_STATEMENT):
            # the day's statement of splits too, as the CLI's reconcile-splits and the close read it
            splits = await split_reconciler(gateway).reconcile(row.channel_account, row.business_date)
            said = f"statement of splits {splits['status']} (run {splits['run_id']})"
            message = f"{message}; {said}" if message else said
            if splits["status"] not in ("completed", "superseded"):
                status = "failed"
    except PaymuxError as exc:
        message = f"{exc.code}: {exc}"
    except Exception as exc:  # noqa: BLE001  (written on the request for the operator; the loop goes on)
        message = f"{type(exc).__name__}: {str(exc)[:300]}"
        gateway.log.exception("recon_request.failed", request=row.id)
    await gateway.db.tx(lambda conn: conn.execute(update(requests).where(requests.c.id == row.id).values(
        status=status, run_id=run_id, message=(message or None) and message[:500],
        finished_at=gateway.clock.now())))
    gateway.log.info("recon_request.finished", request=row.id, status=status, run_id=run_id)
    return True


async def loop(gateway: Gateway, poll_seconds: float = POLL_SECONDS) -> None:
    """`paymux worker`'s loop for requested runs: one at a time, polling while there is none."""
    while True:
        try:
            if await run_one(gateway):
                continue
        except Exception:  # noqa: BLE001  (a database hiccup: try again at the next poll)
            gateway.log.exception("recon_request.loop_error")
        await asyncio.sleep(poll_seconds)
