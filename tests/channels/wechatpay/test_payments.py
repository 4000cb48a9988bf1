"""WeChat Pay APIv3 end to end over real HTTP: the gateway, the plugin, and the simulator of WeChat
Pay's side, each method from create to refund, and every forged callback refused."""
from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from gateway.config import ChannelAccountConfig, Settings
from plugins.wechatpay import wire
from tests.conftest import SECRET_KEY, ServerThread, free_port, wait_for
from tests.support.operator import books_clean
from tests.support.wechatpay import APIV3_KEY, APPID, MCHID, SERIAL, WechatWorld, simulator, wechat_settings


@pytest.fixture(scope="module")
def merchant_key():  # noqa: ANN201
    return wire.new_key()



@pytest.fixture
def world(gateway_factory, db_url, merchant_key) -> WechatWorld:  # noqa: ANN001
    sim = simulator(merchant_key)
    sim_port = free_port()
    server = ServerThread(sim.app, sim_port).__enter__()
    gw = gateway_factory(wechat_settings(db_url, sim, merchant_key, sim_port, channel_timeout_seconds=2.0))
    yield WechatWorld(gw, gw.client(gw.merchant()), sim, f"http://127.0.0.1:{sim_port}", merchant_key)
    server.__exit__(None, None, None)



@pytest.mark.parametrize("method,metadata,action_type", [
    ("native", {}, "qr"), ("jsapi", {"payer_openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}, "jsapi"),
    ("h5", {"payer_client_ip": "203.0.113.7"}, "redirect"), ("app", {}, "app")])
def test_each_method_pays_and_refunds_end_to_end(world, method, metadata, action_type) -> None:
    client = world.client
    payment = client.create_payment(merchant_order_no=f"wx-{method}", amount=2999, subject="咖啡", channel="wx",
                                    method=method, metadata=metadata)
    assert payment["status"] == "processing", payment
    assert payment["action"]["type"] == action_type
    if method in ("jsapi", "app"):  # the parameters the customer's WeChat client checks are signed by us
        params = payment["action"]["params"]
        lines = ((params["appId"], params["timeStamp"], params["nonceStr"], params["package"]) if method == "jsapi"
                 else (params["appid"], params["timestamp"], params["noncestr"], params["prepayid"]))
        signature = params["paySign"] if method == "jsapi" else params["sign"]
        assert wire.rsa_verify(world.merchant_key.public_key(), wire.message(*lines), signature)

    assert world.pay(payment).status_code == 200
    paid = client.get_payment(payment["id"])
    assert paid["status"] == "succeeded" and paid["channel_transaction_id"].startswith("42000")

    refund = client.create_refund(payment["id"], merchant_refund_no=f"r-{method}", amount=999)
    assert wait_for(lambda: client.get_refund(refund["id"])["status"] == "succeeded")
    assert client.get_refund(refund["id"])["channel_refund_id"].startswith("50300")
    assert client.get_payment(payment["id"])["amount_refunded"] == 999
    assert books_clean(world.gw)


def test_a_dropped_callback_is_found_by_query(world) -> None:
    world.faults(callback_mode="drop")
    payment = world.client.create_payment(merchant_order_no="drop", amount=100, channel="wx", method="native")
    world.pay(payment)
    assert world.client.get_payment(payment["id"])["status"] == "processing"
    assert world.client.get_payment(payment["id"], sync=True)["status"] == "succeeded"
    assert books_clean(world.gw)


def test_duplicate_and_reordered_callbacks_apply_once(world) -> None:
    world.faults(callback_mode="duplicate")
    a = world.client.create_payment(merchant_order_no="dup", amount=100, channel="wx", method="native")
    world.pay(a)
    world.faults(callback_mode="reorder")
    b = world.client.create_payment(merchant_order_no="r1", amount=200, channel="wx", method="native")
    c = world.client.create_payment(merchant_order_no="r2", amount=300, channel="wx", method="native")
    world.pay(b)
    assert world.client.get_payment(b["id"])["status"] == "processing"  # held back
    world.pay(c)  # overtakes b's callback, then b's arrives
    assert {world.client.get_payment(p["id"])["status"] for p in (a, b, c)} == {"succeeded"}
    assert world.gw.count("ledger_entries") == 3
    assert books_clean(world.gw)


def test_a_refund_callback_that_overtakes_its_payments_callback_books_each_once(world) -> None:
    """The payment's callback is held back; the merchant learns of the payment by query and refunds;
    the refund's callback then arrives first and the payment's last."""
    world.faults(callback_mode="reorder")
    payment = world.client.create_payment(merchant_order_no="late", amount=800, channel="wx", method="native")
    world.pay(payment)                                    # its callback is held
    assert world.client.get_payment(payment["id"], sync=True)["status"] == "succeeded"
    refund = world.client.create_refund(payment["id"], merchant_refund_no="late-r", amount=300)
    assert wait_for(lambda: world.client.get_refund(refund["id"])["status"] == "succeeded")
    with world.gw.gateway.db.transaction() as conn:
        order = [r.detail for r in conn.execute(text(
            "SELECT detail, outcome FROM channel_callbacks WHERE verified ORDER BY id"))]
    assert order[:1] == ["refund succeeded"]              # the refund's callback came first...
    assert wait_for(lambda: world.gw.count("channel_callbacks") == 2)
    with world.gw.gateway.db.transaction() as conn:
        outcomes = dict(conn.execute(text("SELECT detail, outcome FROM channel_callbacks")).all())
    assert outcomes == {"refund succeeded": "applied", "payment succeeded": "duplicate"}  # ...the payment's changed nothing
    assert world.client.get_payment(payment["id"])["amount_refunded"] == 300
    events = [e["type"] for e in world.client.request("GET", "/v1/events").json()["data"]]
    assert sorted(events) == ["payment.succeeded", "refund.succeeded"]
    assert world.gw.count("ledger_entries") == 3          # payment, refund requested, refund succeeded
    assert books_clean(world.gw)


def _paid_envelope(world, payment: dict, **over: Any) -> bytes:  # noqa: ANN001
    resource = {"mchid": MCHID, "appid": APPID, "out_trade_no": payment["out_trade_no"], "trade_state": "SUCCESS",
                "transaction_id": "4200000000000000000000000000", "amount": {"total": payment["amount"],
                                                                           "currency": "CNY"}, **over}
    return world.sim.envelope("TRANSACTION.SUCCESS", "transaction", "支付成功", resource)


def test_forged_tampered_stale_and_foreign_callbacks_change_nothing(world) -> None:
    payment = world.client.create_payment(merchant_order_no="forge", amount=100, channel="wx", method="native")
    body = _paid_envelope(world, payment)
    attempts = [
        world.notify(body, key=wire.new_key()),                                    # signed by someone else
        world.notify(body, serial="PUB_KEY_ID_UNKNOWN"),                           # a key we do not know
        world.notify(body, timestamp=int(time.time()) - 600),                      # stale (or replayed later)
        world.notify(_paid_envelope(world, payment, mchid="1999999999")),          # another merchant's
        world.notify(_paid_envelope(world, payment, amount={"total": 1, "currency": "CNY"})),  # wrong amount
    ]
    headers = wire.signed_headers(world.sim.platform_key, world.sim.platform_serial, body, int(time.time()))
    tampered = body.replace(b'"event_type"', b'"event_type" ')                    # the bytes changed after signing
    attempts.append(httpx.post(f"{world.gw.url}/v1/notify/wx", content=tampered, headers=headers))
    envelope = json.loads(body)
    envelope["resource"]["ciphertext"] = envelope["resource"]["ciphertext"][:-4] + "AAAA"  # ciphertext altered
    altered = json.dumps(envelope).encode()
    attempts.append(world.notify(altered))
    for response in attempts:
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "FAIL"
    assert world.client.get_payment(payment["id"])["status"] == "processing"
    assert world.gw.count("ledger_entries") == 0
    ok = world.notify(body)  # the genuine one still works
    assert ok.status_code == 204 and ok.content == b""
    assert world.client.get_payment(payment["id"])["status"] == "succeeded"
    from sqlalchemy import text

    from gateway.redact import redacted_body

    with world.gw.gateway.db.transaction() as conn:  # the verified callback is kept as operators see it
        kept = conn.execute(text("SELECT body FROM channel_callbacks WHERE outcome = 'applied'")).scalars().all()
    assert kept == [redacted_body(body).encode()]
    assert json.loads(kept[0])["resource"]["ciphertext"] == "[redacted]"


def test_a_pem_that_does_not_parse_stops_start_up_naming_the_account_and_setting(db_url) -> None:
    from gateway.app import create_app
    from gateway.errors import ConfigError

    settings = Settings(database_url=db_url, secret_key=SECRET_KEY, channel_accounts=(ChannelAccountConfig(
        "wx", "wechatpay", True, {"mchid": MCHID, "appid": APPID, "merchant_serial_no": SERIAL,
                                  "merchant_private_key": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----",
                                  "apiv3_key": APIV3_KEY, "platform_public_key": "x", "platform_public_key_id": "s"}),))
    with pytest.raises(ConfigError, match="'wx' \\(wechatpay\\): merchant_private_key"):
        create_app(settings)


def test_a_rotated_platform_key_is_accepted_when_both_are_configured(gateway_factory, db_url, merchant_key) -> None:
    sim = simulator(merchant_key)
    old = {"id": sim.platform_serial, "key": sim.platform_public_pem}
    new_serial, new_pem = sim.rotate_key()
    port = free_port()
    settings = Settings(public_url=f"http://127.0.0.1:{port}", database_url=db_url, secret_key=SECRET_KEY,
                        channel_accounts=(ChannelAccountConfig("wx", "wechatpay", True, {
                            "mchid": MCHID, "appid": APPID, "merchant_serial_no": SERIAL,
                            "merchant_private_key": wire.private_pem(merchant_key), "apiv3_key": APIV3_KEY,
                            "platform_public_keys": [old, {"id": new_serial, "key": new_pem}],
                            "base_url": "http://127.0.0.1:9"}),))
    gw = gateway_factory(settings)
    client = gw.client(gw.merchant())
    payment = client.request("POST", "/v1/payments", {"merchant_order_no": "rot", "amount": 100, "channel": "wx",
                                                      "method": "native"}).json()
    # No channel reachable at create: the payment exists, processing, with the attempt unknown.
    assert payment["status"] == "processing" and payment["action"] is None
    world = WechatWorld(gw, client, sim, "", merchant_key)
    assert world.notify(_paid_envelope(world, payment)).status_code == 204
    assert client.get_payment(payment["id"])["status"] == "succeeded"


def test_server_errors_and_bad_response_signatures_are_unknown_never_failed(world) -> None:
    world.faults(server_errors=1)
    payment = world.client.create_payment(merchant_order_no="5xx", amount=100, channel="wx", method="native")
    assert payment["status"] == "processing" and payment["action"] is None
    # It never reached WeChat Pay: a query says so, and the payment simply stays open.
    assert world.client.get_payment(payment["id"], sync=True)["status"] == "processing"
    world.faults(bad_signature=True)
    other = world.client.create_payment(merchant_order_no="badsig", amount=100, channel="wx", method="native")
    assert other["status"] == "processing" and other["action"] is None
    world.faults(bad_signature=False)
    world.pay(other)  # WeChat Pay had it all along: the verified callback settles it
    assert world.client.get_payment(other["id"])["status"] == "succeeded"


def test_closing_asks_wechat_pay_and_a_paid_order_is_not_closed(world) -> None:
    unpaid = world.client.create_payment(merchant_order_no="c1", amount=100, channel="wx", method="native")
    assert world.client.close_payment(unpaid["id"])["status"] == "closed"
    assert world.pay(unpaid).status_code == 409
    raced = world.client.create_payment(merchant_order_no="c2", amount=100, channel="wx", method="native")
    world.faults(callback_mode="drop")
    world.pay(raced)  # paid, but we never heard
    assert world.client.close_payment(raced["id"])["status"] == "succeeded"
    assert books_clean(world.gw)


def test_our_signing_agrees_with_an_independent_implementation(merchant_key) -> None:
    """wechatpayv3 (a separate APIv3 SDK) signs a request we verify, and verifies and decrypts what we make."""
    from wechatpayv3 import utils as reference

    header = reference.build_authorization("/v3/pay/transactions/native", "POST", MCHID, SERIAL, merchant_key,
                                           data='{"a":1}')
    fields = wire.parse_authorization(header)
    signed = wire.message("POST", "/v3/pay/transactions/native", fields["timestamp"], fields["nonce_str"], '{"a":1}')
    assert wire.rsa_verify(merchant_key.public_key(), signed, fields["signature"])
    ours = wire.authorization(MCHID, SERIAL, merchant_key, "GET", "/v3/x?mchid=1", b"", 1700000000, "n0nce")
    theirs_sign = reference.rsa_sign(merchant_key, "GET\n/v3/x?mchid=1\n1700000000\nn0nce\n\n")
    assert wire.parse_authorization(ours)["signature"] == theirs_sign
    body = b'{"id":"1"}'
    headers = wire.signed_headers(merchant_key, "S", body, 1700000000)
    assert reference.rsa_verify(headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"], body.decode(),
                                headers["Wechatpay-Signature"], merchant_key.public_key())
    resource = wire.encrypt_resource(APIV3_KEY.encode(), "支付成功".encode(), "transaction", "transaction")
    assert reference.aes_decrypt(resource["nonce"], resource["ciphertext"], resource["associated_data"],
                                 APIV3_KEY) == "支付成功"


def test_the_trade_bill_is_served_the_next_morning_gzipped_with_the_hash_of_the_bill_itself(world) -> None:
    """WeChat Pay makes a day's bill after 10:00 the next day; served gzipped, its hash is over the bill
    itself. Its cells each follow a backtick and are never quoted: a comma in a description stays bare."""
    import asyncio
    from datetime import datetime, timedelta
    from datetime import time as day_time

    from gateway.channel import StatementUnavailable
    from gateway.logs import get_logger
    from gateway.service import Gateway
    from plugins.wechatpay.simulator import CHINA

    payment = world.client.create_payment(merchant_order_no="bill-1", amount=12345, channel="wx", method="native",
                                          subject="咖啡, 大杯")
    world.pay(payment)
    refund = world.client.create_refund(payment["id"], merchant_refund_no="bill-r1", amount=345)
    wait_for(lambda: world.client.get_refund(refund["id"])["status"] == "succeeded")
    today = datetime.now(CHINA).date()

    def download(day):  # noqa: ANN001, ANN202
        async def run() -> bytes:
            gateway = Gateway.build(world.gw.settings, get_logger())
            try:
                return await gateway.download_statement("wx", day)
            finally:
                await gateway.aclose()
        return asyncio.run(run())

    with pytest.raises(StatementUnavailable, match="NO_STATEMENT_EXIST"):   # not made yet
        download(today)
    world.sim.now = lambda: datetime.combine(today + timedelta(days=1), day_time(10, 1), CHINA)
    content = download(today)
    lines = content.decode("utf-8").split("\r\n")
    assert lines[0].split(",")[:7] == ["交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号"]
    assert len(lines[0].split(",")) == 27 and not any('"' in line for line in lines)
    rows = [line[1:].split(",`") for line in lines[1:-3]]
    sale = next(row for row in rows if row[9] == "SUCCESS")
    back = next(row for row in rows if row[9] == "REFUND")
    assert sale[6] == payment["out_trade_no"] and sale[20] == "咖啡, 大杯"
    assert (sale[12], sale[22], sale[24]) == ("123.45", "0.74000", "123.45")   # the fee rounded to the fen
    assert (back[12], back[16], back[19], back[24], back[25]) == ("0.00", "3.45", "SUCCESS", "0.00", "3.45")
    assert lines[-3] == "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
    assert lines[-2] == "`2,`123.45,`3.45,`0.00,`0.72000,`123.45,`3.45"
    parsed = world.gw.gateway.host.account("wx").channel.parse_statement(content)
    assert parsed.lines.select("kind", "amount", "settled_amount", "fee_millis").rows() == [
        ("payment", 12345, 12345, 74000), ("refund", 345, 345, -2000)]

    world.faults(corrupt_bills=True)
    with pytest.raises(StatementUnavailable, match="hash"):
        download(today)
    world.faults(corrupt_bills=False)
    with pytest.raises(StatementUnavailable, match="NO_STATEMENT_EXIST"):
        download(today.replace(year=today.year - 1))


def test_a_second_payment_of_one_order_is_refunded_automatically(gateway_factory, db_url, merchant_key) -> None:
    """The close of the first attempt raced the customer: WeChat Pay took the money for both."""
    sim = simulator(merchant_key)
    sim_port = free_port()
    with ServerThread(sim.app, sim_port):
        gw = gateway_factory(wechat_settings(db_url, sim, merchant_key, sim_port, janitor_poll_seconds=0.1))
        world = WechatWorld(gw, gw.client(gw.merchant()), sim, f"http://127.0.0.1:{sim_port}", merchant_key)
        first = world.client.create_payment(merchant_order_no="twice", amount=5000, channel="wx", method="native")
        second = world.client.request("POST", f"/v1/payments/{first['id']}/attempts", {"method": "app"}).json()
        assert second["out_trade_no"] != first["out_trade_no"]
        world.pay(second)
        assert world.client.get_payment(first["id"])["status"] == "succeeded"
        order = sim.orders[first["out_trade_no"]]  # ...but the first was paid as well, just before its close
        order.trade_state, order.transaction_id, order.success_time = "SUCCESS", "4200000000000000000000009999", "x"
        assert world.notify(_paid_envelope(world, first, transaction_id=order.transaction_id)).status_code == 204

        def duplicate_refund():  # noqa: ANN202
            events = world.client.request("GET", "/v1/events").json()["data"]
            return next((e for e in events if e["type"] == "payment.duplicate"), None)

        refund = wait_for(duplicate_refund)["data"]["object"]["duplicate_refund"]
        assert refund["kind"] == "duplicate" and refund["amount"] == 5000
        assert wait_for(lambda: world.client.get_refund(refund["id"])["status"] == "succeeded")
        payment = world.client.get_payment(first["id"])
        assert payment["status"] == "succeeded" and payment["amount_refunded"] == 0  # the merchant's payment stands
        balance = world.client.request("GET", "/v1/balance").json()["balances"][0]
        assert balance["in_transit"] == 5000 - 30 and balance["refund_pending"] == 0  # charged once, net of fee
        assert books_clean(gw)


def test_coupons_are_booked_as_wechat_pay_reports_them(world) -> None:
    """promotion_detail, verified: the merchant's NOCASH coupon is kept out of what WeChat Pay pays and
    comes off the merchant's share; WeChat Pay's own CASH coupon is paid in full. The same from a
    callback and from a query; figures that do not add up are not believed."""
    from ledger.chart import fee_for

    client = world.client
    coupons = [{"amount": 100, "type": "NOCASH", "stock_id": "stock-own"},
               {"amount": 50, "type": "CASH", "funded_by": "wechatpay", "stock_id": "stock-wx"}]
    by_callback = client.create_payment(merchant_order_no="wx-coupon-1", amount=1000, method="native")
    assert httpx.post(f"{world.sim_url}/sim/orders/{by_callback['out_trade_no']}/pay",
                      json={"promotion_detail": coupons}).status_code == 200
    assert wait_for(lambda: client.get_payment(by_callback["id"])["status"] == "succeeded")
    world.faults(callback_mode="drop")
    by_query = client.create_payment(merchant_order_no="wx-coupon-2", amount=1000, method="native")
    httpx.post(f"{world.sim_url}/sim/orders/{by_query['out_trade_no']}/pay", json={"promotion_detail": coupons})
    assert client.get_payment(by_query["id"], sync=True)["status"] == "succeeded"
    for payment in (by_callback, by_query):
        paid = client.get_payment(payment["id"])
        assert paid["fee"] == fee_for(900, 60)
        assert paid["discount"]["amount"] == 150 and paid["discount"]["kept_by_channel"] == 100
        assert [line["funded_by"] for line in paid["discount"]["lines"]] == [
            {"merchant": 100, "channel": 0, "other": 0}, {"merchant": 0, "channel": 50, "other": 0}]
    assert world.gw.balances()[("channel_clearing", "wx")] == 2 * 900
    assert books_clean(world.gw)

    # A genuine-looking callback whose payer_total does not fit its coupons is recorded, not applied.
    odd = client.create_payment(merchant_order_no="wx-coupon-3", amount=1000, method="native")
    resource = {**world.sim._view(world.sim.orders[odd["out_trade_no"]]), "trade_state": "SUCCESS",
                "transaction_id": "4200000000000000000000000999", "success_time": "2026-11-30T12:00:00+08:00",
                "promotion_detail": [{"amount": 100, "type": "NOCASH", "merchant_contribute": 100}]}
    resource["amount"] = {**resource["amount"], "payer_total": 1000}
    response = world.notify(world.sim.envelope("TRANSACTION.SUCCESS", "transaction", "支付成功", resource))
    assert response.status_code >= 400
    assert client.get_payment(odd["id"])["status"] == "processing"
    with world.gw.gateway.db.transaction() as conn:
        outcomes = conn.execute(text("SELECT outcome FROM channel_callbacks")).scalars().all()
    assert "mismatch" in outcomes


def test_a_verified_callback_holding_text_no_record_can_keep_is_refused(world) -> None:
    """Even signed and encrypted by WeChat Pay, a NUL or a lone surrogate inside the resource is refused
    before anything is written (PostgreSQL cannot store a NUL; no page can show a lone surrogate)."""
    client = world.client
    payment = client.create_payment(merchant_order_no="wx-nul", amount=1000, method="native")
    for odd in ("4200\u00000000", "4200\ud8000000"):
        resource = {**world.sim._view(world.sim.orders[payment["out_trade_no"]]), "trade_state": "SUCCESS",
                    "transaction_id": odd, "success_time": "2026-11-30T12:00:00+08:00"}
        resource["amount"] = {**resource["amount"], "payer_total": 1000}
        encrypted = wire.encrypt_resource(world.sim.apiv3_key, json.dumps(resource).encode(), "transaction",
                                          "transaction")     # JSON escapes: \u0000, \ud800
        body = json.dumps({"id": "EV-1", "create_time": "2026-11-30T12:00:00+08:00", "resource_type": "encrypt-resource",
                           "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功", "resource": encrypted}).encode()
        assert world.notify(body).status_code == 400
    assert client.get_payment(payment["id"])["status"] == "processing"
    with world.gw.gateway.db.transaction() as conn:
        rows = conn.execute(text("SELECT outcome, detail FROM channel_callbacks")).all()
    assert [r.outcome for r in rows] == ["rejected", "rejected"] and all("malformed_body" in r.detail for r in rows)
