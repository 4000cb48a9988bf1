"""What paymux said to channels and what they answered, kept for operators (the console shows a
payment's exchanges) with every secret, account number and person's identity redacted (gateway/redact.py).

The channels' shared httpx client calls `ExchangeRecorder.on_request` / `on_response` (event hooks)
for every request a plugin makes; the core says, around each channel call, which account,
operation and reference (out-trade-no, out-refund-no, …) it is for (`exchange_context`). Rows are
buffered in memory and written in batches by the same loop that flushes channel health, so a
channel call never waits on the database for them; a crash loses at most the last second of this
diagnostic record, never anything about money. Kept 30 days.
"""
from __future__ import annotations

import contextlib
import contextvars
import time
from collections import deque
from datetime import datetime, timedelta
from typing import Any, Iterator

import httpx
import structlog
from sqlalchemy import Connection, insert

from gateway.clock import Clock
from gateway.models import ChannelExchange
from gateway.redact import redact, redacted_body  # noqa: F401  (the console shows bodies through these)

exchanges = ChannelExchange.__table__
KEEP = timedelta(days=30)
MAX_BUFFERED = 10_000

_CURRENT: contextvars.ContextVar[tuple[str, str, str | None] | None] = contextvars.ContextVar(
    "paymux_exchange", default=None)


@contextlib.contextmanager
def exchange_context(account_id: str, operation: str, reference: str | None) -> Iterator[None]:
    token = _CURRENT.set((account_id, operation, reference))
    try:
        yield
    finally:
        _CURRENT.reset(token)


class ExchangeRecorder:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.buffer: deque[dict[str, Any]] = deque(maxlen=MAX_BUFFERED)

    def hooks(self) -> dict[str, list[Any]]:
        return {"request": [self.on_request], "response": [self.on_response]}

    async def on_request(self, request: httpx.Request) -> None:
        request.extensions["paymux_started"] = time.perf_counter()

    async def on_response(self, response: httpx.Response) -> None:
        current = _CURRENT.get()
        if current is None:        # not a channel call the core made (a statement file, say)
            return
        await response.aread()
        request = response.request
        started = request.extensions.get("paymux_started", time.perf_counter())
        account, operation, reference = current
        self.buffer.append({
            "at": self.clock.now(), "channel_account": account, "operation": operation, "reference": reference,
            "request_id": structlog.contextvars.get_contextvars().get("request_id"),
            "method": request.method, "url": str(request.url.copy_with(query=None))[:500],
            "status_code": response.status_code, "duration_ms": int((time.perf_counter() - started) * 1000),
            "request_body": redacted_body(request.content if _has_content(request) else b""),
            "response_body": redacted_body(response.content), "error": None})

    def failed(self, account: str, operation: str, reference: str | None, error: str, seconds: float) -> None:
        """A call that got no answer at all (a timeout, a refused connection)."""
        self.buffer.append({
            "at": self.clock.now(), "channel_account": account, "operation": operation, "reference": reference,
            "request_id": structlog.contextvars.get_contextvars().get("request_id"), "method": None, "url": None,
            "status_code": None, "duration_ms": int(seconds * 1000), "request_body": "", "response_body": "",
            "error": error[:200]})

    def flush(self, conn: Connection) -> int:
        rows = []
        while self.buffer:
            rows.append(self.buffer.popleft())
        if rows:
            conn.execute(insert(exchanges), rows)
        return len(rows)


def _has_content(request: httpx.Request) -> bool:
    try:
        request.content
    except httpx.RequestNotRead:
        return False
    return True


def purge(conn: Connection, before: datetime) -> None:
    conn.execute(exchanges.delete().where(exchanges.c.at < before))
