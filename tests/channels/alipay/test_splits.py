"""Alipay order settle (交易分账) against the simulator over real HTTP: the trade is created frozen for
settling, the receiver is bound, the split is settled asynchronously and found by query, within
Alipay's 30% of the order; when the declared splits have ended, one settle with royalty_finish releases
the rest, booked back to the merchant; an answer Alipay documents as "may or may not have happened"
(ACQ.SYSTEM_ERROR, ACQ.TRADE_SETTLE_ERROR) is asked about and sent again under the same number, never
failed and never paid twice. Alipay cannot take a split back, so the "return" refund policy refuses
what was split there."""
from __future__ import annotations

import httpx
import pytest

from gateway.config import CircuitConfig
from plugins.alipay import wire
from tests.conftest import ServerThread, free_port, wait_for
from tests.support.alipay import alipay_settings, simulator
from tests.support.operator import books_clean
from tests.support.splits import receiver, receiver_balance

FAST = dict(query_schedule_seconds=(0.2,) * 20, janitor_poll_seconds=0.1, query_give_up_seconds=3600)


@pytest.fixture
def ali(gateway_factory, db_url):  # noqa: ANN001, ANN201
    key = wire.new_key()
    sim = simulator(key)
    port = free_port()
    with ServerThread(sim.app, port):
        gw = gateway_factory(alipay_settings(db_url, sim, key, port, {"royalty_delay_seconds": 0.2},
                                             CircuitConfig(min_calls=10_000), split_refund_policy="return", **FAST))
        yield gw, gw.client(gw.merchant()), sim, f"http://127.0.0.1:{port}"


def pay(client, sim_url: str, order: str, amount: int, **fields) -> dict:  # noqa: ANN001, ANN003
    payment = client.create_payment(merchant_order_no=order, amount=amount, channel="ali", method="qr", **fields)
    assert httpx.post(f"{sim_url}/sim/orders/{payment['out_trade_no']}/pay", json={}).status_code == 200
    assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")
    return payment


def released(client, payment: dict) -> dict | None:  # noqa: ANN001
    found = client.request("POST", f"/v1/payments/{payment['id']}/splits/finish").json()
    return found if found["status"] == "succeeded" else None


def test_a_declared_split_is_settled_and_the_rest_released_and_booked(ali) -> None:
    gw, client, sim, sim_url = ali
    shop = receiver(client, "2088102177840000", name="分店")
    too_much = client.request("POST", "/v1/payments", {
        "merchant_order_no": "ali-big", "amount": 10000, "channel": "ali", "method": "qr",
        "splits": [{"receiver": shop["id"], "amount": 3001}]})          # over Alipay's 30% of the order
    assert (too_much.status_code, too_much.json()["error"]["code"]) == (400, "split_exceeds_payment")
    payment = pay(client, sim_url, "ali-split", 10000, splits=[{"receiver": shop["id"], "amount": 3000}])
    trade = sim.trades[payment["out_trade_no"]]
    assert trade.royalty_freeze                                          # created frozen for settling
    assert wait_for(lambda: client.request("GET", f"/v1/payments/{payment['id']}/splits").json()
                    ["data"][0]["status"] == "succeeded")
    [settle] = [d for d in trade.settles.values() if d.get("state")]
    assert (settle["trans_in"], settle["amount"], settle["state"]) == ("2088102177840000", "30.00", "SUCCESS")
    assert sim.bound[("userId", "2088102177840000")] == "分店"
    done = wait_for(lambda: released(client, payment))
    assert done["amount"] == 10000 - 60 - 3000 and trade.finished and trade.frozen == 0
    assert [(kind, amount) for kind, _, amount in sim.moved] == [("settle", 3000), ("finish", 6940)]
    balance = client.request("GET", "/v1/balance").json()["balances"][0]
    assert (balance["split_frozen"], balance["in_transit"]) == (0, 6940)
    assert receiver_balance(gw, shop["id"]) == 3000
    # Alipay takes no split back here: a refund that needs what was split is refused, the rest refunds.
    refused = client.request("POST", f"/v1/payments/{payment['id']}/refunds",
                             {"merchant_refund_no": "ali-r", "amount": 8000})
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "split_return_not_supported")
    assert client.create_refund(payment["id"], merchant_refund_no="ali-r2", amount=6000)["status"] == "succeeded"
    assert books_clean(gw)


SETTLES = [
    # (what Alipay answers the settle, the split's end, its failure code, times money moved)
    ("ACQ.SYSTEM_ERROR after settling: the query finds it", {"sub_code": "ACQ.SYSTEM_ERROR", "after": True},
     "succeeded", None, 1),
    ("ACQ.TRADE_SETTLE_ERROR before settling: no record, sent again", {"sub_code": "ACQ.TRADE_SETTLE_ERROR"},
     "succeeded", None, 1),
    ("20000 service unavailable after settling", {"code": "20000", "sub_code": "isp.unknow-error", "after": True},
     "succeeded", None, 1),
    ("a 502 before settling", {"http_status": 502}, "succeeded", None, 1),
    ("ACQ.ALLOC_AMOUNT_VALIDATE_ERROR: final", {"sub_code": "ACQ.ALLOC_AMOUNT_VALIDATE_ERROR"}, "failed",
     "ACQ.ALLOC_AMOUNT_VALIDATE_ERROR", 0),
]


def test_each_settle_answer_ends_as_alipay_documents_it(ali) -> None:
    gw, client, sim, sim_url = ali
    shop = receiver(client, "2088102177840001", name="分店")
    for n, (name, fault, status, code, moved) in enumerate(SETTLES):
        payment = pay(client, sim_url, f"ali-settle-{n}", 10000, splittable=True)
        httpx.post(f"{sim_url}/sim/faults", json={"script": {"alipay.trade.order.settle": [fault]}}).raise_for_status()
        made = client.request("POST", f"/v1/payments/{payment['id']}/splits",
                              {"merchant_split_no": f"ali-s-{n}", "receiver": shop["id"], "amount": 2000}).json()
        assert wait_for(lambda: client.request("GET", f"/v1/splits/{made['id']}").json()["status"] == status), name
        ended = client.request("GET", f"/v1/splits/{made['id']}").json()
        assert (ended["failure"] or {}).get("code") == code, (name, ended)
        assert sim.moved_for("settle", made["out_split_no"]) == moved, name
        # The splitting over: the rest is released once, whatever the split's end.
        client.request("POST", f"/v1/payments/{payment['id']}/splits/finish")
        done = wait_for(lambda: released(client, payment))
        assert done["amount"] == 9940 - 2000 * moved, name
        assert sum(1 for kind, _, _ in sim.moved if kind == "finish") == n + 1
    assert books_clean(gw)
