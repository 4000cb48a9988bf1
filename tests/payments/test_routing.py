"""Routing: priority, weight, limits, merchant preference, the circuit breaker, and failover of a
create that failed before anyone could pay — against sandbox accounts and two WeChat Pay simulators."""
from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from gateway.clock import Clock
from gateway.config import AccountLimits, ChannelAccountConfig, CircuitConfig, Settings, settings_from_mapping
from gateway.errors import ConfigError
from gateway.health import CLOSED, HALF_OPEN, OPEN, HealthBoard
from gateway.logs import get_logger
from gateway.plugins import PluginHost
from gateway.routing import AccountOverrides, Router
from ledger.days import BusinessDay
from plugins.wechatpay import wire
from plugins.wechatpay.simulator import WechatPaySimulator
from tests.conftest import SANDBOX_SECRET, SECRET_KEY, ServerThread, checkout, free_port, wait_for
from tests.support.operator import books_clean
from tests.support.wechatpay import APIV3_KEY, APPID, MCHID, SERIAL

# ---- the circuit breaker, on a clock the test moves ----

class Ticker:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def board(**circuit: Any) -> tuple[HealthBoard, Ticker]:
    tick = Ticker()
    return HealthBoard({"a": CircuitConfig(**circuit)}, get_logger(), monotonic=tick), tick


def test_a_circuit_opens_on_its_error_rate_only_after_enough_calls() -> None:
    health, tick = board(error_rate=0.5, min_calls=4, window_seconds=10, cooldown_seconds=5)
    for _ in range(3):
        health.record("a", "create", ok=False, timeout=False, seconds=0.01)
    assert health.state("a") == CLOSED              # 3 errors, but fewer calls than min_calls
    health.record("a", "create", ok=True, timeout=False, seconds=0.01)
    assert health.state("a") == CLOSED              # the success is not what opens it
    health.record("a", "create", ok=False, timeout=True, seconds=2.0)
    assert health.state("a") == OPEN and not health.available("a")  # 4 of 5 failed


def test_old_calls_leave_the_window() -> None:
    health, tick = board(error_rate=0.5, min_calls=4, window_seconds=10)
    for _ in range(3):
        health.record("a", "query", ok=False, timeout=False, seconds=0.01)
    tick.t += 11
    for _ in range(3):
        health.record("a", "query", ok=True, timeout=False, seconds=0.01)
    health.record("a", "query", ok=False, timeout=False, seconds=0.01)
    assert health.state("a") == CLOSED              # 1 of 4 within the window


def test_an_open_circuit_half_opens_after_cooldown_and_one_probe_decides() -> None:
    health, tick = board(error_rate=0.5, min_calls=2, window_seconds=60, cooldown_seconds=30)
    for _ in range(2):
        health.record("a", "create", ok=False, timeout=False, seconds=0.01)
    assert health.state("a") == OPEN
    tick.t += 29
    assert not health.available("a")
    tick.t += 2
    assert health.state("a") == HALF_OPEN and health.available("a")
    health.begin("a")                               # the probe goes out: nobody else meanwhile
    assert not health.available("a")
    health.record("a", "create", ok=False, timeout=False, seconds=0.01)
    assert health.state("a") == OPEN                # probe failed: open for another cool-down
    tick.t += 31
    health.begin("a")
    health.record("a", "create", ok=True, timeout=False, seconds=0.01)
    assert health.state("a") == CLOSED and health.available("a")


# ---- configuration ----

def _raw_account(**extra: Any) -> dict:
    return {"id": "a", "plugin": "mock", "settings": {"secret": SANDBOX_SECRET}, **extra}


