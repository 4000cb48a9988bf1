"""Alipay's documented answers, table by table (plugins/alipay/answers.py), driven through the simulator
over real HTTP: what each answer to a refund means in the end (final, unknown, ask again), by the
synchronous answer, the query and the notify; no run of unknown answers ever refunds twice or fails what
Alipay did not refuse; fund_change N is never taken for a refund by itself; a precreate answered
"already paid" is never a failure. (Settles: tests/test_alipay_splits.py.)"""
from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.config import CircuitConfig
from plugins.alipay import wire
from tests.conftest import ServerThread, free_port, wait_for
from tests.support.alipay import alipay_settings, simulator
from tests.support.operator import books_clean

FAST = dict(query_schedule_seconds=(0.2,) * 20, janitor_poll_seconds=0.1, query_give_up_seconds=3600)


def answer(sub_code: str = "ACQ.SYSTEM_ERROR", after: bool = False, code: str = "40004",
           http_status: int | None = None) -> dict[str, Any]:
    """Alipay's next answer to a method; after: it acted first (as a timeout after it acted looks)."""
    return {"code": code, "sub_code": sub_code, "after": after, "http_status": http_status}


class World:
    def __init__(self, gw: Any, sim: Any, sim_url: str) -> None:
        self.gw, self.sim, self.sim_url = gw, sim, sim_url
        self.client = gw.client(gw.merchant())
        self.n = 0

    def faults(self, **faults: Any) -> None:
        httpx.post(f"{self.sim_url}/sim/faults", json=faults).raise_for_status()

    def paid(self) -> dict:
        self.n += 1
        payment = self.client.create_payment(merchant_order_no=f"ali-ans-{self.n}", amount=10000, channel="ali",
                                             method="qr")
        httpx.post(f"{self.sim_url}/sim/orders/{payment['out_trade_no']}/pay", json={}).raise_for_status()
        assert wait_for(lambda: self.client.get_payment(payment["id"])["status"] == "succeeded")
        return payment

    def events(self, resource_id: str) -> list[str]:
        return [e["type"] for e in self.client.request("GET", "/v1/events").json()["data"]
                if e["data"]["object"].get("id") == resource_id]


@pytest.fixture
def world(gateway_factory, db_url):  # noqa: ANN001, ANN201
    key = wire.new_key()
    sim = simulator(key)
    port = free_port()
    with ServerThread(sim.app, port):
        gw = gateway_factory(alipay_settings(db_url, sim, key, port, circuit=CircuitConfig(min_calls=10_000), **FAST))
        yield World(gw, sim, f"http://127.0.0.1:{port}")


# (what Alipay answers alipay.trade.refund, the refund's end, its failure code, times money moved)
REFUNDS = [
    ("10000 fund_change Y", [], "succeeded", None, 1),
    ("10000 fund_change N, nothing on the query: unknown, asked, sent again under its number",
     [answer(code="10000")], "succeeded", None, 1),
    ("ACQ.SYSTEM_ERROR after refunding: the query finds it", [answer(after=True)], "succeeded", None, 1),
    ("ACQ.SYSTEM_ERROR before refunding: nothing on the query, sent again", [answer()], "succeeded", None, 1),
    ("20000 service unavailable after refunding", [answer("isp.unknow-error", True, "20000")], "succeeded", None, 1),
    ("a 502 before refunding", [answer(http_status=502)], "succeeded", None, 1),
    ("ACQ.TRADE_STATUS_ERROR though it refunded (a resend after the trade closed): the query finds it",
     [answer("ACQ.TRADE_STATUS_ERROR", True)], "succeeded", None, 1),
    ("ACQ.SELLER_BALANCE_NOT_ENOUGH: final", [answer("ACQ.SELLER_BALANCE_NOT_ENOUGH")], "failed",
     "ACQ.SELLER_BALANCE_NOT_ENOUGH", 0),
    ("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL: final", [answer("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")], "failed",
     "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", 0),
    ("ACQ.REASON_TRADE_REFUND_FEE_ERR: final", [answer("ACQ.REASON_TRADE_REFUND_FEE_ERR")], "failed",
     "ACQ.REASON_TRADE_REFUND_FEE_ERR", 0),
    ("40002 invalid arguments: final", [answer("isv.invalid-arguments", code="40002")], "failed",
     "isv.invalid-arguments", 0),
]


