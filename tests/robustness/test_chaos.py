"""The whole promise under fire, on PostgreSQL: a gateway and two workers as separate processes, a
burst of sandbox payments whose callbacks are dropped, duplicated and delayed, a merchant endpoint
that fails its first answers, and a chaos thread SIGKILLing a random process every second or so and
starting it again. At the end: every payment the channel took money for is succeeded here, every
declined one failed, every merchant event was delivered, the ledger checks clean, nothing was
charged twice."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.client import Client, verify_event
from gateway.clock import Clock
from gateway.testing.server import start_logged
from plugins.mock.channel import MockSettings
from plugins.mock.simulator import SandboxSimulator
from tests.conftest import ServerThread, free_port, wait_for
from tests.support import REPO

SECRET = "chaos-sandbox-secret"
ORDERS = 60


class Receiver:
    """The merchant's endpoint: verifies each event's signature, answers 500 to the first two tries."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.tries: Counter[str] = Counter()
        self.delivered: set[str] = set()
        self.forged = 0
        self.lock = threading.Lock()
        self.app = Starlette(routes=[Route("/events", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        if not verify_event(body, request.headers.get("paymux-signature"), self.secret):
            self.forged += 1
            return Response(status_code=400)
        event_id = json.loads(body)["id"]
        with self.lock:
            self.tries[event_id] += 1
            if self.tries[event_id] <= 2:
                return Response(status_code=500)
            self.delivered.add(event_id)
        return Response(status_code=204)


class Fleet:
    """`paymux serve` and two `paymux worker` processes that the chaos thread kills and restarts."""

    def __init__(self, cli: list[str], env: dict, cwd: Path, port: int) -> None:
        self.cli, self.env, self.cwd, self.port = cli, env, cwd, port
        self.procs: dict[str, subprocess.Popen] = {}
        self.kills = Counter()

    def start(self, name: str) -> None:
        args = ["serve", "--port", str(self.port)] if name == "server" else ["worker"]
        health = f"http://127.0.0.1:{self.port}/healthz" if name == "server" else None
        self.procs[name] = start_logged(self.cli + args, self.cwd / f"{name}.log", self.env, self.cwd, health)

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()
        self.kills[name] += 1

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            proc.wait(timeout=20)


def retrying(fn: Any, give_up: float = 60.0) -> Any:
    """What a merchant's code does while the gateway restarts: try again with the same request."""
    deadline = time.monotonic() + give_up
    while True:
        try:
            response = fn()
            if response.status_code < 500:
                return response
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("the gateway never came back")
        time.sleep(0.2)


def burst(client: Client, rng: random.Random) -> dict[str, str]:
    """ORDERS payments created through the gateway (retried with their key while it restarts), most of
    them paid at the channel, some declined there, some never paid. Returns payment id -> outcome."""
    outcomes: dict[str, str] = {}
    with ThreadPoolExecutor(8) as payers:
        for i in range(ORDERS):
            payment = retrying(lambda i=i: client.request(
                "POST", "/v1/payments", {"merchant_order_no": f"chaos-{i}", "amount": 100 + i},
                idempotency_key=f"chaos-{i}")).json()
            assert payment["status"] == "processing", payment
            outcome = rng.choices(["success", "fail", "none"], [8, 1, 1])[0]
            outcomes[payment["id"]] = outcome
            if outcome != "none":  # the customer pays at the channel, whatever the gateway is doing
                payers.submit(httpx.post, payment["action"]["url"], data={"outcome": outcome},
                              headers={"Accept": "application/json"}, timeout=30)
    return outcomes


def converge(db_url: str, sim: SandboxSimulator, receiver: Receiver, outcomes: dict[str, str], client: Client) -> None:
    """Every settled order settled here too, every event delivered, each payment booked once."""
    from ledger.chart import fee_for

    engine = create_engine(db_url)
    by_trade = {o.out_trade_no: o.status for o in sim.orders.values()}
    expected = {"SUCCESS": "succeeded", "FAIL": "failed", "NOTPAY": "processing"}

    def local() -> dict[str, str]:
        with engine.connect() as conn:
            return {row.out_trade_no: row.status for row in conn.execute(text(
                "SELECT a.out_trade_no, p.status FROM attempts a JOIN payments p ON p.id = a.payment_id"))}

    def settled() -> bool:
        here = local()
        return all(here.get(trade) == expected[status] for trade, status in by_trade.items())

    try:   # by callback, or by the janitor's query
        wait_for(settled, timeout=90, interval=0.5)
    except AssertionError:
        here = local()
        raise AssertionError(f"not settled here: {[(t, s, here.get(t)) for t, s in by_trade.items() if here.get(t) != expected[s]]}")
    counts = Counter(outcomes.values())
    assert Counter(by_trade.values())["SUCCESS"] == counts["success"]

    def undelivered() -> int:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM merchant_events WHERE status <> 'delivered'")).scalar_one()

    wait_for(lambda: undelivered() == 0, timeout=90, interval=0.5)
    with engine.connect() as conn:
        event_ids = {row.id for row in conn.execute(text("SELECT id FROM merchant_events"))}
        paid = conn.execute(text("SELECT count(*) FROM payments WHERE status = 'succeeded'")).scalar_one()
        entries = conn.execute(text("SELECT count(*) FROM ledger_entries WHERE event_type = 'payment.succeeded'"
                                    )).scalar_one()
        twice = conn.execute(text("SELECT payment_id FROM attempts WHERE status = 'succeeded' "
                                  "GROUP BY payment_id HAVING count(*) > 1")).all()
        refunds = conn.execute(text("SELECT count(*) FROM refunds")).scalar_one()
    engine.dispose()
    assert event_ids == receiver.delivered and receiver.forged == 0
    assert len(event_ids) == counts["success"] + counts["fail"]
    assert paid == entries == counts["success"]          # booked once each
    assert twice == [] and refunds == 0                  # charged once each
    balance = retrying(lambda: client.request("GET", "/v1/balance")).json()["balances"][0]
    assert balance["in_transit"] == sum(100 + i - fee_for(100 + i, 60)
                                        for i, o in enumerate(outcomes.values()) if o == "success")


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("round_no", [1, 2])   # twice a run, each with its own random kill points
def test_no_order_lost_no_event_lost_nothing_charged_twice_under_sigkill(db_url: str, tmp_path: Path,
                                                                         round_no: int) -> None:
    port, sim_port, receiver_port = free_port(), free_port(), free_port()
    public_url = f"http://127.0.0.1:{port}"
    sim = SandboxSimulator(MockSettings(SECRET, callback_mode="mixed", callback_delay_ms=700),
                           notify_url=f"{public_url}/v1/notify/sandbox", clock=Clock())
    config = tmp_path / "paymux.toml"
    config.write_text(
        f'public_url = "{public_url}"\nsecret_key = "chaos-test-key-0123456789"\n'
        'notify_allow_private_networks = true\n'   # the merchant's receiver runs on this machine
        'notify_schedule_seconds = [' + ", ".join(["0.3"] * 40) + ']\n'
        'query_schedule_seconds = [0.5, 0.5' + ", 1" * 60 + ']\n'
        'janitor_poll_seconds = 0.2\nnotify_poll_seconds = 0.2\nlease_seconds = 4\n'
        'channel_timeout_seconds = 2\nnotify_timeout_seconds = 2\nlog_json = true\n'
        f'[database]\nurl = "{db_url}"\n'
        '[[channel_accounts]]\nid = "sandbox"\nplugin = "mock"\n'
        f'[channel_accounts.settings]\nsecret = "{SECRET}"\nbase_url = "http://127.0.0.1:{sim_port}"\n')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cli = [sys.executable, "-m", "gateway.cli", "--config", str(config)]
    creds = json.loads(subprocess.run(
        cli + ["merchant", "create", "chaos", "--notify-url", f"http://127.0.0.1:{receiver_port}/events", "--json"],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=True).stdout)
    receiver = Receiver(creds["secret"])
    fleet = Fleet(cli, env, tmp_path, port)
    rng = random.Random(int(os.environ.get("PAYMUX_CHAOS_SEED", "0")) or None)
    stop = threading.Event()

    def chaos() -> None:
        while not stop.wait(rng.uniform(0.6, 1.4)):
            victim = "server" if not fleet.kills["server"] else rng.choice(["server", "worker-1", "worker-2"])
            fleet.kill(victim)
            time.sleep(rng.uniform(0.0, 0.5))
            try:
                fleet.start(victim)
            except AssertionError as exc:   # say why, and let the test see the server is gone
                failures.append(f"{victim} did not restart: {exc}")
                return

    failures: list[str] = []
    with ServerThread(sim.app, sim_port), ServerThread(receiver.app, receiver_port):
        try:
            for name in ("server", "worker-1", "worker-2"):
                fleet.start(name)
            client = Client(public_url, creds["merchant_id"], creds["secret"], timeout=10)
            chaos_thread = threading.Thread(target=chaos, daemon=True)
            chaos_thread.start()
            outcomes = burst(client, rng)
            # However quick the burst, the chaos gets its say: at least four kills, the server among them.
            wait_for(lambda: sum(fleet.kills.values()) >= 4 or failures, timeout=60, interval=0.2)
            stop.set()
            chaos_thread.join()
            assert not failures, failures
            for name, proc in fleet.procs.items():   # everything runs again before we judge the result
                if proc.poll() is not None:
                    fleet.start(name)
            converge(db_url, sim, receiver, outcomes, client)
        finally:
            stop.set()
            fleet.stop()
    check = subprocess.run(cli + ["ledger", "check"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
