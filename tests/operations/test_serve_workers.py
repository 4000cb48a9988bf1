"""`paymux serve --workers N`: several processes answer on one port, over real HTTP, on one database."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx

from gateway.client import Client
from tests.conftest import free_port
from tests.support import REPO
from tests.support.plugins import wait_until_up
from tests.support.processes import PAYMUX, command_env, create_merchant, sandbox_config


def test_serve_with_two_workers_answers_signed_requests_from_two_processes(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    config = sandbox_config(tmp_path / "paymux.toml", db_url, port)
    env = command_env()
    creds = create_merchant(config, env, tmp_path)
    server = subprocess.Popen(PAYMUX + ["--config", str(config), "serve", "--port", str(port), "--workers", "2"],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", server)
        pids, created = set(), []
        for n in range(200):   # a new connection each time: the kernel hands it to either process
            client = Client(f"http://127.0.0.1:{port}", creds["merchant_id"], creds["secret"])
            try:
                created.append(client.create_payment(merchant_order_no=f"w-{n}", amount=100 + n)["id"])
            finally:
                client.close()
            pids.add(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json()["process"])
            if len(pids) == 2 and n >= 5:
                break
        assert len(pids) == 2 and server.pid not in pids
        client = Client(f"http://127.0.0.1:{port}", creds["merchant_id"], creds["secret"])
        try:  # every payment, whichever process wrote it, is read back by whichever answers
            assert {client.get_payment(p)["status"] for p in created} == {"processing"}
        finally:
            client.close()
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=30)
    assert f"serving on http://127.0.0.1:{port} (2 processes" in out.decode()


def test_workers_must_be_a_whole_number_of_one_or_more(tmp_path: Path) -> None:
    result = subprocess.run(PAYMUX + ["serve", "--workers", "0"], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert result.returncode == 2 and "--workers" in result.stderr
