"""UnionPay's merchant statement, as the tests write it from UnionPay's own layout (the ZM record of
《全渠道平台接入接口规范 第3部分 文件接口》 as the SDK demo DemoBase.parseZMFile slices it: 42 fields
of these byte widths, one separator byte after each, GBK, CRLF), zipped as INN{yymmdd}88ZM_{merId},
served zlib-deflated and Base64 in fileContent from the file service, and reconciled: every
difference class, refunds tied to their consume by 原交易查询流水号, payouts on it, fees with their
signs; a record a byte short is refused, naming its line."""
from __future__ import annotations

import base64
import io
import zipfile
import zlib
from typing import Any

import httpx
import pytest

from gateway.channel import StatementInvalid
from plugins.unionpay.channel import UnionPayChannel
from tests.conftest import ServerThread, free_port, wait_for
from tests.support.operator import Operator, books_clean, today
from tests.support.unionpay import CARD, MER_ID, UnionPayMerchant, fund, up_settings

# DemoBase.parseZMFile's lengthArray, and the positions (1-based) of the fields written here
WIDTHS = [3, 11, 11, 6, 10, 19, 12, 4, 2, 21, 2, 32, 2, 6, 10, 13, 13, 4, 15, 2, 2, 6, 2, 4, 32, 1, 21, 15, 1, 15, 32,
          13, 13, 8, 32, 13, 13, 12, 2, 1, 32, 98]
CODE, TRACE_TIME, ACC, AMOUNT, QUERY_ID, ORDER_ID, FEE, SETTLED, TXN_TYPE, BIZ, ORIG, MER, SUB_NAME, ORIG_ORDER = (
    1, 5, 6, 7, 10, 12, 16, 17, 20, 22, 27, 28, 31, 41)


def zm(txn_type: str, order_id: str, query_id: str, amount: int, fee: int, orig: str = "", code: str = "S56",
       sub_name: str = "", mer_id: str = MER_ID, credit: bool = False, orig_order: str = "") -> bytes:
    """One ZM record: fee is what the merchant pays (+) or gets back (-); 结算金额 follows from it (a
    credit to the merchant for a consume, or with `credit`, else a debit)."""
    money = amount if txn_type == "01" or credit else -amount
    sign = lambda fen: ("C" if fen >= 0 else "D") + f"{abs(fen):012d}"  # noqa: E731
    cells = {CODE: code, TRACE_TIME: "1130101010", ACC: "621483******0018", AMOUNT: f"{amount:012d}",
             QUERY_ID: query_id, ORDER_ID: order_id, FEE: sign(-fee), SETTLED: sign(money - fee), TXN_TYPE: txn_type,
             BIZ: "000401" if txn_type == "12" else "000201", ORIG: orig, MER: mer_id, SUB_NAME: sub_name,
             ORIG_ORDER: orig_order}
    return b"".join(cells.get(i, "").encode("gbk").ljust(w, b" ") + b" " for i, w in enumerate(WIDTHS, start=1))


def statement_zip(records: list[bytes], day: str = "261130") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"INN{day}88ZME_{MER_ID}", b"")
        archive.writestr(f"INN{day}88ZM_{MER_ID}", b"".join(r + b"\r\n" for r in records))
    return out.getvalue()


def plugin() -> UnionPayChannel:
    from gateway.channel import ChannelContext

    settings = UnionPayChannel.parse_settings(UnionPayMerchant().settings("http://up"))
    return UnionPayChannel(ChannelContext("up", settings, None, None, None, "http://x"))


