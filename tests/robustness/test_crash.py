"""SIGKILL the gateway during a burst of callbacks; after a restart the books are still whole."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from gateway.client import Client
from gateway.testing.server import start_logged
from plugins.mock import wire
from tests.conftest import free_port
from tests.support import REPO
from tests.support.processes import sandbox_config

SECRET = "crash-sandbox-secret"


def test_killing_the_server_mid_burst_leaves_the_ledger_clean(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    config = sandbox_config(tmp_path / "paymux.toml", db_url, port, secret_key="crash-test-key-0123456789",
                            sandbox_secret=SECRET)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cli = [sys.executable, "-m", "gateway.cli", "--config", str(config)]

    def serve() -> subprocess.Popen:
        return start_logged(cli + ["serve", "--port", str(port)], tmp_path / "server.log", env, tmp_path,
                            f"http://127.0.0.1:{port}/healthz")

    creds = json.loads(subprocess.run(cli + ["merchant", "create", "crash", "--json"], env=env, cwd=tmp_path,
                                      capture_output=True, text=True, check=True).stdout)
    server = serve()
    client = Client(f"http://127.0.0.1:{port}", creds["merchant_id"], creds["secret"])
    orders = [client.create_payment(merchant_order_no=f"o{i}", amount=100 + i) for i in range(60)]

    def pay(order: dict) -> None:
        try:
            httpx.post(order["action"]["url"], data={"outcome": "success"}, timeout=5)
        except httpx.HTTPError:
            pass  # the server died under us: that is the point

    threads = [threading.Thread(target=pay, args=(o,)) for o in orders]
    for t in threads:
        t.start()
    time.sleep(0.4)
    server.send_signal(signal.SIGKILL)
    server.wait()
    for t in threads:
        t.join()

    server = serve()
    try:
        # The channel retries what it never heard acknowledged; deliver every success once more.
        for order in orders:
            body = wire.encode({"event": "payment", "out_trade_no": order["out_trade_no"], "trade_status": "SUCCESS",
                                "amount": order["amount"], "currency": "CNY", "transaction_id": "t" + order["id"]})
            response = httpx.post(f"http://127.0.0.1:{port}/v1/notify/sandbox", content=body,
                                  headers=wire.signed_headers(SECRET, body, int(time.time())))
            assert response.status_code == 200
        statuses = {client.get_payment(o["id"])["status"] for o in orders}
        assert statuses == {"succeeded"}
        balances = client.request("GET", "/v1/balance").json()["balances"][0]
        from ledger.chart import fee_for

        assert balances["in_transit"] == sum(o["amount"] - fee_for(o["amount"], 60) for o in orders)
    finally:
        server.terminate()
        server.wait(timeout=20)
    check = subprocess.run(cli + ["ledger", "check"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
