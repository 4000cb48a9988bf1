"""Golden reconciliations of WeChat Pay's and Alipay's own statement formats: the simulator's bill for
the day, edited to carry one difference of every class (totals kept true), gives exactly those counts,
and the late success only the statement knew of reaches the merchant and the ledger."""
from __future__ import annotations

import csv
import dataclasses
import io
import re
import zipfile
from pathlib import Path
from typing import Any, Callable

import httpx

from gateway.config import AccountLimits, ChannelAccountConfig, CircuitConfig, Settings
from plugins.alipay import wire as ali_wire
from plugins.alipay.simulator import AlipaySimulator
from plugins.wechatpay import wire as wx_wire
from tests.conftest import SECRET_KEY, ServerThread, free_port, wait_for
from tests.support.operator import Operator, books_clean, today
from tests.support.wechatpay import simulator as wechat_simulator
from tests.support.wechatpay import wechat_settings

EXPECTED = {"matched": 3, "missing_local": 1, "missing_channel": 0, "pending_carryover": 1, "status_mismatch": 1,
            "amount_mismatch": 1, "fee_mismatch": 1, "duplicate": 1}
AMOUNTS = {"match": 10000, "amount": 2000, "fee": 3000, "late": 4000, "twice": 5000, "carry": 6000}


def golden(gateway_factory: Any, settings: Settings, sim: Any, sim_url: str, method: str,
           statement_of: Callable[[dict[str, str]], bytes], tmp_path: Path,
           coupons: dict[str, Any] | None = None) -> None:
    """Pay one order per AMOUNTS name at the simulator (the "late" one's callback dropped; coupons: what
    the payer of the "match" order used, as the channel's pay control takes them), refund "match", then
    reconcile the simulator's statement as statement_of edits it: exactly EXPECTED, and the late
    success only the statement knew of reaches the merchant and the books. The orders' subject has a
    comma in it, as real ones do."""
    account = settings.channel_accounts[0].id
    gw = gateway_factory(settings)
    client = gw.client(gw.merchant())
    made = {}
    for name, amount in AMOUNTS.items():
        payment = client.create_payment(merchant_order_no=f"{account}-{name}", amount=amount, channel=account,
                                        method=method, subject="咖啡, 大杯")
        sim.faults.callback_mode = "drop" if name == "late" else "normal"   # its callback never comes
        httpx.post(f"{sim_url}/sim/orders/{payment['out_trade_no']}/pay",
                   json={"outcome": "success", **((coupons or {}) if name == "match" else {})}).raise_for_status()
        made[name] = payment
    sim.faults.callback_mode = "normal"
    for name in AMOUNTS:
        if name != "late":
            assert wait_for(lambda n=name: client.get_payment(made[n]["id"])["status"] == "succeeded")
    late_id = made["late"]["id"]
    assert client.get_payment(late_id)["status"] == "processing"
    refund = client.create_refund(made["match"]["id"], merchant_refund_no=f"{account}-r1", amount=2500)
    assert wait_for(lambda: client.get_refund(refund["id"], sync=True)["status"] == "succeeded")

    path = tmp_path / f"{account}.statement"
    path.write_bytes(statement_of({name: p["out_trade_no"] for name, p in made.items()}))
    op = Operator(settings, tmp_path)
    report = op.reconcile(account, today(), path)
    assert report["status"] == "completed", report
    assert report["counts"] == EXPECTED
    assert report["auto_resolved"] == 1 and report["open"] == 5
    assert client.get_payment(late_id)["status"] == "succeeded"
    events = client.request("GET", "/v1/events").json()["data"]
    assert any(e["type"] == "payment.succeeded" and e["data"]["object"]["id"] == late_id for e in events)
    assert books_clean(gw) and op.run("ledger", "check").returncode == 0


# ---- WeChat Pay: UTF-8 text, a backtick before each cell (never quoted), summary rows ----

