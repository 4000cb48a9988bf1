"""Alipay OpenAPI end to end over real HTTP: the gateway, the plugin, and the simulator of Alipay's
side, each method from create to refund, and every forged notify refused."""
from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qsl

import httpx
import pytest

from plugins.alipay import wire
from plugins.alipay.simulator import CHINA
from tests.conftest import ServerThread, free_port
from tests.support.alipay import APP_ID, AlipayWorld, alipay_settings, simulator
from tests.support.operator import books_clean


@pytest.fixture(scope="module")
def app_key():  # noqa: ANN201
    return wire.new_key()


@pytest.fixture
def world(gateway_factory, db_url, app_key) -> AlipayWorld:  # noqa: ANN001
    sim = simulator(app_key)
    sim_port = free_port()
    server = ServerThread(sim.app, sim_port).__enter__()
    gw = gateway_factory(alipay_settings(db_url, sim, app_key, sim_port))
    yield AlipayWorld(gw, gw.client(gw.merchant()), sim, f"http://127.0.0.1:{sim_port}")
    server.__exit__(None, None, None)



@pytest.mark.parametrize("method,action_type", [("qr", "qr"), ("page", "redirect"), ("wap", "redirect"),
                                                ("app", "app")])
def test_each_method_pays_and_refunds_end_to_end(world, method, action_type) -> None:
    client = world.client
    payment = client.create_payment(merchant_order_no=f"ali-{method}", amount=1, subject="茶", channel="ali",
                                    method=method)
    assert payment["status"] == "processing" and payment["action"]["type"] == action_type
    if method == "app":  # the order string the app gets is signed by us, the way Alipay checks it
        params = dict(parse_qsl(payment["action"]["order_string"]))
        assert wire.verify_request(world.gw.gateway.host.account("ali").channel.settings.app_private_key.public_key(),
                                   params)
    assert world.open_and_pay(payment).status_code == 200
    assert client.get_payment(payment["id"])["status"] == "succeeded"

    big = client.create_payment(merchant_order_no=f"ali-{method}-big", amount=123456789, channel="ali", method=method)
    world.open_and_pay(big)
    refund = client.create_refund(big["id"], merchant_refund_no=f"r-{method}", amount=23456789)
    assert refund["status"] == "succeeded"  # Alipay answers refunds synchronously
    assert client.get_payment(big["id"])["amount_refunded"] == 23456789
    assert books_clean(world.gw)


def test_a_dropped_notify_is_found_by_query_and_a_closed_trade_is_closed(world) -> None:
    world.faults(callback_mode="drop")
    payment = world.client.create_payment(merchant_order_no="drop", amount=100, channel="ali", method="qr")
    world.open_and_pay(payment)
    assert world.client.get_payment(payment["id"])["status"] == "processing"
    assert world.client.get_payment(payment["id"], sync=True)["status"] == "succeeded"
    opened = world.client.create_payment(merchant_order_no="page-open", amount=100, channel="ali", method="page")
    assert httpx.get(opened["action"]["url"]).status_code == 200          # the trade exists now
    assert world.client.close_payment(opened["id"])["status"] == "closed"
    assert world.pay_after_close(opened).status_code == 409
    assert books_clean(world.gw)


def test_an_order_nobody_has_opened_is_not_closed_until_it_can_no_longer_be_paid(world) -> None:
    """A precreated code nobody scanned (or a page link nobody opened) does not exist at Alipay: its close
    and query say 交易不存在. That is no proof while someone may still scan it and pay; it is once the
    order's time_expire (at most max_order_minutes after it was made) has passed."""
    from datetime import UTC

    from gateway.clock import Clock

    for method in ("qr", "page"):
        payment = world.client.create_payment(merchant_order_no=f"unseen-{method}", amount=100, channel="ali",
                                              method=method)
        refused = world.client.request("POST", f"/v1/payments/{payment['id']}/close")
        assert refused.json()["error"]["code"] == "close_unconfirmed", refused.text
        assert world.client.get_payment(payment["id"], sync=True)["status"] == "processing"
    # Someone scans the code after the close was asked for, and pays: it is paid, never closed.
    qr = world.client.request("GET", "/v1/payments", params={"merchant_order_no": "unseen-qr"}).json()["data"][0]
    assert httpx.post(f"{world.sim_url}/sim/orders/{qr['out_trade_no']}/pay", json={}).status_code == 200
    assert world.client.get_payment(qr["id"], sync=True)["status"] == "succeeded"

    class Later(Clock):   # the plugin's clock, past the page order's time_expire
        def now(self) -> datetime:
            return datetime.now(UTC) + timedelta(minutes=130)

    channel = world.gw.gateway.host.account("ali").channel
    object.__setattr__(channel.ctx, "clock", Later())
    page = world.client.request("GET", "/v1/payments", params={"merchant_order_no": "unseen-page"}).json()["data"][0]
    assert world.client.close_payment(page["id"])["status"] == "closed"
    assert books_clean(world.gw)