def test_each_refund_answer_ends_as_alipay_documents_it(world) -> None:
    for name, script, status, code, moved in REFUNDS:
        payment = world.paid()
        world.faults(script={"alipay.trade.refund": script})
        refund = world.client.create_refund(payment["id"], merchant_refund_no=f"r-{world.n}", amount=10000)
        assert refund["status"] != "failed" or code, name
        assert wait_for(lambda: world.client.get_refund(refund["id"])["status"] == status), name
        ended = world.client.get_refund(refund["id"])
        assert (ended["failure"] or {}).get("code") == code, (name, ended)
        trade = world.sim.trades[payment["out_trade_no"]]
        assert len(trade.refunds) == moved and all(world.sim.moved_for("refund", n) == 1 for n in trade.refunds), name
        assert world.client.get_payment(payment["id"])["amount_refunded"] == (10000 if status == "succeeded" else 0)
        assert "refund.failed" not in world.events(refund["id"]) or status == "failed", name
    assert books_clean(world.gw)


def test_no_run_of_unknown_answers_refunds_twice_or_fails(world) -> None:
    runs = [
        [answer(), answer(after=True)],
        [answer(http_status=502), answer("isp.unknow-error", code="20000"), answer(code="10000")],
        [answer(after=True), answer("ACQ.TRADE_STATUS_ERROR", True)],
    ]
    for run in runs:
        payment = world.paid()
        world.faults(script={"alipay.trade.refund": run, "alipay.trade.fastpay.refund.query": [
            answer(), answer("isp.unknow-error", code="20000")]})
        refund = world.client.create_refund(payment["id"], merchant_refund_no=f"run-{world.n}", amount=4000)
        assert wait_for(lambda: world.client.get_refund(refund["id"])["status"] == "succeeded"), run
        trade = world.sim.trades[payment["out_trade_no"]]
        assert len(trade.refunds) == 1 and world.sim.moved_for("refund", next(iter(trade.refunds))) == 1, run
        assert "refund.failed" not in world.events(refund["id"])
        world.faults(script={"alipay.trade.refund": [], "alipay.trade.fastpay.refund.query": []})
    assert books_clean(world.gw)


def test_a_precreate_answered_already_paid_is_not_a_failure_and_a_query_not_found_is_pending(world) -> None:
    world.faults(script={"alipay.trade.precreate": [answer("ACQ.TRADE_HAS_SUCCESS", True)]})
    made = world.client.request("POST", "/v1/payments", {"merchant_order_no": "has-success", "amount": 100,
                                                         "channel": "ali", "method": "qr"}).json()
    assert made["status"] == "processing"          # asked at once: not (yet) there; never failed
    world.faults(script={"alipay.trade.precreate": [answer("ACQ.TRADE_HAS_CLOSE")]})
    closed = world.client.request("POST", "/v1/payments", {"merchant_order_no": "has-close", "amount": 100,
                                                           "channel": "ali", "method": "qr"}).json()
    assert closed["status"] == "failed" and closed["failure"]["code"] == "ACQ.TRADE_HAS_CLOSE"
    world.faults(script={"alipay.trade.precreate": [answer(after=True)]})
    unknown = world.client.request("POST", "/v1/payments", {"merchant_order_no": "precreate-500", "amount": 100,
                                                            "channel": "ali", "method": "qr"}).json()
    assert unknown["status"] == "processing"
    assert world.client.get_payment(unknown["id"], sync=True)["status"] == "processing"   # 交易不存在: not paid


def test_seller_id_is_required(db_url) -> None:
    from gateway.app import create_app
    from gateway.config import ChannelAccountConfig, Settings
    from gateway.errors import ConfigError
    from tests.conftest import SECRET_KEY

    key = wire.new_key()
    for seller in (None, "", "12345"):
        settings = Settings(database_url=db_url, secret_key=SECRET_KEY, channel_accounts=(ChannelAccountConfig(
            "ali", "alipay", True, {"app_id": "2021000000000001", "app_private_key": wire.private_pem(key),
                                    "alipay_public_key": wire.public_pem(key.public_key()),
                                    **({"seller_id": seller} if seller is not None else {})}),))
        with pytest.raises(ConfigError, match="seller_id"):
            create_app(settings)