def test_the_zm_file_is_read_by_byte_width_whatever_gbk_text_it_holds() -> None:
    records = [zm("01", "0190000000000000000000000000000a", "Q1", 12345, 74, sub_name="银联测试商户"),
               zm("04", "0190000000000000000000000000000b", "Q2", 2345, -14, orig="Q1", code="S30"),
               zm("31", "R190000000000000000000000000000c", "Q3", 500, -3, orig="Q9", code="S22"),
               zm("12", "0190000000000000000000000000000d", "Q4", 20000, 100)]
    assert {len(r) for r in records} == {608}
    lines = plugin().parse_statement(statement_zip(records)).lines.to_dicts()
    assert [(d["kind"], d["amount"], d["fee_millis"]) for d in lines] == [
        ("payment", 12345, 74000), ("refund", 2345, -14000), ("refund", 500, -3000), ("payout", 20000, 100000)]
    refund, cancel = lines[1], lines[2]
    assert refund["out_trade_no"] == "0190000000000000000000000000000a"   # its consume, by 原交易查询流水号
    assert refund["out_refund_no"] == "0190000000000000000000000000000b"
    assert cancel["out_trade_no"] is None and cancel["out_refund_no"] == "0190000000000000000000000000000c"
    assert lines[3]["out_trade_no"] == "0190000000000000000000000000000d"


def test_a_payout_credited_back_to_the_merchant_is_read_as_its_return() -> None:
    """A 代付 (交易类型 12) debits the merchant; one credited back (结算金额 C), tied to the 代付 by
    原交易查询流水号 and 原始交易订单号, is the receiving bank's return (退汇) of it."""
    paid = "0190000000000000000000000000000d"
    records = [zm("12", paid, "Q4", 20000, 100),
               zm("12", paid, "R4", 20000, 0, orig="Q4", orig_order=paid, code="S22", credit=True),
               zm("12", "0190000000000000000000000000000f", "R5", 300, 0, orig="Q9", credit=True)]
    lines = plugin().parse_statement(statement_zip(records)).lines.to_dicts()
    assert [(d["kind"], d["status"], d["out_trade_no"], d["amount"], d["fee_millis"]) for d in lines] == [
        ("payout", "succeeded", paid, 20000, 100000),
        ("payout", "returned", paid, 20000, 0),
        ("payout", "returned", "0190000000000000000000000000000f", 300, 0)]   # no 原始交易订单号: its own
    broken = zm("12", paid, "R4", 20000, 0, credit=True).replace(b"C000000020000", b"C000000020001", 1)
    with pytest.raises(StatementInvalid, match="line 1: 结算金额"):
        plugin().parse_statement(statement_zip([broken]))


@pytest.mark.parametrize("breakage,message", [
    (lambda r: r[:200] + r[201:], "line 2: the record is 607 bytes"),                    # a byte short
    (lambda r: r.replace(b"S56", b"S5\xff", 1), "line 2"),                               # not GBK
    (lambda r: r[:66] + b"00000000012x" + r[78:], "line 2: 交易金额"),
    (lambda r: r.replace(b"D000000000074", b"X000000000074", 1), "line 2: 商户手续费"),
    (lambda r: r.replace(b"C000000012271", b"C000000012272", 1), "line 2: 结算金额"),
])
def test_a_broken_record_is_refused_naming_its_line(breakage: Any, message: str) -> None:
    good = zm("01", "0190000000000000000000000000000a", "Q1", 12345, 74)
    records = [zm("01", "0190000000000000000000000000000e", "Q0", 100, 1), breakage(good)]
    with pytest.raises(StatementInvalid, match=message):
        plugin().parse_statement(statement_zip(records))


def test_a_statement_of_another_merchant_or_without_its_zm_file_is_refused() -> None:
    with pytest.raises(StatementInvalid, match="merId"):
        plugin().parse_statement(statement_zip([zm("01", "0190000000000000000000000000000a", "Q1", 1, 0,
                                                   mer_id="898000000000001")]))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(f"INN26113088ZME_{MER_ID}", b"")
    with pytest.raises(StatementInvalid, match="0 ZM files"):
        plugin().parse_statement(out.getvalue())
    assert plugin().parse_statement(statement_zip([])).lines.height == 0      # a day without transactions


AMOUNTS = {"match": 10000, "amount": 2000, "fee": 3000, "late": 4000, "twice": 5000, "carry": 6000}


