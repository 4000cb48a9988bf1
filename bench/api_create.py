"""Throughput of POST /v1/payments (sandbox channel, zero latency) against a bare Starlette endpoint
doing one INSERT into the same database, each served by uvicorn in its own process and driven by the
same signed-request load from this process. Both servers run side by side for the whole bench; the
load alternates between them in interleaved windows (gateway, baseline, gateway, baseline, ...;
--repeats pairs of --seconds each). Prints min/median/max requests/s of each side and of the
per-pair ratio.

Outside the timer: creating and migrating the database and its merchant, starting both servers,
and one 1-second warm-up window for each. Inside: signing each request in this process (the same
cost for both sides), the HTTP round trip, and the server's work.

    .venv/bin/python bench/api_create.py [--seconds 2] [--repeats 5] [--concurrency 16]

PostgreSQL is measured too when PAYMUX_TEST_DATABASE_URL (or PAYMUX_BENCH_DATABASE_URL) is set.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.windows import interleave, report  # noqa: E402
from gateway import db as dbmod  # noqa: E402
from gateway.auth import authorization_header  # noqa: E402
from gateway.clock import Clock  # noqa: E402
from gateway.merchants import create_merchant  # noqa: E402
from gateway.secretbox import SecretBox  # noqa: E402

SECRET_KEY = "bench-secret-key-0123456789abcdef"


def bench_database(url: str, notify_url: str | None = None):  # noqa: ANN201
    """Migrate the benchmark's database and make the merchant that signs its requests."""
    dbmod.upgrade(url)
    database = dbmod.Database(url)
    with database.transaction() as conn:
        creds = create_merchant(conn, SecretBox(SECRET_KEY), Clock(), "bench", notify_url=notify_url)
    database.dispose()
    return creds


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], env: dict[str, str], port: int, cwd: Path) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(REPO), **env}, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90   # a loaded machine starts four workers slowly
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/v1/payments", content=b"{}", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not start: {cmd}")


async def drive(url: str, merchant_id: str, secret: str, seconds: float, concurrency: int) -> float:
    """Signed create requests from `concurrency` keep-alive connections; returns completed requests/s.
    aiohttp, not httpx, generates the load: on this machine httpx's client tops out near 300 req/s
    against a no-op endpoint, which would measure the client instead of the servers."""
    done = 0
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done, errors
        while time.perf_counter() < stop_at:
            body = json.dumps({"merchant_order_no": "b" + secrets.token_hex(12), "amount": 100, "currency": "CNY",
                               "subject": "bench"}).encode()
            headers = {"Authorization": authorization_header(merchant_id, secret, "POST", "/v1/payments", body,
                                                             int(time.time())),
                       "Content-Type": "application/json"}
            async with session.post(f"{url}/v1/payments", data=body, headers=headers) as response:
                await response.read()
                if response.status == 201:
                    done += 1
                else:
                    errors += 1

    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    if errors:
        print(f"  ({errors} requests failed)", file=sys.stderr)
    return done / elapsed


def prepare_database(kind: str, workdir: Path) -> tuple[str, callable]:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}", lambda: None
    server = make_url(dbmod.normalize_url(os.environ.get("PAYMUX_BENCH_DATABASE_URL")
                                          or os.environ["PAYMUX_TEST_DATABASE_URL"]))
    name = "paymux_bench_" + secrets.token_hex(4)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return server.set(database=name).render_as_string(hide_password=False), drop


def measure(kind: str, seconds: float, repeats: int, concurrency: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url, cleanup = prepare_database(kind, workdir)
        servers: list[subprocess.Popen] = []
        try:
            creds = bench_database(url)
            gateway_port, baseline_port = free_port(), free_port()
            config = workdir / "paymux.toml"
            config.write_text(f'public_url = "http://127.0.0.1:{gateway_port}"\nsecret_key = "{SECRET_KEY}"\n'
                              f'[database]\nurl = "{url}"\n[[channel_accounts]]\nid = "sandbox"\nplugin = "mock"\n'
                              '[channel_accounts.settings]\nsecret = "bench-sandbox-secret"\n')
            servers.append(start([sys.executable, "-m", "gateway.cli", "--config", str(config), "serve", "--port",
                                  str(gateway_port)], {}, gateway_port, workdir))
            servers.append(start([sys.executable, "-m", "uvicorn", "bench.baseline_app:app", "--port",
                                  str(baseline_port), "--log-level", "warning", "--no-access-log"],
                                 {"BENCH_DATABASE_URL": url}, baseline_port, REPO))

            def window(port: int, length: float) -> float:
                return asyncio.run(drive(f"http://127.0.0.1:{port}", creds.merchant_id, creds.secret, length,
                                         concurrency))

            window(gateway_port, 1.0)  # warm-up, untimed
            window(baseline_port, 1.0)
            return interleave(repeats, lambda k: window(gateway_port, seconds),
                              lambda k: window(baseline_port, seconds))
        finally:
            for server in servers:
                server.terminate()
                server.wait()
            cleanup()


def database_kinds() -> list[str]:
    """SQLite always; PostgreSQL when a URL for it is set (saying so when it is not)."""
    if os.environ.get("PAYMUX_BENCH_DATABASE_URL") or os.environ.get("PAYMUX_TEST_DATABASE_URL"):
        return ["sqlite", "postgresql"]
    print("postgresql: skipped (set PAYMUX_TEST_DATABASE_URL to measure it)")
    return ["sqlite"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each window")
    parser.add_argument("--repeats", type=int, default=5, help="pairs of interleaved windows")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    for kind in database_kinds():
        gateway_rps, baseline_rps = measure(kind, args.seconds, args.repeats, args.concurrency)
        sg, sb, sr = report(gateway_rps, baseline_rps)
        print(f"{kind}: create-payment {sg} req/s, bare INSERT endpoint {sb} req/s, ratio {sr} (target >= 0.5; "
              f"min/median/max of {args.repeats} interleaved {args.seconds:g} s windows)", flush=True)


if __name__ == "__main__":
    main()
