"""Outbound merchant notifications: an outbox written with each state change, delivered until a 2xx.

Delivery is at least once: an event is marked delivered only after a 2xx, so a crash between the
answer and the mark sends it again; each event has a stable id to deduplicate on. Events are leased
row by row (FOR UPDATE SKIP LOCKED on PostgreSQL), so any number of processes can deliver.

Each delivery resolves the URL's host once, refuses loopback, private, link-local, metadata and
other non-public addresses, and connects to the address it checked (gateway/netguard.py); a refusal
is recorded as "refused" before any connection, so nothing tells whether something answers there.
Redirects are never followed and proxies from the environment never used.
"""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import Connection, Row, and_, bindparam, or_, select, update
from structlog.typing import FilteringBoundLogger

from gateway import netguard
from gateway.clock import Clock
from gateway.db import Database
from gateway.ids import public_id
from gateway.models import Merchant, MerchantEvent
from gateway.resources import iso
from gateway.secretbox import SecretBox
from gateway.signing import EVENT_SIGNATURE_HEADER, sign_event
from ledger import driver

events = MerchantEvent.__table__
merchants = Merchant.__table__
# Built once and sent on the driver's cursor (ledger.driver), its values converted by their columns' types:
# every state change writes one (a Core statement costs more than its execution).
_EVENT_COLUMNS = ("id", "merchant_id", "type", "resource_id", "payload", "notify_url", "status", "attempts", "request_id",
                  "next_attempt_at", "created_at")
_INSERT_EVENT_SQL = (f"INSERT INTO merchant_events ({', '.join(_EVENT_COLUMNS)}) "
                     f"VALUES ({', '.join(':' + c for c in _EVENT_COLUMNS)})")
MERCHANT_URL = select(merchants.c.notify_url).where(merchants.c.id == bindparam("b_merchant_id"))
BATCH = 20
# The delivery loop's statements, built once (a claim every poll, a settle every delivery).
_DUE = (select(events.c.seq).where(
    events.c.status == "pending", events.c.next_attempt_at <= bindparam("b_now"),
    or_(events.c.lease_until.is_(None), events.c.lease_until < bindparam("b_now")))
    .order_by(events.c.next_attempt_at).limit(BATCH))
_DUE_LOCKED = _DUE.with_for_update(skip_locked=True)   # PostgreSQL: processes claim different rows
_LEASE = (update(events).where(events.c.seq.in_(bindparam("b_seqs", expanding=True)))
          .values(lease_until=bindparam("b_until")))
_CLAIMED = (select(events, merchants.c.secret_sealed).join(merchants, merchants.c.id == events.c.merchant_id)
            .where(events.c.seq.in_(bindparam("b_seqs", expanding=True))))
_SETTLE = update(events).where(events.c.seq == bindparam("b_seq"), events.c.status == "pending")


def record_event(conn: Connection, merchant_id: str, event_type: str, resource_id: str, payload: dict[str, Any],
                 notify_url: str | None, now: datetime, *, look_up: bool = True, at_commit: bool = False) -> str:
    """Write one event in the caller's transaction (the one that made the change it announces). Without a
    notify_url, the merchant's is looked up, unless the caller has looked already (look_up=False).
    at_commit: nothing in the transaction reads the event after this; it is sent with the COMMIT
    (ledger.driver.at_commit)."""
    if notify_url is None and look_up:
        notify_url = conn.execute(MERCHANT_URL, {"b_merchant_id": merchant_id}).scalar()
    event_id = public_id("evt")
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    row = {"id": event_id, "merchant_id": merchant_id, "type": event_type, "resource_id": resource_id,
           "payload": payload, "notify_url": notify_url, "status": "pending" if notify_url else "no_endpoint",
           "attempts": 0, "request_id": request_id, "next_attempt_at": now if notify_url else None, "created_at": now}
    send = driver.at_commit if at_commit else driver.execute
    send(conn, driver.in_style(_INSERT_EVENT_SQL, conn.dialect.name), driver.bound(conn, events, row))
    return event_id


def event_object(row: Row) -> dict[str, Any]:
    return {"id": row.id, "object": "event", "type": row.type, "created_at": iso(row.created_at),
            "data": {"object": row.payload}}


