"""`paymux simulate wechatpay` plus the printed account block are all a newcomer needs to run a
WeChat Pay-shaped payment locally, each part its own process talking real HTTP."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gateway.client import Client
from tests.conftest import free_port
from tests.support import REPO
from tests.support.plugins import wait_until_up


@pytest.mark.parametrize("plugin,account,method,code_prefix", [("wechatpay", "wx", "native", "weixin://"),
                                                              ("alipay", "ali", "qr", "https://qr.alipay.com/"),
                                                              ("unionpay", "up", "web", None)])
def test_a_channel_shaped_payment_runs_locally(tmp_path: Path, plugin: str, account: str, method: str,
                                               code_prefix: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    sim_port, port = free_port(), free_port()
    sim = subprocess.Popen([sys.executable, "-m", "gateway.cli", "simulate", plugin, "--port", str(sim_port)],
                           cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    gateway = None
    try:
        lines = []
        while not lines or not lines[-1].strip().startswith(("base_url", "gateway_url")):
            line = sim.stdout.readline()
            assert line, "the simulator printed no account block"
            lines.append(line)
        block = "".join(lines[lines.index("[[channel_accounts]]\n"):])
        config = tmp_path / "paymux.toml"
        config.write_text(f'public_url = "http://127.0.0.1:{port}"\nsecret_key = "simulate-test-key-0123456789"\n'
                          f'[database]\nurl = "sqlite:///{tmp_path}/p.db"\n\n{block}')
        cli = [sys.executable, "-m", "gateway.cli", "--config", str(config)]
        subprocess.run(cli + ["db", "upgrade"], cwd=tmp_path, env=env, check=True, capture_output=True)
        creds = json.loads(subprocess.run(cli + ["merchant", "create", "shop", "--json"], cwd=tmp_path, env=env,
                                          check=True, capture_output=True, text=True).stdout)
        gateway = subprocess.Popen(cli + ["serve", "--port", str(port)], cwd=tmp_path, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until_up(f"http://127.0.0.1:{port}/healthz", gateway)
        client = Client(f"http://127.0.0.1:{port}", creds["merchant_id"], creds["secret"])
        payment = client.create_payment(merchant_order_no="local-1", amount=1800, channel=account, method=method)
        action = payment["action"]
        if action["type"] == "form":   # the payer's browser posts the signed form to the channel first
            assert action["url"].startswith(f"http://127.0.0.1:{sim_port}/")
            assert httpx.post(action["url"], data=action["fields"]).status_code == 200
        else:
            assert action["code"].startswith(code_prefix)
        paid = httpx.post(f"http://127.0.0.1:{sim_port}/sim/orders/{payment['out_trade_no']}/pay",
                          json={"outcome": "success"})
        assert paid.status_code == 200
        deadline = time.monotonic() + 10
        while client.get_payment(payment["id"])["status"] != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        sim.terminate()
        sim.wait(timeout=20)
        if gateway:
            gateway.terminate()
            gateway.wait(timeout=20)