@pytest.mark.parametrize("extra,message", [
    ({"priority": -1}, "priority"), ({"weight": 0}, "weight"), ({"weight": 1.5}, "weight"),
    ({"limits": {"max_amount": -5}}, "max_amount"), ({"limits": {"min_amount": 10, "max_amount": 5}}, "min_amount"),
    ({"limits": {"methods": "qr"}}, "methods"), ({"limits": {"daily_quota": 3}}, "daily_quota"),
    ({"circuit": {"error_rate": 0}}, "error_rate"), ({"circuit": {"min_calls": 0}}, "min_calls"),
    ({"circuit": {"cooldown_seconds": -1}}, "cooldown_seconds"), ({"prio": 1}, "prio"),
])
def test_bad_routing_settings_stop_start_up_naming_the_key(extra: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from_mapping({"channel_accounts": [_raw_account(**extra)]}, {})


def test_merchant_preferences_must_name_configured_accounts() -> None:
    ok = settings_from_mapping({"channel_accounts": [_raw_account()],
                                "routing": {"merchant_preferences": {"mch_1": ["a"]}}}, {})
    assert ok.merchant_preferences == {"mch_1": ("a",)}
    with pytest.raises(ConfigError, match="'zz'"):
        settings_from_mapping({"channel_accounts": [_raw_account()],
                               "routing": {"merchant_preferences": {"mch_1": ["zz"]}}}, {})


# ---- the router over sandbox accounts ----

def sandbox(account_id: str, priority: int = 100, weight: int = 1, **limits: Any) -> ChannelAccountConfig:
    return ChannelAccountConfig(account_id, "mock", True, {"secret": SANDBOX_SECRET}, priority, weight,
                                AccountLimits(**limits))


def routed_settings(db_url: str, *accounts: ChannelAccountConfig, **over: Any) -> Settings:
    return Settings(public_url=f"http://127.0.0.1:{free_port()}", database_url=db_url, secret_key=SECRET_KEY,
                    channel_accounts=accounts, **over)


def test_weights_share_payments_among_accounts_of_one_priority() -> None:
    settings = routed_settings("sqlite://", sandbox("heavy", 10, 3), sandbox("light", 10, 1), sandbox("spare", 20))
    host = PluginHost(settings, httpx.AsyncClient(), Clock(), get_logger())
    router = Router(host, HealthBoard({}, get_logger()), {}, BusinessDay.of("Asia/Shanghai", 0),
                    rng=random.Random(7), overrides=AccountOverrides.none())   # no database: no runtime switch
    firsts = Counter()
    import asyncio

    for _ in range(2000):
        plan = asyncio.run(router.plan(None, Clock().now(), "m", 100, "CNY", None, None))  # type: ignore[arg-type]
        firsts[plan.routes[0].account.id] += 1
        assert plan.routes[-1].account.id == "spare"  # the lower priority only ever as the last resort
    assert 0.70 < firsts["heavy"] / 2000 < 0.80 and firsts["spare"] == 0


def test_priority_limits_and_preference_choose_the_account_and_say_why(gateway_factory, db_url) -> None:
    merchant_holder: dict[str, str] = {}
    settings = routed_settings(
        db_url,
        sandbox("small", 1, max_amount=10_000),
        sandbox("qr-only", 2, methods=["qr"]),
        sandbox("capped", 3, daily_count=2),
        sandbox("big", 4, min_amount=50_000),
    )
    gw = gateway_factory(settings)
    creds = gw.merchant()
    merchant_holder["id"] = creds.merchant_id
    client = gw.client(creds)

    def pay(n: int, amount: int, **kw: Any) -> dict:
        return client.create_payment(merchant_order_no=f"o-{n}", amount=amount, **kw)

    assert pay(1, 500)["channel"] == "small"                      # priority 1 takes what fits it
    assert pay(2, 20_000, method="qr")["channel"] == "qr-only"    # too big for small
    second = pay(3, 20_000, method="redirect")                    # qr-only does not offer redirect
    assert second["channel"] == "capped"
    assert pay(4, 20_000, method="redirect")["channel"] == "capped"
    fifth = pay(5, 60_000, method="redirect")                     # capped used its 2 for today
    assert fifth["channel"] == "big"
    routing = client.request("GET", f"/v1/payments/{fifth['id']}/attempts").json()["data"][0]["routing"]
    assert routing["chose"] == "big" and routing["why"] == "priority 4, weight 1"
    assert routing["skipped"] == {"small": "above_max_amount", "qr-only": "method_not_offered",
                                  "capped": "daily_count_reached"}

    refused = client.request("POST", "/v1/payments", {"merchant_order_no": "o-6", "amount": 30_000,
                                                      "method": "redirect"})
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "channel_unavailable"
    assert "capped: daily_count_reached" in refused.json()["error"]["message"]
    too_big = client.request("POST", "/v1/payments", {"merchant_order_no": "o-7", "amount": 30_000,
                                                      "channel": "small"})
    assert too_big.status_code == 400 and too_big.json()["error"]["code"] == "amount_outside_channel_limits"
    assert gw.count("payments") == 5


def test_a_merchants_preference_comes_before_priority(gateway_factory, db_url) -> None:
    probe = routed_settings(db_url, sandbox("first", 1), sandbox("second", 2))
    gw = gateway_factory(probe)
    creds = gw.merchant()
    gw2 = gateway_factory(routed_settings(db_url, sandbox("first", 1), sandbox("second", 2),
                                          merchant_preferences={creds.merchant_id: ("second",)}))
    payment = gw2.client(creds).create_payment(merchant_order_no="pref", amount=100)
    assert payment["channel"] == "second"
    attempt = gw2.client(creds).request("GET", f"/v1/payments/{payment['id']}/attempts").json()["data"][0]
    assert attempt["routing"]["why"] == "merchant_preference"
    assert checkout(payment)["trade_status"] == "SUCCESS"
    assert wait_for(lambda: gw2.client(creds).get_payment(payment["id"])["status"] == "succeeded")


# ---- failover and circuits with two WeChat Pay simulators ----

class Wechat:
    def __init__(self, merchant_key: Any) -> None:
        self.sim = WechatPaySimulator(mchid=MCHID, appid=APPID, apiv3_key=APIV3_KEY,
                                      merchant_public_key=merchant_key.public_key(), merchant_serial_no=SERIAL)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = ServerThread(self.sim.app, self.port).__enter__()

    def account(self, account_id: str, priority: int, merchant_key: Any, **circuit: Any) -> ChannelAccountConfig:
        return ChannelAccountConfig(account_id, "wechatpay", True, {
            "mchid": MCHID, "appid": APPID, "merchant_serial_no": SERIAL,
            "merchant_private_key": wire.private_pem(merchant_key), "apiv3_key": APIV3_KEY,
            "platform_public_key": self.sim.platform_public_pem, "platform_public_key_id": self.sim.platform_serial,
            "base_url": self.url}, priority, 1, AccountLimits(), CircuitConfig(**circuit))

    def faults(self, **faults: Any) -> None:
        httpx.post(f"{self.url}/sim/faults", json=faults).raise_for_status()

    def pay(self, payment: dict) -> None:
        httpx.post(f"{self.url}/sim/orders/{payment['out_trade_no']}/pay", json={"outcome": "success"}).raise_for_status()


@pytest.fixture
def two_wechats():  # noqa: ANN201
    key = wire.new_key()
    a, b = Wechat(key), Wechat(key)
    yield a, b, key
    a.server.__exit__(None, None, None)
    b.server.__exit__(None, None, None)


def test_a_create_that_fails_before_any_action_fails_over_and_the_first_attempt_is_retired(
        gateway_factory, db_url, two_wechats) -> None:
    a, b, key = two_wechats
    gw = gateway_factory(routed_settings(db_url, a.account("wx-a", 1, key), b.account("wx-b", 2, key),
                                         channel_timeout_seconds=1.0, janitor_poll_seconds=0.1,
                                         query_schedule_seconds=(0.2, 0.2)))
    client = gw.client(gw.merchant())
    a.faults(server_errors=1)                     # a 5xx from wx-a
    first = client.create_payment(merchant_order_no="f-1", amount=1200, method="native")
    a.faults(slow_ms=1500)                        # then a timeout from wx-a
    second = client.create_payment(merchant_order_no="f-2", amount=1300, method="native")
    a.faults(slow_ms=0)
    for payment in (first, second):
        assert payment["channel"] == "wx-b" and payment["action"]["type"] == "qr", payment
        tried = client.request("GET", f"/v1/payments/{payment['id']}/attempts").json()["data"]
        assert [t["channel"] for t in tried] == ["wx-a", "wx-b"]
        # Left unknown by the failover; the janitor (polling every 0.1 s) may already have asked wx-a
        # about it, which is why the failover's record below, not this status, is what is checked exactly.
        assert tried[0]["status"] in ("unknown", "pending", "closed")
        assert tried[1]["routing"]["failover_from"] == {"attempt": tried[0]["id"], "channel_account": "wx-a",
                                                        "outcome": "unknown", "error_code": "channel_unreachable"}
    # The janitor closes what was left at wx-a (nobody holds its QR code); the payment stays open at wx-b.
    assert wait_for(lambda: [t["status"] for t in client.request(
        "GET", f"/v1/payments/{first['id']}/attempts").json()["data"]] == ["closed", "pending"], timeout=15)
    assert client.get_payment(first["id"])["status"] == "processing"
    b.pay(first)
    assert wait_for(lambda: client.get_payment(first["id"])["status"] == "succeeded")
    assert gw.count("ledger_entries") == 1 and books_clean(gw)


def test_a_slow_answer_within_the_timeout_is_waited_for_not_failed_over(gateway_factory, db_url, two_wechats) -> None:
    a, b, key = two_wechats
    gw = gateway_factory(routed_settings(db_url, a.account("wx-a", 1, key), b.account("wx-b", 2, key),
                                         channel_timeout_seconds=2.0))
    client = gw.client(gw.merchant())
    a.faults(slow_ms=600)
    payment = client.create_payment(merchant_order_no="slow", amount=100, method="native")
    assert payment["channel"] == "wx-a" and payment["action"]["type"] == "qr"
    assert len(client.request("GET", f"/v1/payments/{payment['id']}/attempts").json()["data"]) == 1
    a.pay(payment)                                # the callback comes; queries are slow but answered
    assert wait_for(lambda: client.get_payment(payment["id"], sync=True)["status"] == "succeeded")
    assert gw.gateway.health.state("wx-a") == CLOSED


def test_a_declined_create_does_not_fail_over(gateway_factory, db_url, two_wechats) -> None:
    """A decline is an answer: the payment fails, it is not sent elsewhere behind the merchant's back."""
    a, b, key = two_wechats
    gw = gateway_factory(routed_settings(db_url, a.account("wx-a", 1, key), b.account("wx-b", 2, key)))
    client = gw.client(gw.merchant())
    payment = client.create_payment(merchant_order_no="jsapi", amount=100, method="jsapi")  # no payer_openid
    assert payment["status"] == "failed" and payment["channel"] == "wx-a"
    assert len(client.request("GET", f"/v1/payments/{payment['id']}/attempts").json()["data"]) == 1


def test_an_account_whose_circuit_opens_mid_burst_is_skipped_and_probed_back(gateway_factory, db_url, two_wechats,
                                                                             tmp_path) -> None:
    a, b, key = two_wechats
    settings = routed_settings(db_url, a.account("wx-a", 1, key, min_calls=4, error_rate=0.5, cooldown_seconds=2),
                               b.account("wx-b", 2, key), channel_timeout_seconds=2.0, health_flush_seconds=0.2,
                               query_schedule_seconds=(600,))   # no janitor queries to muddle the count
    gw = gateway_factory(settings)
    client = gw.client(gw.merchant())

    def create(n: int) -> dict:
        return client.create_payment(merchant_order_no=f"burst-{n}", amount=100 + n, method="native")

    with ThreadPoolExecutor(4) as pool:
        before = list(pool.map(create, range(8)))
        a.faults(server_errors=10_000)            # wx-a goes down mid-burst
        after = list(pool.map(create, range(8, 40)))
    assert {p["channel"] for p in before} == {"wx-a"}
    assert all(p["status"] == "processing" and p["action"] for p in before + after)   # none lost, all payable
    failed_at_a = 10_000 - a.sim.faults.server_errors
    # 8 successes were in the window: 8 failures make 50 %, and up to 3 more were already in flight.
    assert 8 <= failed_at_a <= 11                 # not 32: once open, wx-a was skipped
    last = client.request("GET", f"/v1/payments/{after[-1]['id']}/attempts").json()["data"]
    assert [t["channel"] for t in last] == ["wx-b"] and last[0]["routing"]["skipped"] == {"wx-a": "circuit_open"}

    config = tmp_path / "paymux.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n' + "".join(
        f'[[channel_accounts]]\nid = "{i}"\nplugin = "mock"\n[channel_accounts.settings]\nsecret = "{SANDBOX_SECRET}"\n'
        for i in ("wx-a", "wx-b")))

    def channels() -> dict[str, Any]:
        out = subprocess.run([sys.executable, "-m", "gateway.cli", "--config", str(config), "channels", "--json"],
                             capture_output=True, text=True, check=True).stdout
        return {c["id"]: c for c in json.loads(out)}

    seen = wait_for(lambda: (c := channels())["wx-a"]["circuit"]["state"] == "open" and c)
    assert seen["wx-a"]["errors"] == failed_at_a and seen["wx-a"]["success_rate"] < 1
    assert seen["wx-b"]["today"]["count"] == 40 - 8 and seen["wx-b"]["circuit"]["state"] == "closed"

    a.faults(server_errors=0)                     # wx-a is back; after the cool-down one payment probes it
    numbers = itertools.count(1000)
    probe = wait_for(lambda: (p := create(next(numbers)))["channel"] == "wx-a" and p, timeout=10, interval=0.3)
    assert probe["action"]["type"] == "qr"
    assert wait_for(lambda: channels()["wx-a"]["circuit"]["state"] == "closed")


