"""A channel account switched at runtime from the console: proposed by one operator, approved by
another, audited, and followed by a second gateway process (another `paymux serve` on the same
database) within seconds, without a restart. On SQLite and on PostgreSQL."""
from __future__ import annotations

import itertools
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from gateway.client import Client, PaymuxAPIError
from tests.conftest import free_port
from tests.support.console import PASSWORD, Browser
from tests.support.plugins import wait_until_up
from tests.support.processes import PAYMUX, command_env, sandbox_config

ORDERS = itertools.count()


def until(check: Callable[[], Any], seconds: float = 30) -> Any:
    """Poll `check` until it returns something true (the switch is read every couple of seconds);
    fail after `seconds`, a bound far above what it takes, not a measurement."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def outcome(client: Client, amount: int) -> str:
    """What the gateway says to a new payment: "created", or the error's code."""
    try:
        client.create_payment(merchant_order_no=f"sw-{next(ORDERS)}", amount=amount, channel="sandbox")
    except PaymuxAPIError as exc:
        return str(exc.error.get("code"))
    return "created"


@pytest.fixture
def two_gateways(tmp_path: Path, db_url: str):  # noqa: ANN201
    ports = free_port(), free_port()
    env = command_env()
    configs = [sandbox_config(tmp_path / f"paymux-{port}.toml", db_url, port) for port in ports]

    def cli(*args: str, stdin: str | None = None) -> str:
        return subprocess.run(PAYMUX + ["--config", str(configs[0]), *args], input=stdin, capture_output=True,
                              text=True, env=env, cwd=tmp_path, check=True, timeout=60).stdout

    creds = json.loads(cli("merchant", "create", "shop", "--json"))
    for name, role in (("otto", "operator"), ("anna", "approver")):
        cli("operator", "create", name, "--role", role, "--password-stdin", stdin=PASSWORD + "\n")
    servers = [subprocess.Popen(PAYMUX + ["--config", str(config), "serve", "--port", str(port)], env=env,
                                cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for config, port in zip(configs, ports)]
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url, server in zip(urls, servers):
            wait_until_up(f"{url}/healthz", server)
        yield urls, creds
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.communicate(timeout=30)


def test_a_switch_approved_through_one_process_is_followed_by_the_other(two_gateways) -> None:  # noqa: ANN001
    (first, second), creds = two_gateways
    merchant = Client(second, creds["merchant_id"], creds["secret"])
    otto, anna = Browser(first), Browser(first)
    otto.sign_in("otto")
    anna.sign_in("anna")
    try:
        assert outcome(merchant, 100) == "created"

        def propose(**fields: str) -> int:
            done = otto.post("/console/channels/changes", {"account": "sandbox", "reason": "maintenance", **fields},
                             "/console/channels")
            assert done.status_code == 303, done.text
            page = anna.http.get("/console/channels").text
            return max(int(n) for n in re.findall(r"/console/channels/changes/(\d+)/approve", page))

        # Disabled: proposed by otto, who cannot approve it himself; nothing changes until anna does.
        change = propose(enabled="off")
        assert otto.post(f"/console/channels/changes/{change}/approve", {}, "/console/channels").status_code == 403
        assert outcome(merchant, 100) == "created"
        assert anna.post(f"/console/channels/changes/{change}/approve", {}, "/console/channels").status_code == 303
        assert until(lambda: outcome(merchant, 100) == "channel_disabled")      # the other process follows
        assert outcome(Client(first, creds["merchant_id"], creds["secret"]), 100) == "channel_disabled"
        # Enabled again with a maximum of 1.00: 1.00 is taken, 2.00 is not.
        change = propose(enabled="on", max_amount="1.00")
        assert anna.post(f"/console/channels/changes/{change}/approve", {}, "/console/channels").status_code == 303
        assert until(lambda: outcome(merchant, 100) == "created")
        assert outcome(merchant, 200) not in ("created", "channel_disabled")
        # A change that makes no sense is refused with its code, nothing proposed.
        refused = otto.post("/console/channels/changes", {"account": "sandbox", "reason": "x", "weight": "0"},
                            "/console/channels")
        assert refused.status_code == 400 and "invalid_weight" in refused.text
        refused = otto.post("/console/channels/changes", {"account": "nope", "reason": "x", "enabled": "off"},
                            "/console/channels")
        assert refused.status_code == 400 and "unknown_channel" in refused.text
        # Decided once only; audited with who and what.
        again = anna.post(f"/console/channels/changes/{change}/approve", {}, "/console/channels")
        assert again.status_code == 409 and "change_decided" in again.text
        audit = anna.http.get("/console/audit").text
        assert audit.count("channel.propose") == 2 and audit.count("channel.approve") == 2
        assert "max_amount" in audit and "channel:sandbox" in audit
        page = anna.http.get("/console/channels").text
        assert "CNY 1.00" in page and "version 2" in page and "max_amount=CNY 1.00" in page   # both tables
    finally:
        merchant.close()
