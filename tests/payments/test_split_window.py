"""A payment frozen for splitting is released when its window ends, whatever its splits: the janitor, on
a clock moved past the window, asks the channel to let go of what is left (WeChat Pay's unfreeze,
Alipay's royalty_finish), books it back to the merchant once, however often it comes by; and one that
came too late (the channel's own freeze ran out and it let go by itself) is confirmed by what the
channel says the payment still holds. A channel that freezes nothing (the sandbox) has nothing to
release. Over real HTTP against the simulators, on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gateway.config import CircuitConfig
from gateway.logs import get_logger
from gateway.models import SplitRelease
from gateway.service import Gateway
from ledger.models import LedgerEntry
from plugins.alipay import wire as alipay_wire
from plugins.wechatpay import wire as wechat_wire
from tests.conftest import ServerThread, checkout, free_port, make_settings, wait_for
from tests.support import alipay, wechatpay
from tests.support.operator import books_clean
from tests.support.splits import FAST, receiver
from tests.support.unionpay import ShiftedClock

READY = 0.3   # the channels take a split this long after the payment (a minute, 30 s in life)


def sweep_at(settings: Any, clock: ShiftedClock, days: float, passes: int = 4) -> int:
    """The janitor's passes on a clock `days` ahead (gateway and simulator alike); returns its work."""
    clock.offset = timedelta(days=days)

    async def run() -> int:
        gw = Gateway.build(settings, get_logger(role="janitor"), clock)
        try:
            return sum([await gw.janitor.sweep() for _ in range(passes)])
        finally:
            await gw.aclose()

    return asyncio.run(run())


def released_entries(gw: Any) -> int:
    with gw.gateway.db.transaction() as conn:
        return conn.execute(select(func.count()).select_from(LedgerEntry.__table__).where(
            LedgerEntry.__table__.c.event_type == "split.released")).scalar_one()


def release_of(gw: Any, payment_id: str) -> Any:
    t = SplitRelease.__table__
    with gw.gateway.db.transaction() as conn:
        return conn.execute(select(t).where(t.c.payment_id == payment_id)).first()


def balance(client: Any) -> dict:
    return client.request("GET", "/v1/balance").json()["balances"][0]


@pytest.fixture
def wx(gateway_factory, db_url):  # noqa: ANN001, ANN201
    key, clock = wechat_wire.new_key(), ShiftedClock()
    sim = wechatpay.simulator(key, split_ready_seconds=READY, now=clock.now, timestamps=clock.timestamp)
    port = free_port()
    with ServerThread(sim.app, port):
        settings = wechatpay.wechat_settings(db_url, sim, key, port, {"profit_sharing_delay_seconds": READY}, **FAST)
        gw = gateway_factory(settings)
        yield gw, gw.client(gw.merchant()), sim, f"http://127.0.0.1:{port}", clock


def wx_pay(client: Any, sim_url: str, order: str, amount: int) -> dict:
    payment = client.create_payment(merchant_order_no=order, amount=amount, channel="wx", method="native",
                                    splittable=True)
    assert httpx.post(f"{sim_url}/sim/orders/{payment['out_trade_no']}/pay", json={"outcome": "success"}).status_code == 200
    assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")
    time.sleep(READY)   # WeChat Pay takes split orders of it (an unfreeze too) only this long after, in real time
    return payment


def test_wechat_pay_remainder_is_unfrozen_when_the_window_ends_and_booked_once(wx) -> None:
    gw, client, sim, sim_url, clock = wx
    supplier = receiver(client, "1900000110", name="供应商有限公司")
    payment = wx_pay(client, sim_url, "wx-window", 10000)                          # fee 60: 9940 frozen
    split = client.request("POST", f"/v1/payments/{payment['id']}/splits",
                           {"merchant_split_no": "wx-w1", "receiver": supplier["id"], "amount": 2000}).json()
    assert wait_for(lambda: client.request("GET", f"/v1/splits/{split['id']}").json()["status"] == "succeeded")
    assert balance(client)["split_frozen"] == 7940
    # WeChat Pay holds it 30 days; paymux lets go 2 days before (28): on day 27 nothing happens.
    sweep_at(gw.settings, clock, 27)
    assert release_of(gw, payment["id"]) is None and released_entries(gw) == 0
    sweep_at(gw.settings, clock, 28.1)
    release = release_of(gw, payment["id"])
    assert (release.status, release.amount) == ("succeeded", 7940)
    assert [(kind, number, amount) for kind, number, amount in sim.moved if kind == "unfreeze"] == [
        ("unfreeze", release.out_release_no, 7940)]
    assert balance(client)["split_frozen"] == 0 and client.get_payment(payment["id"])["amount_frozen"] == 0
    # However often the janitor comes by again: released once, booked once.
    sweep_at(gw.settings, clock, 29)
    sweep_at(gw.settings, clock, 40)
    assert released_entries(gw) == 1 and [k for k, _, _ in sim.moved].count("unfreeze") == 1
    # the merchant's finish answers the same release; a split after it is refused
    again = client.request("POST", f"/v1/payments/{payment['id']}/splits/finish")
    assert (again.status_code, again.json()["id"]) == (200, release.id)
    late = client.request("POST", f"/v1/payments/{payment['id']}/splits",
                          {"merchant_split_no": "wx-w2", "receiver": supplier["id"], "amount": 10})
    assert (late.status_code, late.json()["error"]["code"]) == (409, "payment_split_finished")
    assert books_clean(gw)