def test_health_needs_neither_the_router_nor_the_reports() -> None:
    # routing imports health (the circuits); a report in health importing routing back made a circle
    import subprocess
    import sys

    found = subprocess.run([sys.executable, "-c", "import sys, gateway.health; print(sorted(m for m in sys.modules "
                            "if m in ('gateway.routing', 'gateway.reports')))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert found == "[]"


def test_a_runtime_switch_changes_weight_and_limits_over_the_configuration() -> None:
    """The override row as every router reads it (tests/console/test_switch.py: written by the console,
    followed by a second process): weight and limits replace the configuration's, the rest stays."""
    from types import SimpleNamespace

    settings = routed_settings("sqlite://", sandbox("heavy", 10, 3), sandbox("light", 10, 1))
    host = PluginHost(settings, httpx.AsyncClient(), Clock(), get_logger())
    overrides = AccountOverrides.none()
    overrides.rows = {"light": SimpleNamespace(channel_account="light", enabled=None, weight=30,
                                               limits={"max_amount": 500}, version=1)}
    router = Router(host, HealthBoard({}, get_logger()), {}, BusinessDay.of("Asia/Shanghai", 0),
                    rng=random.Random(7), overrides=overrides)
    import asyncio

    firsts = Counter(asyncio.run(router.plan(None, Clock().now(), "m", 100, "CNY", None, None)  # type: ignore[arg-type]
                                 ).routes[0].account.id for _ in range(1000))
    assert firsts["light"] > 800                          # weight 30 against 3
    plan = asyncio.run(router.plan(None, Clock().now(), "m", 600, "CNY", None, None))  # type: ignore[arg-type]
    assert [r.account.id for r in plan.routes] == ["heavy"] and plan.skipped == {"light": "above_max_amount"}
    assert host.account("light").config.weight == 1       # the configuration itself is untouched
