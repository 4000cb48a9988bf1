"""WeChat Pay pays the receiver itself (分账 out of the frozen order): its profit-sharing bill
(`GET /v3/profitsharing/bills`, served by the simulator as WeChat Pay's page describes it) confirms each
split, which then leaves receiver_in_transit against channel clearing; the day's channel settlement is
that much less, and the books check."""
from __future__ import annotations

import httpx
import pytest

from plugins.wechatpay import wire
from plugins.wechatpay.split_bill import parse_split_bill
from gateway.channel import StatementInvalid
from tests.conftest import ServerThread, free_port, wait_for
from tests.support.split_days import assert_day_of_one_split_closed, balance
from tests.support.splits import FAST, receiver
from tests.support.wechatpay import simulator, wechat_settings

READY = 0.5


def test_a_wechat_pay_day_of_profit_sharing_reconciled_and_settled(gateway_factory, db_url, tmp_path) -> None:
    key = wire.new_key()
    sim = simulator(key, split_ready_seconds=READY, bill_ready_hour=None)
    port = free_port()
    with ServerThread(sim.app, port):
        settings = wechat_settings(db_url, sim, key, port, {"profit_sharing_delay_seconds": READY},
                                   statement_dir=str(tmp_path / "st"), **FAST)
        gw = gateway_factory(settings)
        client = gw.client(gw.merchant())
        supplier = receiver(client, "1900000110", name="供应商有限公司")
        payment = client.create_payment(merchant_order_no="wx-day", amount=10000, channel="wx", method="native",
                                        splits=[{"receiver": supplier["id"], "amount": 2000}])
        assert httpx.post(f"http://127.0.0.1:{port}/sim/orders/{payment['out_trade_no']}/pay",
                          json={"outcome": "success"}).status_code == 200
        assert wait_for(lambda: client.request("POST", f"/v1/payments/{payment['id']}/splits/finish").json()
                        .get("status") == "succeeded")           # the split ended, the rest unfrozen
        [made] = client.request("GET", f"/v1/payments/{payment['id']}/splits").json()["data"]
        assert balance(gw, "receiver_in_transit", supplier["id"]) == 2000
        assert_day_of_one_split_closed(gw, settings, "wx", supplier["id"], made["id"], 2000, 10000)


def test_the_profit_sharing_bill_is_read_by_column_name_and_a_broken_one_is_named_by_its_line() -> None:
    header = "create_time,order_id,extra,out_order_no,amount,business_type,status"
    bill = (f"{header}\r\n`2026-11-20 10:00:00,`3008,`x, y,`P1,`20.00,`分账,`SUCCESS\r\n"
            "`2026-11-20 11:00:00,`3101,`,`R1,`1.50,`回退,`SUCCESS\r\n"
            "`2026-11-20 12:00:00,`3009,`,`P2,`9.00,`解冻,`SUCCESS\r\n"
            "split_count,split_amount\r\n`1,`20.00\r\n").encode()
    lines = parse_split_bill(bill)
    assert [(x.kind, x.reference, x.channel_id, x.amount) for x in lines] == [
        ("split", "P1", "3008", 2000), ("return", "R1", "3101", 150)]   # a comma inside a cell is kept apart
    with pytest.raises(StatementInvalid, match="line 2"):
        parse_split_bill(bill.replace(b"`20.00", b"`20"))
    with pytest.raises(StatementInvalid, match="summary"):
        parse_split_bill(bill.split(b"split_count")[0])
