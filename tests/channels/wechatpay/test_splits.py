"""WeChat Pay profit sharing (分账) against the simulator over real HTTP: the payment is created to be
split and WeChat Pay holds its money frozen; the receiver is added with its name encrypted; a split is
one profit-sharing order, sent only once WeChat Pay takes splits of the order and within its share
cap, settled by query; a refund under the "return" policy first takes the share back; and when the
splitting is over, what is left is released (解冻剩余资金) and booked back to the merchant."""
from __future__ import annotations

import time

import httpx
import pytest

from plugins.wechatpay import wire
from tests.conftest import ServerThread, free_port, wait_for
from tests.support.operator import books_clean
from tests.support.splits import receiver, receiver_balance
from tests.support.wechatpay import simulator, wechat_settings

FAST = dict(query_schedule_seconds=(0.3, 0.3, 0.3), janitor_poll_seconds=0.1, query_give_up_seconds=3600)
READY = 0.5   # WeChat Pay takes a split of an order a minute after its payment; here half a second


@pytest.fixture
def wx(gateway_factory, db_url):  # noqa: ANN001, ANN201
    key = wire.new_key()
    sim = simulator(key, split_ready_seconds=READY)
    port = free_port()
    with ServerThread(sim.app, port):
        gw = gateway_factory(wechat_settings(db_url, sim, key, port, {"profit_sharing_delay_seconds": READY},
                                             split_refund_policy="return", **FAST))
        yield gw, gw.client(gw.merchant()), sim, f"http://127.0.0.1:{port}"


def pay(client, sim_url: str, order: str, amount: int, **fields):  # noqa: ANN001, ANN003, ANN201
    payment = client.create_payment(merchant_order_no=order, amount=amount, channel="wx", method="native", **fields)
    assert httpx.post(f"{sim_url}/sim/orders/{payment['out_trade_no']}/pay", json={"outcome": "success"}).status_code == 200
    assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")
    return payment


def balance(client) -> dict:  # noqa: ANN001
    return client.request("GET", "/v1/balance").json()["balances"][0]


def test_profit_sharing_waits_for_wechat_pay_keeps_its_cap_and_returns_for_a_refund(wx) -> None:
    gw, client, sim, sim_url = wx
    supplier = receiver(client, "1900000110", name="供应商有限公司")           # a WeChat Pay merchant id
    payment = pay(client, sim_url, "wx-split", 10000, splittable=True)
    order = sim.orders[payment["out_trade_no"]]
    assert order.profit_sharing and order.frozen == 10000 - 60                  # told at creation; frozen there
    assert client.get_payment(payment["id"])["amount_frozen"] == 10000 - 60     # and frozen in the books
    assert balance(client)["split_frozen"] == 9940 and balance(client)["in_transit"] == 0
    # WeChat Pay's default cap is 30% of the order: more is refused here, nothing sent.
    too_much = client.request("POST", f"/v1/payments/{payment['id']}/splits",
                              {"merchant_split_no": "wx-big", "receiver": supplier["id"], "amount": 3001})
    assert (too_much.status_code, too_much.json()["error"]["code"]) == (400, "split_exceeds_payment")
    made = client.request("POST", f"/v1/payments/{payment['id']}/splits",
                          {"merchant_split_no": "wx-s1", "receiver": supplier["id"], "amount": 3000}).json()
    assert made["status"] == "processing" and made["out_split_no"] not in sim.sharing   # too soon to send
    assert wait_for(lambda: client.request("GET", f"/v1/splits/{made['id']}").json()["status"] == "succeeded")
    share = sim.sharing[made["out_split_no"]]
    assert time.time() >= order.paid_at + READY and share["receivers"][0]["amount"] == 3000
    assert sim.receivers[("MERCHANT_ID", "1900000110")] == "供应商有限公司"      # the name decrypted there
    assert receiver_balance(gw, supplier["id"]) == 3000 and balance(client)["split_frozen"] == 9940 - 3000
    # A refund of 8000 needs 8000 - 48 = 7952 of the merchant, who kept 10000 - 60 - 3000 = 6940:
    # 1012 comes back from the supplier first (a return order), then WeChat Pay takes the refund.
    refund = client.create_refund(payment["id"], merchant_refund_no="wx-r", amount=8000)
    assert wait_for(lambda: client.get_refund(refund["id"])["status"] == "succeeded")
    [returned] = sim.returns.values()
    assert (returned["amount"], returned["return_mchid"], returned["out_order_no"]) == (1012, "1900000110",
                                                                                         made["out_split_no"])
    assert receiver_balance(gw, supplier["id"]) == 3000 - 1012
    assert balance(client)["split_frozen"] == 0                                 # the refund took the frozen share
    assert [kind for kind, _, _ in sim.moved] == ["share", "return", "refund"]   # each moved once
    assert all(sim.moved_for(kind, number) == 1 for kind, number, _ in sim.moved)
    assert books_clean(gw)


