"""The conformance kit (gateway/testing/conformance.py) run against every built-in plugin."""
from __future__ import annotations

import time
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from gateway.testing.conformance import ChannelConformance, ChannelHarness
from gateway.testing.server import ServerThread, free_port
from plugins.alipay import wire as alipay_wire
from plugins.alipay.simulator import AlipaySimulator
from plugins.mock import wire as mock_wire
from plugins.unionpay import wire
from plugins.wechatpay import wire as wechat_wire
from plugins.wechatpay.simulator import WechatPaySimulator
from tests.support.unionpay import UnionPayMerchant

SANDBOX_SECRET = "conformance-sandbox-secret"
APIV3 = "0123456789abcdef0123456789ABCDEF"


class SimulatorHarness(ChannelHarness):
    """Shared by harnesses whose simulator runs as its own server."""

    sim: Any
    server: ServerThread

    def start(self) -> None:
        self.server = ServerThread(self.sim.app, free_port()).__enter__()

    def stop(self) -> None:
        self.server.__exit__(None, None, None)

    def drop_callbacks(self, drop: bool) -> bool:
        self.sim.faults.callback_mode = "drop" if drop else "normal"
        return True


class SandboxHarness(ChannelHarness):
    plugin = "mock"
    methods = ("redirect", "qr")

    def __init__(self) -> None:
        self.settings_now = {"secret": SANDBOX_SECRET}

    def settings(self) -> dict[str, Any]:
        return self.settings_now

    def unreachable_settings(self) -> dict[str, Any]:
        return {"secret": SANDBOX_SECRET, "base_url": f"http://127.0.0.1:{free_port()}/nowhere"}

    def pay(self, payment: dict, notify_url: str) -> None:
        url = payment["action"].get("url") or payment["action"].get("code")
        assert httpx.post(url, data={"outcome": "success"}, headers={"Accept": "application/json"}).status_code == 200

    def callback(self, payment: dict, *, forge: bool = False, stale: bool = False):  # noqa: ANN201
        body = mock_wire.encode({"event": "payment", "out_trade_no": payment["out_trade_no"], "trade_status": "SUCCESS",
                                 "amount": payment["amount"], "currency": "CNY", "transaction_id": "sbx-conf"})
        secret = "another-secret-entirely" if forge else SANDBOX_SECRET
        return body, mock_wire.signed_headers(secret, body, int(time.time()) - (3600 if stale else 0))