def test_wechat_pay_that_let_go_by_itself_first_is_confirmed_by_what_the_order_still_holds(wx) -> None:
    """The janitor was away past WeChat Pay's 30 days: WeChat Pay unfroze the order itself, and answers
    our unfreeze 分账金额不足; the order holding nothing (unsplit_amount 0) proves it released."""
    gw, client, sim, sim_url, clock = wx
    payment = wx_pay(client, sim_url, "wx-late", 5000)                              # fee 30: 4970 frozen
    sweep_at(gw.settings, clock, 31)
    release = release_of(gw, payment["id"])
    assert (release.status, release.amount) == ("succeeded", 4970)
    assert [(kind, amount) for kind, _, amount in sim.moved] == [("unfreeze", 4970)]   # WeChat Pay's own
    assert balance(client)["split_frozen"] == 0 and balance(client)["in_transit"] == 4970
    sweep_at(gw.settings, clock, 32)
    assert released_entries(gw) == 1
    assert books_clean(gw)


@pytest.fixture
def ali(gateway_factory, db_url):  # noqa: ANN001, ANN201
    key, clock = alipay_wire.new_key(), ShiftedClock()
    sim = alipay.simulator(key, now=clock.now)
    port = free_port()
    with ServerThread(sim.app, port):
        settings = alipay.alipay_settings(db_url, sim, key, port, {"royalty_delay_seconds": READY},
                                          CircuitConfig(min_calls=10_000), **FAST)
        gw = gateway_factory(settings)
        yield gw, gw.client(gw.merchant()), sim, f"http://127.0.0.1:{port}", clock


def ali_pay(client: Any, sim_url: str, order: str, amount: int) -> dict:
    payment = client.create_payment(merchant_order_no=order, amount=amount, channel="ali", method="qr",
                                    splittable=True)
    assert httpx.post(f"{sim_url}/sim/orders/{payment['out_trade_no']}/pay", json={}).status_code == 200
    assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")
    time.sleep(READY)   # as Alipay asks, an order settle only this long after the payment
    return payment


def test_alipay_remainder_is_finished_when_the_window_ends_and_booked_once(ali) -> None:
    gw, client, sim, sim_url, clock = ali
    payment = ali_pay(client, sim_url, "ali-window", 10000)
    frozen = client.get_payment(payment["id"])["amount_frozen"]
    assert frozen > 0
    sweep_at(gw.settings, clock, 27)
    assert release_of(gw, payment["id"]) is None
    sweep_at(gw.settings, clock, 28.1)
    release = release_of(gw, payment["id"])
    assert (release.status, release.amount) == ("succeeded", frozen)
    assert [(kind, number) for kind, number, _ in sim.moved if kind == "finish"] == [("finish", release.out_release_no)]
    sweep_at(gw.settings, clock, 45)
    assert released_entries(gw) == 1 and balance(client)["split_frozen"] == 0
    assert books_clean(gw)


def test_alipay_that_let_go_by_itself_first_is_confirmed_by_onsettle(ali) -> None:
    gw, client, sim, sim_url, clock = ali
    payment = ali_pay(client, sim_url, "ali-late", 6000)
    frozen = client.get_payment(payment["id"])["amount_frozen"]
    sweep_at(gw.settings, clock, 31)
    release = release_of(gw, payment["id"])
    assert (release.status, release.amount) == ("succeeded", frozen)
    [finish] = [number for kind, number, _ in sim.moved if kind == "finish"]
    assert finish.startswith("expired-")                           # Alipay's own release, not ours
    assert released_entries(gw) == 1
    assert books_clean(gw)


def test_an_account_may_set_its_own_window(gateway_factory, db_url) -> None:  # noqa: ANN001
    key, clock = wechat_wire.new_key(), ShiftedClock()
    sim = wechatpay.simulator(key, split_ready_seconds=READY, now=clock.now, timestamps=clock.timestamp)
    port = free_port()
    with ServerThread(sim.app, port):
        settings = wechatpay.wechat_settings(db_url, sim, key, port, {"profit_sharing_delay_seconds": READY}, **FAST)
        [account] = settings.channel_accounts
        settings = settings.with_changes(channel_accounts=(account.__class__(**{
            **account.__dict__, "split_release_days": 7}),))
        gw = gateway_factory(settings)
        client = gw.client(gw.merchant())
        payment = wx_pay(client, f"http://127.0.0.1:{port}", "wx-7", 3000)
        sweep_at(settings, clock, 6.9)
        assert release_of(gw, payment["id"]) is None
        sweep_at(settings, clock, 7.1)
        assert release_of(gw, payment["id"]).status == "succeeded"
        assert books_clean(gw)


def test_the_sandbox_freezes_nothing_so_its_window_releases_nothing(gateway_factory, db_url) -> None:  # noqa: ANN001
    settings = make_settings(db_url, free_port()).with_changes(**FAST)
    gw = gateway_factory(settings)
    client = gw.client(gw.merchant())
    rcv = receiver(client)
    payment = client.create_payment(merchant_order_no="sbx-w", amount=10000,
                                    splits=[{"receiver": rcv["id"], "amount": 3000}])
    checkout(payment)
    assert wait_for(lambda: {s["status"] for s in client.request(
        "GET", f"/v1/payments/{payment['id']}/splits").json()["data"]} == {"succeeded"})
    before = balance(client)
    sweep_at(settings, ShiftedClock(), 60)
    assert release_of(gw, payment["id"]) is None and released_entries(gw) == 0
    assert balance(client) == before and before["split_frozen"] == 0
    assert books_clean(gw)