def test_a_zm_file_written_from_the_layout_reconciles_with_every_class(gateway_factory, db_url, tmp_path) -> None:
    merchant = UnionPayMerchant()
    sim = merchant.sim
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with ServerThread(sim.app, port):
        settings = up_settings(db_url, url, merchant, query_schedule_seconds=(3600,))
        gw = gateway_factory(settings)
        creds = gw.merchant()
        client = gw.client(creds)
        made = {}
        for name, amount in AMOUNTS.items():
            sim.faults.drop_notifications = name == "late"          # its notification never comes
            made[name] = client.create_payment(merchant_order_no=f"up-{name}", amount=amount, channel="up")
            merchant.pay(url, made[name])
        sim.faults.drop_notifications = False
        for name in AMOUNTS:
            if name != "late":
                assert wait_for(lambda n=name: client.get_payment(made[n]["id"])["status"] == "succeeded")
        refund = client.create_refund(made["match"]["id"], merchant_refund_no="up-r1", amount=2500)
        assert wait_for(lambda: client.get_refund(refund["id"])["status"] == "succeeded")
        fund(settings, creds.merchant_id, available=50000, position=50000)
        paid_out = client.request("POST", "/v1/payouts", {"merchant_payout_no": "po-1", "amount": 20000,
                                                          "bank_account": CARD}).json()
        assert wait_for(lambda: client.request("GET", f"/v1/payouts/{paid_out['id']}").json()["status"] == "succeeded")

        # UnionPay's file of the day, as the test writes it from the layout, with one difference of each class.
        fee = lambda fen: (fen * 60 + 5000) // 10000  # noqa: E731  the account's 0.6%
        trade = {name: sim.order(p["out_trade_no"]) for name, p in made.items()}
        out_refund = next(o for o in sim.orders.values() if o.txn_type == "04")
        records = []
        for name, order in trade.items():
            if name == "carry":
                continue
            amount = 2100 if name == "amount" else order.amount
            records.append(zm("01", order.order_id, order.query_id, amount, 99 if name == "fee" else fee(amount)))
            if name == "twice":
                records.append(records[-1])
        records.append(zm("04", out_refund.order_id, out_refund.query_id, 2500, -fee(2500), orig=trade["match"].query_id,
                          code="S30"))
        payout_order = sim.order(paid_out["out_payout_no"])
        records.append(zm("12", payout_order.order_id, payout_order.query_id, 20000, 100, code="S22"))
        records.append(zm("01", "0190000000000000NOTOURS000000000", "Q777", 777, 5, sub_name="别人的商户"))
        sim.files[today().strftime("%m%d")] = statement_zip(records, today().strftime("%y%m%d"))

        report = Operator(settings, tmp_path).reconcile("up", today())      # downloaded from the file service
        assert report["status"] == "completed", report
        assert report["counts"] == {"matched": 4, "missing_local": 1, "missing_channel": 0, "pending_carryover": 1,
                                    "status_mismatch": 1, "amount_mismatch": 1, "fee_mismatch": 1, "duplicate": 1}
        assert report["auto_resolved"] == 1 and report["open"] == 5
        assert client.get_payment(made["late"]["id"])["status"] == "succeeded"    # the late success, by query
        assert report["summary"]["statement"]["payout_count"] == 1
        # fees with their signs: charged on consumes (the duplicate line too), given back on the refund, the 代付's
        charged = sum(99 if n == "fee" else fee(2100 if n == "amount" else AMOUNTS[n]) for n in AMOUNTS if n != "carry")
        assert report["fee_amount"] == charged + fee(5000) - fee(2500) + 100 + 5
        # The file service's answer is the zip deflated (zlib) and Base64, as AcpService.deCodeFileContent reads it.
        answer = [f for f in sim.received if f["txnType"] == "76"]
        assert answer and answer[0]["settleDate"] == today().strftime("%m%d")
        served = httpx.post(f"{url}/files/", data=answer[0]).text
        content = served.split("fileContent=", 1)[1].split("&", 1)[0]
        assert zlib.decompress(base64.b64decode(content)) == sim.files[today().strftime("%m%d")]
        assert books_clean(gw)