def edit_tradebill(content: bytes, trade: dict[str, str]) -> bytes:
    """Edit WeChat Pay's bill as WeChat Pay would have written it: rows split and joined on ",`" (a
    comma inside a description stays bare), the summary recomputed from the rows, column by column."""
    lines = content.decode("utf-8").split("\r\n")
    header, body, summary_header = lines[0], lines[1:-3], lines[-3]
    col = {name: i for i, name in enumerate(header.split(","))}
    out = []
    for line in body:
        row = line[1:].split(",`")
        no, refund = row[col["商户订单号"]], row[col["交易状态"]] == "REFUND"
        if no == trade["carry"]:
            continue
        if no == trade["amount"] and not refund:
            row[col["应结订单金额"]] = row[col["订单金额"]] = "21.00"
        if no == trade["fee"] and not refund:
            row[col["手续费"]] = "0.99000"
        out.append(row)
        if no == trade["twice"] and not refund:
            out.append(list(row))
    stranger = list(out[0])
    stranger[col["商户订单号"]], stranger[col["微信订单号"]] = "T-NOT-OURS", "4200000000000000000000000777"
    stranger[col["应结订单金额"]] = stranger[col["订单金额"]] = "7.77"
    stranger[col["手续费"]], stranger[col["代金券金额"]] = "0.05000", "0.00"
    out.append(stranger)
    total = lambda name: sum(int(r[col[name]].replace(".", "")) for r in out)  # noqa: E731
    yuan = lambda fen: f"{fen // 100}.{fen % 100:02d}"  # noqa: E731
    fees = sum(int(r[col["手续费"]].replace(".", "")) for r in out)
    summary = [str(len(out)), yuan(total("应结订单金额")), yuan(total("退款金额")), "0.00",
               f"{'-' if fees < 0 else ''}{abs(fees) // 100000}.{abs(fees) % 100000:05d}", yuan(total("订单金额")),
               yuan(total("申请退款金额"))]
    rows = [header, *(",".join("`" + cell for cell in r) for r in out), summary_header,
            ",".join("`" + cell for cell in summary), ""]
    return "\r\n".join(rows).encode("utf-8")


def test_a_wechat_pay_trade_bill_with_every_class(gateway_factory, db_url, tmp_path) -> None:
    """A day's bill with commas inside cells and a NOCASH coupon (应结订单金额 below 订单金额, its refund's
    退款金额 below 申请退款金额) reconciles: every line where it belongs, fees on what WeChat Pay settles."""
    key = wx_wire.new_key()
    sim = wechat_simulator(key)
    port = free_port()
    with ServerThread(sim.app, port):
        settings = wechat_settings(db_url, sim, key, port, query_schedule_seconds=(3600,))
        settings = dataclasses.replace(settings, channel_accounts=(
            dataclasses.replace(settings.channel_accounts[0], fee_bps=sim.fee_rate_bps),))
        coupons = {"promotion_detail": [{"amount": 500, "type": "NOCASH", "stock_id": "own-coupon"}]}

        def bill(trade: dict[str, str]) -> bytes:
            content = sim.bill(today().isoformat())
            assert "`咖啡, 大杯,`".encode() in content and b"`95.00,`5.00," in content   # as WeChat Pay writes
            return edit_tradebill(content, trade)

        golden(gateway_factory, settings, sim, f"http://127.0.0.1:{port}", "native", bill, tmp_path, coupons)


# ---- Alipay: a zip of GBK CSVs, named in GBK, #-lines around the detail ----