class WechatPayHarness(SimulatorHarness):
    plugin = "wechatpay"
    methods = ("native", "jsapi", "h5", "app")
    metadata = {"jsapi": {"payer_openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}, "h5": {"payer_client_ip": "203.0.113.7"}}

    def __init__(self) -> None:
        self.merchant_key = wechat_wire.new_key()
        self.sim = WechatPaySimulator(mchid="1900000109", appid="wx8888888888888888", apiv3_key=APIV3,
                                      merchant_public_key=self.merchant_key.public_key(), merchant_serial_no="SERIAL1",
                                      app_appid="wx9999999999999999", callback_time_scale=0.001,
                                      split_ready_seconds=0, bill_ready_hour=None)

    def settings(self, base_url: str | None = None) -> dict[str, Any]:
        return {"mchid": "1900000109", "appid": "wx8888888888888888", "app_appid": "wx9999999999999999",
                "merchant_serial_no": "SERIAL1", "profit_sharing_delay_seconds": 0,
                "merchant_private_key": wechat_wire.private_pem(self.merchant_key), "apiv3_key": APIV3,
                "platform_public_key": self.sim.platform_public_pem, "platform_public_key_id": self.sim.platform_serial,
                "base_url": base_url or self.server.url}

    def unreachable_settings(self) -> dict[str, Any]:
        return self.settings(f"http://127.0.0.1:{free_port()}")

    def pay(self, payment: dict, notify_url: str) -> None:
        assert httpx.post(f"{self.server.url}/sim/orders/{payment['out_trade_no']}/pay",
                          json={"outcome": "success"}).status_code == 200

    def callback(self, payment: dict, *, forge: bool = False, stale: bool = False):  # noqa: ANN201
        resource = {"mchid": "1900000109", "appid": "wx8888888888888888", "out_trade_no": payment["out_trade_no"],
                    "trade_state": "SUCCESS", "transaction_id": "4200000000000000000000000001",
                    "amount": {"total": payment["amount"], "currency": "CNY"}}
        body = self.sim.envelope("TRANSACTION.SUCCESS", "transaction", "支付成功", resource)
        key = wechat_wire.new_key() if forge else self.sim.platform_key
        headers = wechat_wire.signed_headers(key, self.sim.platform_serial, body, int(time.time()) - (600 if stale else 0))
        return body, {**headers, "Content-Type": "application/json"}


class AlipayHarness(SimulatorHarness):
    plugin = "alipay"
    methods = ("qr", "page", "wap", "app")

    def __init__(self) -> None:
        self.app_key = alipay_wire.new_key()
        self.sim = AlipaySimulator(app_id="2021000000000001", app_public_key=self.app_key.public_key(),
                                   callback_time_scale=0.001, bill_ready_hour=None)

    def settings(self, gateway_url: str | None = None) -> dict[str, Any]:
        return {"app_id": "2021000000000001", "app_private_key": alipay_wire.private_pem(self.app_key),
                "alipay_public_key": self.sim.alipay_public_pem, "seller_id": self.sim.seller_id,
                "gateway_url": gateway_url or f"{self.server.url}/gateway.do", "royalty_delay_seconds": 0}

    def unreachable_settings(self) -> dict[str, Any]:
        return self.settings(f"http://127.0.0.1:{free_port()}/gateway.do")

    def show(self, payment: dict) -> None:
        """The payer scans the code (or opens the page): only then does Alipay have the order."""
        action = payment["action"]
        if action["type"] == "qr":
            assert httpx.post(f"{self.server.url}/sim/orders/{payment['out_trade_no']}/scan").status_code == 200
        elif action["type"] == "redirect":
            httpx.get(action["url"])

    def pay(self, payment: dict, notify_url: str) -> None:
        action = payment["action"]
        if action["type"] == "redirect":
            httpx.get(action["url"])
        elif action["type"] == "app":
            httpx.post(f"{self.server.url}/sim/app", content=action["order_string"])
        assert httpx.post(f"{self.server.url}/sim/orders/{payment['out_trade_no']}/pay",
                          json={"outcome": "success"}).status_code == 200

    def callback(self, payment: dict, *, forge: bool = False, stale: bool = False):  # noqa: ANN201
        from datetime import datetime, timedelta

        from plugins.alipay.simulator import CHINA, SimTrade

        trade = SimTrade(payment["out_trade_no"], payment["amount"], "conformance", None, status="TRADE_SUCCESS")
        form = self.sim.notify_form(trade, {})
        if stale:
            form["notify_time"] = (datetime.now(CHINA) - timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
        key = alipay_wire.new_key() if forge else self.sim.alipay_key
        form["sign"] = alipay_wire.rsa_sign(key, alipay_wire.signing_string(form, ("sign", "sign_type")))
        return urlencode(form).encode(), {"Content-Type": "application/x-www-form-urlencoded"}

    def tamper(self, body: bytes) -> bytes:
        return body.replace(b"total_amount=", b"total_amount=9", 1)


class UnionPayHarness(SimulatorHarness):
    plugin = "unionpay"
    methods = ("web",)
    stale_callbacks = False   # ACP notifications carry no timestamp to be stale by

    def __init__(self) -> None:
        self.merchant = UnionPayMerchant()
        self.sim = self.merchant.sim

    def settings(self, base_url: str | None = None) -> dict[str, Any]:
        return self.merchant.settings(base_url or self.server.url)

    def unreachable_settings(self) -> dict[str, Any]:
        return self.settings(f"http://127.0.0.1:{free_port()}")

    def drop_callbacks(self, drop: bool) -> bool:
        self.sim.faults.drop_notifications = drop
        return True

    def pay(self, payment: dict, notify_url: str) -> None:
        self.merchant.pay(self.server.url, payment)

    def callback(self, payment: dict, *, forge: bool = False, stale: bool = False):  # noqa: ANN201
        return self.merchant.notification(payment, forge=forge)

    def statement_day(self, at: datetime) -> date:
        return wire.settlement_day(at).date()     # UnionPay's day turns at 23:00 Beijing


class TestSandboxConformance(ChannelConformance):
    harness = SandboxHarness


class TestWechatPayConformance(ChannelConformance):
    harness = WechatPayHarness


class TestAlipayConformance(ChannelConformance):
    harness = AlipayHarness


class TestUnionPayConformance(ChannelConformance):
    harness = UnionPayHarness
