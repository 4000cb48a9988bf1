"""WeChat Pay profit sharing (分账) against the simulator over real HTTP: the payment is created to be
split, the receiver is added with its name encrypted, the split is one profit-sharing order settled
by query, and a refund under the "return" policy first takes the share back (return-orders)."""
from __future__ import annotations

import httpx
import pytest

from plugins.wechatpay import wire
from plugins.wechatpay.simulator import WechatPaySimulator
from tests.conftest import ServerThread, free_port, wait_for
from tests.test_splits import receiver, receiver_balance
from tests.test_wechatpay import APIV3_KEY, APPID, MCHID, SERIAL, books_clean, wechat_settings

FAST = dict(query_schedule_seconds=(0.3, 0.3, 0.3), janitor_poll_seconds=0.1, query_give_up_seconds=3600)


@pytest.fixture
def wx(gateway_factory, db_url):  # noqa: ANN001, ANN201
    key = wire.new_key()
    sim = WechatPaySimulator(mchid=MCHID, appid=APPID, apiv3_key=APIV3_KEY, merchant_public_key=key.public_key(),
                             merchant_serial_no=SERIAL)
    port = free_port()
    with ServerThread(sim.app, port):
        gw = gateway_factory(wechat_settings(db_url, sim, key, port, split_refund_policy="return", **FAST))
        yield gw, gw.client(gw.merchant()), sim, f"http://127.0.0.1:{port}"


def pay(client, sim_url: str, order: str, amount: int, **fields):  # noqa: ANN001, ANN003, ANN201
    payment = client.create_payment(merchant_order_no=order, amount=amount, channel="wx", method="native", **fields)
    assert httpx.post(f"{sim_url}/sim/orders/{payment['out_trade_no']}/pay", json={"outcome": "success"}).status_code == 200
    assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")
    return payment


def test_profit_sharing_and_its_return_for_a_refund(wx) -> None:
    gw, client, sim, sim_url = wx
    supplier = receiver(client, "1900000110", name="供应商有限公司")           # a WeChat Pay merchant id
    payment = pay(client, sim_url, "wx-split", 10000, splittable=True)
    assert sim.orders[payment["out_trade_no"]].profit_sharing                   # told at creation
    made = client.request("POST", f"/v1/payments/{payment['id']}/splits",
                          {"merchant_split_no": "wx-s1", "receiver": supplier["id"], "amount": 4000}).json()
    assert made["status"] == "processing"                                       # PENDING at WeChat Pay
    assert wait_for(lambda: client.request("GET", f"/v1/splits/{made['id']}").json()["status"] == "succeeded")
    assert sim.receivers[("MERCHANT_ID", "1900000110")] == "供应商有限公司"      # the name decrypted there
    share = sim.sharing[made["out_split_no"]]
    assert share["receivers"][0]["amount"] == 4000 and share["transaction_id"] == payment_id_tx(client, payment)
    assert receiver_balance(gw, supplier["id"]) == 4000
    # A refund of 8000 needs 8000 - 48 = 7952 of the merchant, who kept 10000 - 60 - 4000 = 5940:
    # 2012 comes back from the supplier first (a return order), then WeChat Pay takes the refund.
    refund = client.create_refund(payment["id"], merchant_refund_no="wx-r", amount=8000)
    assert wait_for(lambda: client.get_refund(refund["id"])["status"] == "succeeded")
    [returned] = sim.returns.values()
    assert (returned["amount"], returned["return_mchid"], returned["out_order_no"]) == (2012, "1900000110",
                                                                                         made["out_split_no"])
    assert receiver_balance(gw, supplier["id"]) == 4000 - 2012
    assert books_clean(gw)


def payment_id_tx(client, payment: dict) -> str:  # noqa: ANN001
    return client.get_payment(payment["id"])["channel_transaction_id"]


def test_a_payment_not_created_to_be_split_cannot_be_shared(wx) -> None:
    gw, client, sim, sim_url = wx
    person = receiver(client, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", type="personal", name="李四")
    payment = pay(client, sim_url, "wx-plain", 5000)
    made = client.request("POST", f"/v1/payments/{payment['id']}/splits",
                          {"merchant_split_no": "wx-s2", "receiver": person["id"], "amount": 1000}).json()
    assert made["status"] == "failed" and made["failure"]["code"] == "INVALID_REQUEST"
    balance = client.request("GET", "/v1/balance").json()["balances"][0]
    assert balance["split_pending"] == 0 and receiver_balance(gw, person["id"]) == 0
    assert client.get_payment(payment["id"])["status"] == "succeeded"
    assert books_clean(gw)
