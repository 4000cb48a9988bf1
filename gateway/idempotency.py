"""Idempotency-Key handling: the same key and body replay the first answer; concurrent
requests with one key create one thing; a crash mid-request is recovered from the resource.

The key row is claimed inside the same transaction that creates the resource, so a request
that wrote nothing (a validation error, a duplicate order) leaves no key behind.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Awaitable, Callable

from sqlalchemy import Connection, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.errors import idempotency_error, invalid_request
from gateway.models import IdempotencyKey

keys = IdempotencyKey.__table__
MAX_KEY_LENGTH = 255
# An in-progress key older than this belongs to a request that died; its resource answers for it.
STALE_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class IdempotencyClaim:
    merchant_id: str
    key: str
    request_hash: str


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes


class KeyAlreadyClaimed(Exception):
    pass


def make_claim(merchant_id: str, key: str | None, method: str, path: str, body: bytes) -> IdempotencyClaim | None:
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise invalid_request("invalid_idempotency_key",
                              f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters", "Idempotency-Key")
    digest = hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()
    return IdempotencyClaim(merchant_id, key, digest)


def claim(conn: Connection, c: IdempotencyClaim, resource_id: str, now: datetime) -> None:
    """Insert the key row in the caller's transaction; raises KeyAlreadyClaimed if it exists."""
    try:
        conn.execute(insert(keys).values(merchant_id=c.merchant_id, key=c.key, request_hash=c.request_hash,
                                         status="in_progress", resource_id=resource_id, created_at=now))
    except IntegrityError:
        raise KeyAlreadyClaimed() from None


def complete(conn: Connection, c: IdempotencyClaim, response: StoredResponse, now: datetime) -> None:
    conn.execute(update(keys).where(and_(keys.c.merchant_id == c.merchant_id, keys.c.key == c.key))
                 .values(status="completed", response_status=response.status, response_body=response.body,
                         completed_at=now))


def find(conn: Connection, c: IdempotencyClaim):  # noqa: ANN201
    return conn.execute(select(keys).where(and_(keys.c.merchant_id == c.merchant_id, keys.c.key == c.key))).first()


async def resolve_existing(run_tx: Callable, c: IdempotencyClaim, now: Callable[[], datetime],
                           recover: Callable[[str], Awaitable[StoredResponse]],
                           wait_seconds: float = 5.0) -> StoredResponse:
    """The key exists: replay its answer, wait for a concurrent twin, or recover a dead one."""
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        row = await run_tx(lambda conn: find(conn, c))
        if row is None:  # purged between our insert attempt and now: extremely old; treat as reuse
            raise idempotency_error("idempotency_key_expired", "This Idempotency-Key has expired; use a new one")
        if row.request_hash != c.request_hash:
            raise idempotency_error("idempotency_key_reused",
                                    "This Idempotency-Key was used with a different request")
        if row.status == "completed":
            return StoredResponse(row.response_status, row.response_body)
        if now() - row.created_at > STALE_AFTER and row.resource_id:
            response = await recover(row.resource_id)
            await run_tx(lambda conn: complete(conn, c, response, now()))
            return response
        if asyncio.get_running_loop().time() > deadline:
            raise idempotency_error("idempotency_in_progress",
                                    "A request with this Idempotency-Key is still in progress; retry later")
        await asyncio.sleep(0.05)


async def run_once(run_tx: Callable, c: IdempotencyClaim | None, now: Callable[[], datetime],
                   run: Callable[[], Awaitable[StoredResponse]],
                   recover: Callable[[str], Awaitable[StoredResponse]]) -> StoredResponse:
    """Run an idempotent POST (`run` claims the key in its first transaction); a key another request
    claimed first answers as that request did (resolve_existing)."""
    if c is None:
        return await run()
    try:
        return await run()
    except KeyAlreadyClaimed:
        return await resolve_existing(run_tx, c, now, recover)


def stored(status: int, obj: dict) -> StoredResponse:
    """A JSON answer as it is stored under its key and sent."""
    return StoredResponse(status, json.dumps(obj, separators=(",", ":")).encode())


def respond(conn: Connection, c: IdempotencyClaim | None, obj: dict, now: datetime) -> StoredResponse:
    """The 201 of a create, completed under its key in the create's transaction."""
    response = stored(201, obj)
    if c:
        complete(conn, c, response, now)
    return response


def purge(conn: Connection, now: datetime, ttl_seconds: int) -> int:
    cutoff = now - timedelta(seconds=ttl_seconds)
    return conn.execute(delete(keys).where(keys.c.created_at < cutoff)).rowcount
