"""Alipay pays the receiver itself (交易分账 out of the frozen trade): its merchant account log
(alipay.data.bill.accountlog.query, a 支出 of type 分账 per order settle, served by the simulator as
Alipay documents the call) confirms each split, which then leaves receiver_in_transit against channel
clearing; the day's channel settlement is that much less, and the books check."""
from __future__ import annotations

import json

import httpx
import pytest

from gateway.channel import StatementInvalid
from gateway.config import CircuitConfig
from plugins.alipay import wire
from plugins.alipay.accountlog import parse_accountlog
from tests.conftest import ServerThread, free_port, wait_for
from tests.support.alipay import alipay_settings, simulator
from tests.support.split_days import assert_day_of_one_split_closed, balance
from tests.support.splits import FAST, receiver


def test_an_alipay_day_of_order_settles_reconciled_and_settled(gateway_factory, db_url, tmp_path) -> None:
    key = wire.new_key()
    sim = simulator(key, bill_ready_hour=None)
    port = free_port()
    with ServerThread(sim.app, port):
        settings = alipay_settings(db_url, sim, key, port, {"royalty_delay_seconds": 0.2},
                                   CircuitConfig(min_calls=10_000), statement_dir=str(tmp_path / "st"), **FAST)
        gw = gateway_factory(settings)
        client = gw.client(gw.merchant())
        shop = receiver(client, "2088102177840000", name="分店")
        payment = client.create_payment(merchant_order_no="ali-day", amount=10000, channel="ali", method="qr",
                                        splits=[{"receiver": shop["id"], "amount": 3000}])
        assert httpx.post(f"http://127.0.0.1:{port}/sim/orders/{payment['out_trade_no']}/pay", json={}).status_code == 200
        assert wait_for(lambda: client.request("POST", f"/v1/payments/{payment['id']}/splits/finish").json()
                        .get("status") == "succeeded")
        [made] = client.request("GET", f"/v1/payments/{payment['id']}/splits").json()["data"]
        assert balance(gw, "receiver_in_transit", shop["id"]) == 3000
        assert_day_of_one_split_closed(gw, settings, "ali", shop["id"], made["id"], 3000, 10000)


def test_the_account_log_keeps_only_order_settles_and_a_missing_page_is_refused() -> None:
    logs = [{"type": "交易", "direction": "收入", "alipay_order_no": "2026a", "trans_amount": "100.00"},
            {"type": "分账", "direction": "支出", "alipay_order_no": "2026s", "trans_amount": "30.00",
             "trans_dt": "2026-11-20 10:00:00"}]
    content = json.dumps({"total_size": 2, "detail_list": logs}, ensure_ascii=False).encode()
    [line] = parse_accountlog(content)
    assert (line.kind, line.reference, line.channel_id, line.amount) == ("split", None, "2026s", 3000)
    with pytest.raises(StatementInvalid, match="page is missing"):
        parse_accountlog(json.dumps({"total_size": 3, "detail_list": logs}).encode())