def test_duplicate_notifies_apply_once_and_are_answered_success(world) -> None:
    world.faults(callback_mode="duplicate")
    payment = world.client.create_payment(merchant_order_no="dup", amount=100, channel="ali", method="qr")
    world.open_and_pay(payment)
    trade = world.sim.trades[payment["out_trade_no"]]
    again = world.notify(world.sim.notify_form(trade, {}))
    assert again.status_code == 200 and again.content == b"success"
    assert world.gw.count("ledger_entries") == 1
    assert books_clean(world.gw)


def test_forged_tampered_stale_and_foreign_notifies_change_nothing(world) -> None:
    payment = world.client.create_payment(merchant_order_no="forge", amount=100, channel="ali", method="qr")
    trade = world.sim.scan(payment["out_trade_no"])
    trade.status = "TRADE_SUCCESS"
    genuine = world.sim.notify_form(trade, {})
    forged = dict(genuine, sign=wire.rsa_sign(wire.new_key(), wire.signing_string(genuine, ("sign", "sign_type"))))
    tampered = dict(genuine, total_amount="0.01")

    def resigned(**over: str) -> dict[str, str]:
        form = {k: v for k, v in {**genuine, **over}.items() if k != "sign"}
        return {**form, "sign": wire.rsa_sign(world.sim.alipay_key, wire.signing_string(form, ("sign", "sign_type")))}

    stale = resigned(notify_time=(datetime.now(CHINA) - timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S"))
    for form in (forged, tampered, stale, resigned(app_id="2021999999999999"), resigned(seller_id="2088000000000000"),
                 resigned(total_amount="1.01"), {"garbage": "1"}):
        response = world.notify(form)
        assert response.status_code == 200 and response.content == b"fail", form
    response = httpx.post(f"{world.gw.url}/v1/notify/ali", content=b"\xff\xfe not a form")
    assert response.content == b"fail"
    assert world.client.get_payment(payment["id"])["status"] == "processing"
    assert world.notify(genuine).content == b"success"
    assert world.client.get_payment(payment["id"])["status"] == "succeeded"


def test_a_notify_is_believed_from_its_retry_window_up_to_clock_skew_ahead_not_later(world) -> None:
    """Alipay retries one notify for about 25 hours, so an old notify_time is fine; one ahead of the
    clock by more than skew was never sent by Alipay (it was accepted up to 26 h ahead)."""
    payment = world.client.create_payment(merchant_order_no="ahead", amount=100, channel="ali", method="qr")
    trade = world.sim.scan(payment["out_trade_no"])
    trade.status = "TRADE_SUCCESS"
    genuine = world.sim.notify_form(trade, {})

    def dated(shift: timedelta) -> dict[str, str]:
        form = {k: v for k, v in genuine.items() if k != "sign"}
        form["notify_time"] = (datetime.now(CHINA) + shift).strftime("%Y-%m-%d %H:%M:%S")
        return {**form, "sign": wire.rsa_sign(world.sim.alipay_key, wire.signing_string(form, ("sign", "sign_type")))}

    for shift in (timedelta(hours=25), timedelta(hours=2), timedelta(minutes=10)):
        assert world.notify(dated(shift)).content == b"fail", shift
    assert world.client.get_payment(payment["id"])["status"] == "processing"
    assert world.notify(dated(timedelta(hours=-25))).content == b"success"
    assert world.client.get_payment(payment["id"])["status"] == "succeeded"
    assert world.notify(dated(timedelta(minutes=1))).content == b"success"   # a duplicate, within skew


def test_server_errors_and_unsigned_answers_are_unknown_never_failed(world) -> None:
    world.faults(server_errors=1)
    payment = world.client.create_payment(merchant_order_no="5xx", amount=100, channel="ali", method="qr")
    assert payment["status"] == "processing" and payment["action"] is None
    world.faults(bad_signature=True)
    other = world.client.create_payment(merchant_order_no="badsig", amount=100, channel="ali", method="qr")
    assert other["status"] == "processing" and other["action"] is None
    assert world.client.get_payment(other["id"], sync=True)["status"] == "processing"


@pytest.mark.parametrize("fen,yuan", [(1, "0.01"), (10, "0.10"), (100, "1.00"), (123456789, "1234567.89"),
                                      (10**12, "10000000000.00")])
def test_amounts_convert_exactly_at_the_edges(fen: int, yuan: str) -> None:
    assert wire.yuan(fen) == yuan and wire.fen(yuan) == fen


@pytest.mark.parametrize("bad", ["0.001", "-1.00", "1e3", "1,00", "", "abc", " 1.00"])
def test_malformed_yuan_amounts_are_refused(bad: str) -> None:
    with pytest.raises(wire.WireError):
        wire.fen(bad)


def test_the_response_signature_covers_the_exact_text() -> None:
    key = wire.new_key()
    raw = wire.signed_response(key, "alipay.trade.query", {"code": "10000", "msg": "成功", "note": "a},\"b"})
    text, sign = wire.response_text(raw.decode(), "alipay.trade.query")
    assert wire.rsa_verify(key.public_key(), text.encode(), sign)
    assert not wire.rsa_verify(key.public_key(), text.replace("10000", "10001").encode(), sign)


def test_the_trade_bill_is_a_zip_of_gbk_csvs_named_in_gbk_served_the_next_morning(world) -> None:
    """Alipay's bill of a day is there from 09:00 the next day: a zip whose member names are GBK without
    the UTF-8 flag (Python reads them as cp437), holding GBK CSVs with merchant discounts (商家优惠)."""
    import asyncio
    import csv
    import io
    import zipfile
    from datetime import time as day_time

    from gateway.channel import StatementUnavailable
    from gateway.logs import get_logger
    from gateway.service import Gateway

    payment = world.client.create_payment(merchant_order_no="bill-1", amount=12345, channel="ali", method="qr",
                                          subject="茶, 大杯")
    assert httpx.post(f"{world.sim_url}/sim/orders/{payment['out_trade_no']}/pay",
                      json={"vouchers": [{"amount": 345}]}).status_code == 200      # the merchant's own coupon
    world.client.create_refund(payment["id"], merchant_refund_no="bill-r1", amount=1000)
    today = datetime.now(CHINA).date()

    def download(day):  # noqa: ANN001, ANN202
        async def run() -> bytes:
            gateway = Gateway.build(world.gw.settings, get_logger())
            try:
                return await gateway.download_statement("ali", day)
            finally:
                await gateway.aclose()
        return asyncio.run(run())

    with pytest.raises(StatementUnavailable, match="bill_not_exist"):     # 不支持下载当日账单
        download(today)
    world.sim.now = lambda: datetime.combine(today + timedelta(days=1), day_time(9, 1), CHINA)
    content = download(today)
    archive = zipfile.ZipFile(io.BytesIO(content))
    infos = archive.infolist()
    assert all(not info.flag_bits & 0x800 for info in infos)                 # no UTF-8 flag
    names = [info.filename.encode("cp437").decode("gbk") for info in infos]   # what a GBK reader sees
    detail = infos[next(i for i, n in enumerate(names) if n.endswith("_业务明细.csv"))]
    assert any(n.endswith("_业务明细(汇总).csv") for n in names) and "汇总" not in detail.filename
    text = archive.read(detail).decode("gbk")
    lines = text.splitlines()
    assert lines[0] == "#支付宝业务明细查询" and lines[3].startswith("#---")
    rows = list(csv.reader(io.StringIO("\n".join(line for line in lines if not line.startswith("#")))))
    assert rows[0][:3] == ["支付宝交易号", "商户订单号", "业务类型"] and len(rows[0]) == 25
    sale = next(r for r in rows[1:] if r[2] == "交易")
    back = next(r for r in rows[1:] if r[2] == "退款")
    assert sale[1] == payment["out_trade_no"] + "\t" and (sale[11], sale[12], sale[16]) == ("123.45", "120.00", "3.45")
    assert (back[11], back[12], back[16]) == ("-10.00", "-9.73", "-0.27") and back[21].endswith("\t")
    assert lines[-3] == "#交易合计：1笔，商家实收共120.00元，商家优惠共3.45元"
    parsed = world.gw.gateway.host.account("ali").channel.parse_statement(content)
    assert parsed.lines.select("kind", "amount", "settled_amount").rows() == [("payment", 12345, 12000),
                                                                              ("refund", 1000, 973)]
    with pytest.raises(StatementUnavailable, match="bill_not_exist"):
        download(today.replace(year=today.year - 1))


def test_reordered_and_slow_notifies_still_settle_each_trade_once(world) -> None:
    world.faults(callback_mode="reorder", slow_ms=50)
    first = world.client.create_payment(merchant_order_no="o1", amount=100, channel="ali", method="qr")
    second = world.client.create_payment(merchant_order_no="o2", amount=200, channel="ali", method="qr")
    world.open_and_pay(first)
    assert world.client.get_payment(first["id"])["status"] == "processing"  # its notify is held back
    world.open_and_pay(second)  # overtakes it, then the first arrives
    assert {world.client.get_payment(p["id"])["status"] for p in (first, second)} == {"succeeded"}
    assert world.gw.count("ledger_entries") == 2 and books_clean(world.gw)


def test_our_rsa2_agrees_with_alipays_own_sdk() -> None:
    """Alipay's SDK signs with the pure-Python rsa package: same bytes signed, same signature."""
    from alipay.aop.api.util.SignatureUtils import get_sign_content, sign_with_rsa2, verify_with_rsa
    from cryptography.hazmat.primitives import serialization

    key = wire.new_key()
    pkcs1 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption()).decode()
    params = {"app_id": APP_ID, "method": "alipay.trade.query", "charset": "utf-8", "sign_type": "RSA2",
              "timestamp": "2026-11-22 12:00:00", "version": "1.0",
              "biz_content": '{"out_trade_no":"订单-1","total_amount":"0.01"}'}
    assert wire.signing_string(params, ("sign",)).decode() == get_sign_content(params)
    assert wire.sign_params(key, params) == sign_with_rsa2(pkcs1, get_sign_content(params), "utf-8")
    notify = {"notify_time": "2026-11-22 12:00:00", "out_trade_no": "订单-1", "total_amount": "0.01",
              "trade_status": "TRADE_SUCCESS", "app_id": APP_ID}
    signature = sign_with_rsa2(pkcs1, get_sign_content(notify), "utf-8")
    assert wire.verify_params(key.public_key(), {**notify, "sign": signature, "sign_type": "RSA2"})
    ours = wire.rsa_sign(key, get_sign_content(notify).encode())
    assert verify_with_rsa(wire.public_pem(key.public_key()), get_sign_content(notify).encode(), ours)


def test_coupons_are_booked_as_alipay_reports_them(world) -> None:
    """voucher_detail_list and receipt_amount, verified: the merchant's contribution is kept out of what
    Alipay pays (商家实收) and comes off the merchant's share; others' are paid. Notify and query agree."""
    from ledger.chart import fee_for

    client = world.client
    vouchers = [{"amount": 100}, {"amount": 50, "merchant_contribute": 0, "other_contribute": 50,
                                  "template_id": "tpl-brand"}]
    by_notify = client.create_payment(merchant_order_no="ali-coupon-1", amount=1000, channel="ali", method="qr")
    assert httpx.post(f"{world.sim_url}/sim/orders/{by_notify['out_trade_no']}/pay",
                      json={"vouchers": vouchers}).status_code == 200
    world.faults(callback_mode="drop")
    by_query = client.create_payment(merchant_order_no="ali-coupon-2", amount=1000, channel="ali", method="qr")
    httpx.post(f"{world.sim_url}/sim/orders/{by_query['out_trade_no']}/pay", json={"vouchers": vouchers})
    assert client.get_payment(by_query["id"], sync=True)["status"] == "succeeded"
    for payment in (by_notify, by_query):
        paid = client.get_payment(payment["id"])
        assert paid["status"] == "succeeded" and paid["fee"] == fee_for(900, 60)
        assert paid["discount"]["kept_by_channel"] == 100
        assert [line["funded_by"] for line in paid["discount"]["lines"]] == [
            {"merchant": 100, "channel": 0, "other": 0}, {"merchant": 0, "channel": 0, "other": 50}]
    assert world.gw.balances()[("channel_clearing", "ali")] == 2 * 900
    assert books_clean(world.gw)


def test_a_merchant_discount_no_voucher_explains_is_the_merchants_as_receipt_amount_says() -> None:
    from plugins.alipay.channel import vouchers

    # voucher_detail_list as Alipay's documentation shows it: a JSON string in the notify form.
    data = {"receipt_amount": "8.80", "voucher_detail_list": '[{"amount":"0.20","merchant_contribute":"0.00",'
            '"name":"5折券","other_contribute":"0.20","type":"ALIPAY_DISCOUNT_VOUCHER","memo":"学生卡8折优惠",'
            '"template_id":"20171030000730015359000EMZP0"}]'}
    discounts, settled = vouchers(1000, data)
    assert settled == 880
    assert [(d.amount, d.other_funded, d.merchant_funded, d.unsettled) for d in discounts] == [(20, 20, 0, 0),
                                                                                             (120, 0, 120, 120)]
