"""A channel plugin shipped as its own distribution is found through entry points and used end to end,
with no change to the core. The example package lives in tests/channels/example_plugin and is really installed
(pip, into a scratch directory put on the path of a separate gateway process)."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gateway.client import Client
from tests.conftest import free_port
from tests.support import REPO
from tests.support.plugins import EXAMPLE, PAYMUX, env_with, wait_until_up, write_config


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(EXAMPLE)],
                   check=True, cwd=build, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert list(target.glob("paymux_example_channel-*.dist-info"))
    return target


def test_the_installed_plugin_is_listed(plugin_site: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, 8000)
    out = subprocess.run(PAYMUX + ["--config", str(config), "plugins", "--json"], capture_output=True, text=True,
                         env=env_with(plugin_site, COUNTER_KEY="k"), check=True, cwd=tmp_path)
    listing = json.loads(out.stdout)
    plugin = next(p for p in listing["plugins"] if p["name"] == "counterpay")
    assert plugin["module"] == "paymux_example"
    assert "refund" in plugin["capabilities"]
    assert listing["channel_accounts"] == [{"id": "front-desk", "plugin": "counterpay", "enabled": True,
                                            "installed": True}]


def test_without_the_package_the_config_fails_at_start_up_naming_the_plugin(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port())
    env = {**os.environ, "COUNTER_KEY": "k", "PYTHONPATH": str(REPO)}
    subprocess.run(PAYMUX + ["--config", str(config), "db", "upgrade"], check=True, env=env, cwd=tmp_path,
                   capture_output=True)
    out = subprocess.run(PAYMUX + ["--config", str(config), "serve", "--port", "1"], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=60)
    assert out.returncode != 0
    assert "'front-desk' names plugin 'counterpay', which is not installed" in out.stderr


def test_a_payment_runs_end_to_end_through_the_external_plugin(plugin_site: Path, tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port)
    env = env_with(plugin_site, COUNTER_KEY="counter-key")
    run = lambda *args: subprocess.run(PAYMUX + ["--config", str(config), *args], capture_output=True,  # noqa: E731
                                       text=True, env=env, cwd=tmp_path, check=True, timeout=60)
    run("db", "upgrade")
    creds = json.loads(run("merchant", "create", "plugin-shop", "--json").stdout)
    server = subprocess.Popen(PAYMUX + ["--config", str(config), "serve", "--port", str(port)], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", server)
        client = Client(f"http://127.0.0.1:{port}", creds["merchant_id"], creds["secret"])
        payment = client.create_payment(merchant_order_no="p-1", amount=880, subject="Noodles")
        assert payment["channel"] == "front-desk"
        assert payment["action"] == {"type": "qr", "code": f"counterpay://{payment['out_trade_no']}"}

        # The counter's callback, signed the way the plugin's channel signs it.
        out_trade_no = payment["out_trade_no"]
        sig = hmac.new(b"counter-key", f"{out_trade_no}|880|paid".encode(), hashlib.sha256).hexdigest()
        forged = httpx.post(f"http://127.0.0.1:{port}/v1/notify/front-desk",
                            data={"out_trade_no": out_trade_no, "amount": "880", "status": "paid", "sig": "0" * 64})
        assert forged.status_code == 403 and forged.content == b"NO"
        assert client.get_payment(payment["id"])["status"] == "processing"
        genuine = httpx.post(f"http://127.0.0.1:{port}/v1/notify/front-desk",
                             data={"out_trade_no": out_trade_no, "amount": "880", "status": "paid", "sig": sig})
        assert genuine.status_code == 200 and genuine.content == b"OK"
        assert client.get_payment(payment["id"])["status"] == "succeeded"

        refund = client.create_refund(payment["id"], merchant_refund_no="r-1", amount=80)
        assert refund["status"] == "succeeded"
        assert client.get_payment(payment["id"])["amount_refunded"] == 80
        # The plugin does not declare close: the core refuses it instead of guessing.
        response = client.request("POST", f"/v1/payments/{payment['id']}/close")
        assert response.status_code == 409  # already paid
    finally:
        server.terminate()
        server.wait(timeout=20)




def test_the_external_plugin_passes_the_conformance_kit(plugin_site: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             str(EXAMPLE / "check_conformance.py")],
                            capture_output=True, text=True, env=env_with(plugin_site), timeout=300,
                            cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary, summary
    # The README's minimal plugin (pay and notify only) passes with no refund asked of it, and the kit's
    # report says what it did not ask and why.
    report = result.stdout.split("paymux conformance kit: not asked / not covered")[1]
    assert ("TestMinimalCounterPayConformance: test_each_method_creates_pays_and_refunds: its refund: "
            "the plugin does not declare refund") in report
    assert "TestCounterPayConformance: test_an_unpaid_payment_closes: the plugin does not declare close" in report