def edit_alipay(content: bytes, trade: dict[str, str]) -> bytes:
    """Edit Alipay's bill archive keeping it as Alipay makes it: members found by what they hold (their
    names are GBK, unflagged), written back under the same names the same way, totals recomputed."""
    archive = zipfile.ZipFile(io.BytesIO(content))
    infos = archive.infolist()
    detail_info = next(i for i in infos if archive.read(i).decode("gbk").count("\n支付宝交易号,") == 1)
    lines = archive.read(detail_info).decode("gbk").split("\r\n")
    header = next(i for i, line in enumerate(lines) if line.startswith("支付宝交易号"))
    end = next(i for i in range(header + 1, len(lines)) if lines[i].startswith("#"))
    rows = list(csv.reader(io.StringIO("\n".join(lines[header + 1:end]))))
    out = []
    for row in rows:
        no, refund = row[1].strip(), row[2] == "退款"
        if no == trade["carry"]:
            continue
        if no == trade["amount"] and not refund:
            row[11] = row[12] = "21.00"
        if no == trade["fee"] and not refund:
            row[22] = "-0.99"
        out.append(row)
        if no == trade["twice"] and not refund:
            out.append(list(row))
    stranger = list(out[0])
    stranger[0], stranger[1], stranger[11], stranger[12], stranger[16], stranger[22] = (
        "2026112222000000000777\t", "T-NOT-OURS\t", "7.77", "7.77", "0.00", "-0.05")
    out.append(stranger)
    fen = lambda cell: abs(int(cell.replace(".", "")))  # noqa: E731
    yuan = lambda total: f"{total // 100}.{total % 100:02d}"  # noqa: E731
    sales = [r for r in out if r[2] == "交易"]
    backs = [r for r in out if r[2] == "退款"]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(out)
    trailer = "\r\n".join(lines[end:])
    trailer = re.sub(r"#交易合计：.*", f"#交易合计：{len(sales)}笔，商家实收共{yuan(sum(fen(r[12]) for r in sales))}元，"
                     f"商家优惠共{yuan(sum(fen(r[16]) for r in sales))}元", trailer, count=1)
    refunded, discounted = sum(fen(r[12]) for r in backs), sum(fen(r[16]) for r in backs)
    trailer = re.sub(r"#退款合计：.*", f"#退款合计：{len(backs)}笔，商家实收退款共-{yuan(refunded)}元，"
                     f"商家优惠退款共-{yuan(discounted)}元", trailer, count=1)
    detail = "\r\n".join(lines[:header + 1]) + "\r\n" + buffer.getvalue() + trailer
    out_zip = io.BytesIO()
    with zipfile.ZipFile(out_zip, "w") as new:
        for info in infos:
            new.writestr(info, detail.encode("gbk") if info is detail_info else archive.read(info))
    return out_zip.getvalue()


def test_an_alipay_bill_with_gbk_names_and_merchant_discounts_and_every_class(gateway_factory, db_url,
                                                                              tmp_path) -> None:
    """Alipay's bill as it comes: member names in GBK without the UTF-8 flag (Python reads them as cp437),
    and a day with a merchant discount (商家优惠: 订单金额 above 商家实收, on the sale and on its refund)."""
    key = ali_wire.new_key()
    sim = AlipaySimulator(app_id="2021000000000001", app_public_key=key.public_key(), callback_time_scale=0.001)
    port = free_port()
    with ServerThread(sim.app, port):
        account = ChannelAccountConfig("ali", "alipay", True, {
            "app_id": "2021000000000001", "app_private_key": ali_wire.private_pem(key),
            "alipay_public_key": sim.alipay_public_pem, "seller_id": sim.seller_id,
            "gateway_url": f"http://127.0.0.1:{port}/gateway.do"}, 100, 1, AccountLimits(), CircuitConfig(),
            fee_bps=sim.service_fee_bps)
        settings = Settings(public_url=f"http://127.0.0.1:{free_port()}", database_url=db_url, secret_key=SECRET_KEY,
                            channel_accounts=(account,), query_schedule_seconds=(3600,), channel_timeout_seconds=2.0)

        def bill(trade: dict[str, str]) -> bytes:
            content = sim.bill_zip(today().isoformat())
            names = zipfile.ZipFile(io.BytesIO(content)).namelist()
            assert not any("汇总" in name for name in names)        # as Python reads GBK names: cp437
            assert "商家优惠共5.00元".encode("gbk") in zipfile.ZipFile(io.BytesIO(content)).read(names[0])
            return edit_alipay(content, trade)

        golden(gateway_factory, settings, sim, f"http://127.0.0.1:{port}", "qr", bill, tmp_path,
               {"vouchers": [{"amount": 500}]})
