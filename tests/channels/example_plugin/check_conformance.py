"""The paymux conformance suite, as the author of paymux-example-channel runs it:

    python -m pytest check_conformance.py

(named check_* so that paymux's own test run, where this package is not installed, skips it). The kit's
pytest plugin (paymux's `pytest11` entry point) gates the checks by what each plugin declares and ends
the run with its "not asked / not covered" report.
"""
from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

import httpx

from gateway.testing.conformance import ChannelConformance, ChannelHarness

KEY = "counter-conformance-key"


class CounterPayHarness(ChannelHarness):
    plugin = "counterpay"
    methods = ("qr",)
    stale_callbacks = False   # the counter's callbacks carry no time

    def settings(self) -> dict:
        return {"key": KEY}

    def _form(self, payment: dict, key: str) -> bytes:
        sig = hmac.new(key.encode(), f"{payment['out_trade_no']}|{payment['amount']}|paid".encode(),
                       hashlib.sha256).hexdigest()
        return urlencode({"out_trade_no": payment["out_trade_no"], "amount": payment["amount"], "status": "paid",
                          "sig": sig}).encode()

    def pay(self, payment: dict, notify_url: str) -> None:
        # The counter has no simulator: when the customer pays, it posts its callback itself.
        httpx.post(notify_url, content=self._form(payment, KEY),
                   headers={"Content-Type": "application/x-www-form-urlencoded"})

    def callback(self, payment: dict, *, forge: bool = False, stale: bool = False):  # noqa: ANN201
        body = self._form(payment, "not-the-key" if forge else KEY)
        return body, {"Content-Type": "application/x-www-form-urlencoded"}


class TestCounterPayConformance(ChannelConformance):
    harness = CounterPayHarness


class MinimalCounterPayHarness(CounterPayHarness):
    """The same counter, served by the README's minimal plugin: no refund declared, none asked."""

    plugin = "counterpay_minimal"


class TestMinimalCounterPayConformance(ChannelConformance):
    harness = MinimalCounterPayHarness
