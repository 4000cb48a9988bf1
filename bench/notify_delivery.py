"""Merchant events delivered per second by the notifier (claim a batch with a lease, sign, POST,
record the outcome), against, in the same run and to the same local receiver, a bare httpx loop that
signs and POSTs the same bodies with the same concurrency. Prints both and the ratio, per database.

    .venv/bin/python bench/notify_delivery.py [--events 2000]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.api_create import (SECRET_KEY, bench_database, database_kinds, free_port,  # noqa: E402
                              prepare_database, start)
from gateway import db as dbmod  # noqa: E402
from gateway.client import sign_event  # noqa: E402
from gateway.clock import Clock  # noqa: E402
from gateway.models import MerchantEvent  # noqa: E402
from gateway.client import EVENT_SIGNATURE_HEADER  # noqa: E402
from gateway.notifier import BATCH, Notifier, event_body, record_event  # noqa: E402
from gateway.secretbox import SecretBox  # noqa: E402

events = MerchantEvent.__table__


class Quiet:
    """The notifier logs each delivery; here that would measure the terminal."""

    def info(self, *args: object, **kwargs: object) -> None:
        pass

    warning = info


async def bare_loop(url: str, bodies: list[bytes], secret: str) -> float:
    """The floor: sign and POST every body, BATCH at a time, as fast as httpx goes."""
    clock = Clock()
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=10) as http:
        for i in range(0, len(bodies), BATCH):
            responses = await asyncio.gather(*(http.post(url, content=body, headers={
                "Content-Type": "application/json", EVENT_SIGNATURE_HEADER: sign_event(secret, body, clock.timestamp())})
                for body in bodies[i:i + BATCH]))
            assert all(r.status_code == 204 for r in responses)
    return len(bodies) / (time.perf_counter() - started)


async def through_notifier(database: dbmod.Database, count: int) -> float:
    notifier = Notifier(database, SecretBox(SECRET_KEY), Clock(), Quiet(), (1.0,), 10.0, 0.0,
                        allow_private_networks=True)   # the receiver runs on this machine
    started = time.perf_counter()
    try:
        while await notifier.deliver_due():
            pass
    finally:
        await notifier.aclose()
    elapsed = time.perf_counter() - started
    delivered = await database.tx(lambda conn: conn.execute(
        select(func.count()).where(events.c.status == "delivered")).scalar_one())
    assert delivered == count, f"only {delivered} of {count} delivered"
    return count / elapsed


def measure(kind: str, count: int, receiver_url: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        url, cleanup = prepare_database(kind, Path(tmp))
        try:
            creds = bench_database(url, notify_url=receiver_url)
            database = dbmod.Database(url)
            clock = Clock()
            with database.transaction() as conn:
                for i in range(count):
                    record_event(conn, creds.merchant_id, "payment.succeeded", f"pay_{i:08d}",
                                 {"id": f"pay_{i:08d}", "object": "payment", "status": "succeeded",
                                  "amount": 100 + i, "currency": "CNY"}, None, clock.now())
            with database.transaction() as conn:
                bodies = [event_body(row) for row in conn.execute(select(events))]
            bare = asyncio.run(bare_loop(receiver_url, bodies, creds.secret))
            through = asyncio.run(through_notifier(database, count))
            database.dispose()
        finally:
            cleanup()
    return through, bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        receiver = start([sys.executable, "-m", "uvicorn", "bench.event_receiver:app", "--port", str(port),
                          "--log-level", "warning", "--no-access-log"], {}, port, Path(tmp))
        try:
            for kind in database_kinds():
                through, bare = measure(kind, args.events, f"http://127.0.0.1:{port}/events")
                print(f"{kind}: events delivered by the notifier {through:.0f}/s (lease, sign, POST, record), "
                      f"bare signed httpx POST loop {bare:.0f}/s, ratio {through / bare:.3f}")
        finally:
            receiver.terminate()
            receiver.wait()


if __name__ == "__main__":
    main()