def event_body(row: Row) -> bytes:
    text = json.dumps(event_object(row), separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:   # a lone surrogate stored before input refused them: escaped, still JSON
        return json.dumps(event_object(row), separators=(",", ":")).encode()


class Notifier:
    def __init__(self, db: Database, box: SecretBox, clock: Clock, log: FilteringBoundLogger,
                 schedule: tuple[float, ...], timeout: float, poll: float, lease_seconds: float = 120.0,
                 allow_private_networks: bool = False) -> None:
        self.db, self.box, self.clock, self.log = db, box, clock, log
        self.lease = timedelta(seconds=lease_seconds)
        self.schedule, self.poll = schedule, poll
        self.allow_private_networks = allow_private_networks
        # No redirects (a 3xx is a failed delivery) and no proxy from the environment (it would resolve
        # the name itself, and reach for us what we refuse to).
        self.http = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)

    def _claim(self, conn: Connection) -> list[Row]:
        now = self.clock.now()
        due = _DUE_LOCKED if conn.dialect.name == "postgresql" else _DUE
        seqs = [row.seq for row in conn.execute(due, {"b_now": now})]
        if not seqs:
            return []
        conn.execute(_LEASE, {"b_seqs": seqs, "b_until": now + self.lease})
        return conn.execute(_CLAIMED, {"b_seqs": seqs}).all()

    async def deliver_due(self) -> int:
        """Deliver every event that is due now; returns how many were attempted."""
        rows = await self.db.tx(self._claim)
        if not rows:
            return 0
        errors = await asyncio.gather(*(self._deliver(row) for row in rows))
        # One transaction records the whole batch; a crash before it leaves the leases to expire and
        # the events to be sent again (at-least-once: merchants deduplicate by event id).
        await self.db.tx(lambda conn: [self._settle(conn, row, error) for row, error in zip(rows, errors)])
        return len(rows)

    async def _deliver(self, row: Row) -> str | None:
        body = event_body(row)
        secret = self.box.open(row.secret_sealed, row.merchant_id)
        headers = {"Content-Type": "application/json", "User-Agent": "paymux-notifier",
                   EVENT_SIGNATURE_HEADER: sign_event(secret, body, self.clock.timestamp())}
        if row.request_id:   # the request that made the change, to follow it through both sides' logs
            headers["Paymux-Request-Id"] = row.request_id
        error = None
        try:
            target = await netguard.pin(row.notify_url, self.allow_private_networks)
        except netguard.Refused as exc:
            return f"refused: {exc}"
        try:
            response = await self.http.post(target.url, content=body, headers={**headers, **target.headers},
                                            extensions=target.extensions)
            if not 200 <= response.status_code < 300:
                error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        return error

    def _settle(self, conn: Connection, row: Row, error: str | None) -> None:
        now = self.clock.now()
        attempts = row.attempts + 1
        if error is None:
            values: dict[str, Any] = {"status": "delivered", "delivered_at": now, "attempts": attempts,
                                      "lease_until": None, "last_error": None}
        elif attempts > len(self.schedule):
            values = {"status": "dead", "attempts": attempts, "lease_until": None, "last_error": error}
        else:
            values = {"attempts": attempts, "lease_until": None, "last_error": error,
                      "next_attempt_at": now + timedelta(seconds=self.schedule[attempts - 1])}
        conn.execute(_SETTLE, {**values, "b_seq": row.seq})
        self.log.info("event.delivery", event_id=row.id, type=row.type, attempt=attempts,
                      outcome=values.get("status", "retry"), error=error)

    async def run(self) -> None:
        while True:
            try:
                while await self.deliver_due() == BATCH:
                    pass
            except Exception as exc:  # noqa: BLE001  a bad row or a lost database must not stop delivery
                self.log.warning("notifier.failed", error=type(exc).__name__, detail=str(exc)[:200])
            await asyncio.sleep(self.poll)

    async def aclose(self) -> None:
        await self.http.aclose()


def redeliver(conn: Connection, event_id: str, now: datetime) -> bool:
    """Queue an event again, whatever became of it (the merchant fixed its endpoint, say)."""
    return bool(conn.execute(update(events).where(and_(events.c.id == event_id, events.c.notify_url.is_not(None)))
                             .values(status="pending", next_attempt_at=now, lease_until=None)).rowcount)
