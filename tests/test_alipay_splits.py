"""Alipay order settle (交易分账) against the simulator over real HTTP: the trade is created frozen for
settling, the receiver is bound, the split is settled asynchronously and found by query; Alipay
cannot take a split back, so the "return" refund policy refuses what was split there."""
from __future__ import annotations

import httpx

from gateway.config import ChannelAccountConfig, Settings
from plugins.alipay import wire
from plugins.alipay.simulator import AlipaySimulator
from tests.conftest import SECRET_KEY, ServerThread, free_port, wait_for
from tests.test_alipay import APP_ID, books_clean
from tests.test_splits import receiver, receiver_balance

FAST = dict(query_schedule_seconds=(0.3, 0.3, 0.3), janitor_poll_seconds=0.1, query_give_up_seconds=3600)


def test_a_split_is_settled_to_a_bound_receiver(gateway_factory, db_url) -> None:
    key = wire.new_key()
    sim = AlipaySimulator(app_id=APP_ID, app_public_key=key.public_key())
    port = free_port()
    with ServerThread(sim.app, port):
        settings = Settings(public_url=f"http://127.0.0.1:{free_port()}", database_url=db_url, secret_key=SECRET_KEY,
                            channel_accounts=(ChannelAccountConfig("ali", "alipay", True, {
                                "app_id": APP_ID, "app_private_key": wire.private_pem(key),
                                "alipay_public_key": sim.alipay_public_pem, "seller_id": sim.seller_id,
                                "gateway_url": f"http://127.0.0.1:{port}/gateway.do"}),),
                            split_refund_policy="return", **FAST)
        gw = gateway_factory(settings)
        client = gw.client(gw.merchant())
        shop = receiver(client, "2088102177840000", name="分店")
        payment = client.create_payment(merchant_order_no="ali-split", amount=10000, channel="ali", method="qr",
                                        splits=[{"receiver": shop["id"], "amount": 3000}])
        assert httpx.post(f"http://127.0.0.1:{port}/sim/orders/{payment['out_trade_no']}/pay",
                          json={"outcome": "success"}).status_code == 200
        assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")
        trade = sim.trades[payment["out_trade_no"]]
        assert trade.royalty_freeze                                          # created frozen for settling
        assert wait_for(lambda: client.request("GET", f"/v1/payments/{payment['id']}/splits").json()
                        ["data"][0]["status"] == "succeeded")
        [settle] = trade.settles.values()
        assert (settle["trans_in"], settle["amount"], settle["state"]) == ("2088102177840000", "30.00", "SUCCESS")
        assert sim.bound[("userId", "2088102177840000")] == "分店"
        assert receiver_balance(gw, shop["id"]) == 3000
        # Alipay takes no split back here: a refund that needs what was split is refused, the rest refunds.
        refused = client.request("POST", f"/v1/payments/{payment['id']}/refunds",
                                 {"merchant_refund_no": "ali-r", "amount": 8000})
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, "split_return_not_supported")
        assert client.create_refund(payment["id"], merchant_refund_no="ali-r2", amount=6000)["status"] == "succeeded"
        assert books_clean(gw)
