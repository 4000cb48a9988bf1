"""Throughput of POST /v1/payments (sandbox channel, zero latency) against a bare Starlette endpoint
doing one INSERT into the same database, each served by uvicorn in its own process and driven by the
same signed-request load from this process. Prints requests/s for both and their ratio.

    .venv/bin/python bench/api_create.py [--seconds 5] [--concurrency 16]

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
    deadline = time.monotonic() + 30
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


def serve_and_drive(cmd: list[str], env: dict[str, str], cwd: Path, port: int, creds, seconds: float,  # noqa: ANN001
                    concurrency: int) -> float:
    """Start one server, warm it for a second, then measure it."""
    server = start(cmd, env, port, cwd)
    try:
        url = f"http://127.0.0.1:{port}"
        asyncio.run(drive(url, creds.merchant_id, creds.secret, 1.0, concurrency))
        return asyncio.run(drive(url, creds.merchant_id, creds.secret, seconds, concurrency))
    finally:
        server.terminate()
        server.wait()


def measure(kind: str, seconds: float, concurrency: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url, cleanup = prepare_database(kind, workdir)
        try:
            creds = bench_database(url)

            port = free_port()
            config = workdir / "paymux.toml"
            config.write_text(f'public_url = "http://127.0.0.1:{port}"\nsecret_key = "{SECRET_KEY}"\n'
                              f'[database]\nurl = "{url}"\n[[channel_accounts]]\nid = "sandbox"\nplugin = "mock"\n'
                              '[channel_accounts.settings]\nsecret = "bench-sandbox-secret"\n')
            gateway_rps = serve_and_drive([sys.executable, "-m", "gateway.cli", "--config", str(config), "serve",
                                           "--port", str(port)], {}, workdir, port, creds, seconds, concurrency)
            port = free_port()
            baseline_rps = serve_and_drive([sys.executable, "-m", "uvicorn", "bench.baseline_app:app", "--port",
                                            str(port), "--log-level", "warning", "--no-access-log"],
                                           {"BENCH_DATABASE_URL": url}, REPO, port, creds, seconds, concurrency)
        finally:
            cleanup()
    return gateway_rps, baseline_rps


def database_kinds() -> list[str]:
    """SQLite always; PostgreSQL when a URL for it is set (saying so when it is not)."""
    if os.environ.get("PAYMUX_BENCH_DATABASE_URL") or os.environ.get("PAYMUX_TEST_DATABASE_URL"):
        return ["sqlite", "postgresql"]
    print("postgresql: skipped (set PAYMUX_TEST_DATABASE_URL to measure it)")
    return ["sqlite"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    for kind in database_kinds():
        gateway_rps, baseline_rps = measure(kind, args.seconds, args.concurrency)
        print(f"{kind}: create-payment {gateway_rps:.0f} req/s, bare INSERT endpoint {baseline_rps:.0f} req/s, "
              f"ratio {gateway_rps / baseline_rps:.2f} (target >= 0.5)")


if __name__ == "__main__":
    main()
