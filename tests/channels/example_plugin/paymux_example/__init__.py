"""An example third-party channel: "counterpay".

create() answers a QR code; the counter's callback is a form post
`out_trade_no=…&amount=…&status=paid|failed&sig=<hex HMAC-SHA256 of "out_trade_no|amount|status">`;
refunds settle at once. Just enough to show what a plugin author writes.
"""
from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl

from gateway.channel import (Acknowledgement, Capability, Channel, ChannelEvent, CreatePayment, InboundNotification,
                             NotificationRejected, Outcome, PaymentResult, RefundRequest, RefundResult, SettingsError)
from gateway.hookspecs import hookimpl


def counter_signature(key: str, out_trade_no: str, amount: int, status: str) -> str:
    return hmac.new(key.encode(), f"{out_trade_no}|{amount}|{status}".encode(), hashlib.sha256).hexdigest()


class CounterPay(Channel):
    name = "counterpay"
    methods = ("qr",)
    capabilities = frozenset({Capability.PAY, Capability.REFUND, Capability.NOTIFY})
    currencies = frozenset({"CNY"})

    @classmethod
    def parse_settings(cls, raw):  # noqa: ANN001, ANN206
        if not raw.get("key"):
            raise SettingsError("key is required")
        return {"key": raw["key"], "counter": raw.get("counter", "front desk")}

    async def create(self, request: CreatePayment) -> PaymentResult:
        return PaymentResult(Outcome.PENDING, action={"type": "qr", "code": f"counterpay://{request.out_trade_no}"})

    async def refund(self, request: RefundRequest) -> RefundResult:
        return RefundResult(Outcome.SUCCEEDED, channel_refund_id="cr-" + request.out_refund_no)

    async def parse_notification(self, notification: InboundNotification) -> list[ChannelEvent]:
        form = dict(parse_qsl(notification.body.decode()))
        try:
            out_trade_no, amount, status = form["out_trade_no"], int(form["amount"]), form["status"]
        except (KeyError, ValueError):
            raise NotificationRejected("malformed", "out_trade_no, amount and status are required") from None
        expected = counter_signature(self.ctx.settings["key"], out_trade_no, amount, status)
        if not hmac.compare_digest(expected, form.get("sig", "")):
            raise NotificationRejected("bad_signature", "sig does not match")
        outcome = Outcome.SUCCEEDED if status == "paid" else Outcome.FAILED
        return [ChannelEvent("payment", out_trade_no, outcome, amount=amount, currency="CNY",
                             channel_transaction_id="ctr-" + out_trade_no)]

    def acknowledge(self, accepted: bool, message: str = "") -> Acknowledgement:
        return Acknowledgement(200 if accepted else 403, b"OK" if accepted else b"NO")


class MinimalCounterPay(Channel):
    """The README's minimal plugin: it pays and hears callbacks, and declares nothing else (no refund)."""

    name = "counterpay_minimal"
    methods = ("qr",)
    capabilities = frozenset({Capability.PAY, Capability.NOTIFY})

    async def create(self, request: CreatePayment) -> PaymentResult:
        return PaymentResult(Outcome.PENDING, action={"type": "qr", "code": f"counterpay://{request.out_trade_no}"})

    parse_notification = CounterPay.parse_notification
    acknowledge = CounterPay.acknowledge


@hookimpl
def register_channels(register):  # noqa: ANN001, ANN201
    register(CounterPay)
    register(MinimalCounterPay)
