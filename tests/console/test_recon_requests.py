"""A reconciliation run started from the console: the web process queues it, a `paymux worker`
process runs it, and the console shows its status and the run. On SQLite and on PostgreSQL."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from gateway.client import Client
from tests.conftest import checkout, free_port
from tests.console.test_switch import until
from tests.support.console import PASSWORD, Browser
from tests.support.plugins import wait_until_up
from tests.support.processes import PAYMUX, command_env, create_merchant, sandbox_config


def test_a_run_requested_in_the_console_is_run_by_the_worker(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    config = sandbox_config(tmp_path / "paymux.toml", db_url, port)
    env = command_env()
    creds = create_merchant(config, env, tmp_path)
    subprocess.run(PAYMUX + ["--config", str(config), "operator", "create", "otto", "--role", "operator",
                             "--password-stdin"], input=PASSWORD + "\n", text=True, env=env, cwd=tmp_path,
                   check=True, capture_output=True, timeout=60)
    server = subprocess.Popen(PAYMUX + ["--config", str(config), "serve", "--port", str(port)], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    worker = None
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(f"{url}/healthz", server)
        client = Client(url, creds["merchant_id"], creds["secret"])
        paid = client.create_payment(merchant_order_no="r-1", amount=1000)
        checkout(paid)                                         # one payment on the day's statement
        client.close()
        otto = Browser(url)
        otto.sign_in("otto")
        today = re.search(r'name="date" value="([0-9-]+)"', otto.http.get("/console/recon").text).group(1)
        refused = otto.post("/console/recon/requests", {"account": "sandbox", "date": "2999-01-01"}, "/console/recon")
        assert refused.status_code == 400 and "invalid_date" in refused.text
        refused = otto.post("/console/recon/requests", {"account": "nope", "date": today}, "/console/recon")
        assert refused.status_code == 400 and "unknown_channel" in refused.text
        queued = otto.post("/console/recon/requests", {"account": "sandbox", "date": today}, "/console/recon")
        assert queued.status_code == 303 and "queued+request+" in queued.headers["location"]
        page = otto.http.get("/console/recon").text
        assert 'class="tag queued"' in page                   # the web process does not run it
        worker = subprocess.Popen(PAYMUX + ["--config", str(config), "worker"], env=env, cwd=tmp_path,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        done = until(lambda: 'class="tag done"' in (text := otto.http.get("/console/recon").text) and text)
        assert done, "the worker did not finish the requested run"
        row = re.search(r'<span class="tag done">done</span>.*?</tr>', done, re.S).group(0)
        assert f":{worker.pid}" in row and f":{server.pid}" not in row         # run by the worker process
        run_id = re.search(r'href="/console/recon/runs/(rr_\w+)"', row).group(1)
        run = otto.http.get(f"/console/recon/runs/{run_id}").text
        assert "1 statement lines" in run and 'class="tag completed"' in run
        audit = otto.http.get("/console/audit").text
        assert "recon.request" in audit and "otto" in audit
    finally:
        for process in (worker, server):
            if process is not None:
                process.terminate()
                process.communicate(timeout=30)


def test_a_request_is_claimed_by_one_worker_and_taken_again_only_when_its_worker_is_long_gone(db_url: str) -> None:
    from datetime import UTC, date, datetime, timedelta

    from sqlalchemy import insert

    from gateway.console.recon_requests import RECLAIM_AFTER, claim, requests
    from gateway.db import Database

    db = Database(db_url)
    now = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    try:
        with db.transaction() as conn:
            conn.execute(insert(requests).values(channel_account="sandbox", business_date=date(2026, 11, 30),
                                                 status="queued", requested_by="otto", requested_by_id="op_1",
                                                 requested_at=now))
        with db.transaction() as conn:
            assert claim(conn, now, "host:1") is not None
        with db.transaction() as conn:
            assert claim(conn, now + timedelta(minutes=5), "host:2") is None        # running elsewhere
        with db.transaction() as conn:
            taken = claim(conn, now + RECLAIM_AFTER + timedelta(seconds=1), "host:3")  # host:1 died
        assert taken is not None and taken.executed_by == "host:1"
        with db.transaction() as conn:
            assert conn.execute(requests.select()).one().executed_by == "host:3"
    finally:
        db.dispose()