def test_declared_splits_end_with_the_remainder_released_and_booked(wx) -> None:
    """The split declared with the payment goes once WeChat Pay takes it; when it has succeeded, one
    unfreeze releases the rest to the merchant, booked back to in-transit (and settled from there)."""
    gw, client, sim, sim_url = wx
    supplier = receiver(client, "1900000111", name="供应商")
    payment = pay(client, sim_url, "wx-declared", 10000, splits=[{"receiver": supplier["id"], "amount": 2000}])
    order = sim.orders[payment["out_trade_no"]]

    def release() -> dict | None:
        found = client.request("POST", f"/v1/payments/{payment['id']}/splits/finish")
        assert found.status_code == 200, found.text          # made by paymux when the declared split ended
        return found.json() if found.json()["status"] == "succeeded" else None

    assert wait_for(lambda: client.request("GET", f"/v1/payments/{payment['id']}/splits").json()["data"][0]
                    ["status"] == "succeeded")
    released = wait_for(release)
    assert released["amount"] == 10000 - 60 - 2000 and order.unfrozen and order.frozen == 0
    moved = [(kind, amount) for kind, _, amount in sim.moved]
    assert moved == [("share", 2000), ("unfreeze", 7940)]                     # each exactly once
    assert client.get_payment(payment["id"])["amount_frozen"] == 0
    b = balance(client)
    assert (b["split_frozen"], b["in_transit"], b["split_pending"]) == (0, 7940, 0)
    assert receiver_balance(gw, supplier["id"]) == 2000
    # The splitting is over: no more splits of it.
    late = client.request("POST", f"/v1/payments/{payment['id']}/splits",
                          {"merchant_split_no": "wx-late", "receiver": supplier["id"], "amount": 100})
    assert (late.status_code, late.json()["error"]["code"]) == (409, "payment_split_finished")
    assert books_clean(gw)


def test_a_finish_when_nothing_waits_releases_everything_once_though_the_answer_is_lost(wx) -> None:
    """A payment made to be split and never split: the merchant finishes it; WeChat Pay unfreezes it
    but the answer is lost (500 after acting); the query finds it done. Released once, booked once."""
    gw, client, sim, sim_url = wx
    payment = pay(client, sim_url, "wx-unsplit", 5000, splittable=True)
    httpx.post(f"{sim_url}/sim/faults", json={"script": {"unfreeze": [{"status": 500, "code": "SYSTEM_ERROR",
                                                                       "after": True}]}}).raise_for_status()
    asked = client.request("POST", f"/v1/payments/{payment['id']}/splits/finish")
    assert asked.status_code == 201 and asked.json()["status"] == "processing"
    released = wait_for(lambda: (lambda r: r if r["status"] == "succeeded" else None)(
        client.request("POST", f"/v1/payments/{payment['id']}/splits/finish").json()))
    assert released["amount"] == 5000 - 30
    assert [(kind, amount) for kind, _, amount in sim.moved] == [("unfreeze", 4970)]
    assert balance(client)["split_frozen"] == 0 and balance(client)["in_transit"] == 4970
    assert books_clean(gw)


def test_a_payment_not_created_to_be_split_cannot_be_shared(wx) -> None:
    gw, client, sim, sim_url = wx
    person = receiver(client, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", type="personal", name="李四")
    payment = pay(client, sim_url, "wx-plain", 5000)
    made = client.request("POST", f"/v1/payments/{payment['id']}/splits",
                          {"merchant_split_no": "wx-s2", "receiver": person["id"], "amount": 1000}).json()
    # WeChat Pay's refusal stands once its query finds no such profit-sharing order.
    assert wait_for(lambda: client.request("GET", f"/v1/splits/{made['id']}").json()["status"] == "failed")
    failed = client.request("GET", f"/v1/splits/{made['id']}").json()
    assert failed["failure"]["code"] == "INVALID_REQUEST"
    assert balance(client)["split_pending"] == 0 and receiver_balance(gw, person["id"]) == 0
    assert client.get_payment(payment["id"])["status"] == "succeeded"
    finish = client.request("POST", f"/v1/payments/{payment['id']}/splits/finish")
    assert (finish.status_code, finish.json()["error"]["code"]) == (409, "nothing_frozen")
    assert books_clean(gw)
