"""The sandbox channel plugin: maps paymux's normalized calls onto the sandbox wire protocol."""
from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Iterator, Mapping

import httpx

from gateway.channel import (Acknowledgement, Capability, Channel, ChannelEvent, CreatePayment, InboundNotification,
                             NotificationRejected, Outcome, ParsedStatement, PaymentResult, PayoutRequest,
                             PayoutResult, RefundRequest, RefundResult, SettingsError, SplitLine, SplitRequest,
                             SplitResult, SplitReturn, StatementUnavailable)
from plugins.mock import answers, wire
from plugins.mock.statement import parse_sandbox_splits, parse_sandbox_statement, sandbox_statement_pieces

CALLBACK_MODES = ("normal", "drop", "duplicate", "delay", "mixed")  # mixed: each callback one of the others at random


@dataclass(frozen=True)
class MockSettings:
    secret: str
    callback_mode: str = "normal"
    callback_delay_ms: int = 0
    create_latency_ms: int = 0
    fail_create: float = 0.0
    fee_bps: int = 60               # what the sandbox charges, shown on its statement
    payout_latency_ms: int = 0      # the sandbox takes this long to answer a payout (it pays at once)
    payout_settle_ms: int = 50      # and the bank takes this long to pay it (then the sandbox notifies)
    base_url: str | None = None     # where the sandbox is served; default {public_url}/hosted/{account}
    payout_return_days: int | None = None   # the receiving bank sends a paid payout back this many days later
    # when set, the statement of day D is published this long after D ends (Beijing time), as channels do
    # (WeChat Pay's bill at 10:00 of D + 1); asked for before, the sandbox has none yet
    statement_delay_seconds: int = 0


class MockChannel(Channel):
    name = "mock"
    methods = ("redirect", "qr")
    local_create_methods = ("redirect", "qr")   # the checkout link is signed here; the sandbox hears of it later
    capabilities = frozenset({Capability.PAY, Capability.QUERY, Capability.CLOSE, Capability.REFUND,
                              Capability.REFUND_QUERY, Capability.NOTIFY, Capability.HOSTED_PAGES,
                              Capability.STATEMENT, Capability.PAYOUT, Capability.SPLIT,
                              Capability.SPLIT_RETURN, Capability.SPLIT_STATEMENT})

    @classmethod
    def parse_settings(cls, raw: Mapping[str, Any]) -> MockSettings:
        unknown = set(raw) - set(MockSettings.__dataclass_fields__)
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        secret = raw.get("secret")
        if not isinstance(secret, str) or len(secret) < 8:
            raise SettingsError("secret is required and must be at least 8 characters")
        mode = raw.get("callback_mode", "normal")
        if mode not in CALLBACK_MODES:
            raise SettingsError(f"callback_mode must be one of {', '.join(CALLBACK_MODES)}")
        fail_create = raw.get("fail_create", 0.0)
        if not isinstance(fail_create, (int, float)) or not 0 <= fail_create <= 1:
            raise SettingsError("fail_create must be a probability between 0 and 1")
        for key in ("callback_delay_ms", "create_latency_ms", "payout_latency_ms", "payout_settle_ms",
                    "statement_delay_seconds"):
            if not isinstance(raw.get(key, 0), int) or raw.get(key, 0) < 0:
                raise SettingsError(f"{key} must be a whole number of {key.rsplit('_', 1)[1]}")
        fee_bps = raw.get("fee_bps", 60)
        if not isinstance(fee_bps, int) or not 0 <= fee_bps <= 10000:
            raise SettingsError("fee_bps must be a whole number of basis points, 0 to 10000")
        return_days = raw.get("payout_return_days")
        if return_days is not None and (not isinstance(return_days, int) or isinstance(return_days, bool)
                                        or not 0 <= return_days <= 30):
            raise SettingsError("payout_return_days must be a whole number of days, 0 to 30")
        return MockSettings(secret, mode, raw.get("callback_delay_ms", 0), raw.get("create_latency_ms", 0),
                            float(fail_create), fee_bps, raw.get("payout_latency_ms", 0), raw.get("payout_settle_ms", 50),
                            raw.get("base_url"), return_days, raw.get("statement_delay_seconds", 0))

    @property
    def settings(self) -> MockSettings:
        return self.ctx.settings

    @property
    def base_url(self) -> str:
        return (self.settings.base_url or f"{self.ctx.public_url.rstrip('/')}/hosted/{self.ctx.account_id}").rstrip("/")

    async def create(self, request: CreatePayment) -> PaymentResult:
        # Like a hosted-page payment at a real channel: the order travels in a signed link.
        if self.settings.create_latency_ms:
            await asyncio.sleep(self.settings.create_latency_ms / 1000)
        if self.settings.fail_create and random.random() < self.settings.fail_create:
            return PaymentResult(Outcome.FAILED, error_code="sandbox_declined",
                                 error_message="The sandbox declined to create the order (fail_create)")
        order = {"out_trade_no": request.out_trade_no, "amount": request.amount, "currency": request.currency,
                 "subject": request.subject,
                 "expires_at": int(request.expires_at.timestamp()) if request.expires_at else None}
        url = f"{self.base_url}/checkout?t={wire.make_token(self.settings.secret, order)}"
        action = {"type": "qr", "code": url} if request.method == "qr" else {"type": "redirect", "url": url}
        return PaymentResult(Outcome.PENDING, action=action)

    async def _call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = wire.encode(payload)
        response = await self.ctx.http.post(f"{self.base_url}{path}", content=body,
                                            headers=wire.signed_headers(self.settings.secret, body,
                                                                        self.ctx.clock.timestamp()))
        if response.status_code >= 500:
            raise httpx.HTTPStatusError("sandbox server error", request=response.request, response=response)
        # Only a verified answer may decide anything.
        return wire.verify(self.settings.secret, response.headers, response.content, self.ctx.clock.timestamp())

    async def query(self, out_trade_no: str) -> PaymentResult:
        return answers.trade(await self._call("/api/query", {"out_trade_no": out_trade_no}))

    async def close(self, out_trade_no: str) -> PaymentResult:
        return answers.trade(await self._call("/api/close", {"out_trade_no": out_trade_no}))

    async def refund(self, request: RefundRequest) -> RefundResult:
        return answers.refund(await self._call("/api/refund", {
            "out_trade_no": request.out_trade_no, "out_refund_no": request.out_refund_no, "amount": request.amount}))

    async def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundResult:
        return answers.refund(await self._call("/api/refund/query",
                                               {"out_trade_no": out_trade_no, "out_refund_no": out_refund_no}))

    # ---- payouts and splits ----

    async def payout(self, request: PayoutRequest) -> PayoutResult:
        return answers.payout(await self._call("/api/payout", {
            "out_payout_no": request.out_payout_no, "amount": request.amount, "currency": request.currency,
            "account_name": request.account_name, "account_no": request.account_no, "bank_code": request.bank_code}))

    async def query_payout(self, out_payout_no: str) -> PayoutResult:
        return answers.payout(await self._call("/api/payout/query", {"out_payout_no": out_payout_no}))

    async def split(self, request: SplitRequest) -> SplitResult:
        return answers.moved(await self._call("/api/split", {
            "out_trade_no": request.out_trade_no, "out_split_no": request.out_split_no, "amount": request.amount,
            "receiver": request.receiver_account}), "split_id", answers.SPLIT_DECLINED, SplitResult)

    async def query_split(self, request: SplitRequest) -> SplitResult:
        return answers.moved(await self._call("/api/split/query", {
            "out_trade_no": request.out_trade_no, "out_split_no": request.out_split_no}), "split_id", (), SplitResult)

    def _return(self, request: SplitReturn) -> dict[str, Any]:
        return {"out_trade_no": request.out_trade_no, "out_split_no": request.out_split_no,
                "out_return_no": request.out_return_no, "amount": request.amount}

    async def return_split(self, request: SplitReturn) -> SplitResult:
        return answers.moved(await self._call("/api/split/return", self._return(request)), "return_id",
                             answers.RETURN_DECLINED, SplitResult)

    async def query_split_return(self, request: SplitReturn) -> SplitResult:
        return answers.moved(await self._call("/api/split/return/query", self._return(request)), "return_id", (),
                             SplitResult)

    async def download_statement(self, business_date: date) -> bytes:
        data = await self._call("/api/statement", {"date": business_date.isoformat()})
        if "error" in data:
            raise StatementUnavailable(f"{data['error']}: {data.get('message')}")
        return str(data["content"]).encode("utf-8")

    def parse_statement(self, content: bytes) -> ParsedStatement:
        return parse_sandbox_statement(content)

    def read_statement(self, path: Path) -> ParsedStatement:
        return parse_sandbox_statement(path)

    def read_statement_pieces(self, path: Path) -> Iterator[ParsedStatement]:
        return sandbox_statement_pieces(path)

    async def download_split_statement(self, business_date: date) -> bytes:
        data = await self._call("/api/split/statement", {"date": business_date.isoformat()})
        if "error" in data:
            raise StatementUnavailable(f"{data['error']}: {data.get('message')}")
        return str(data["content"]).encode("utf-8")

    def parse_split_statement(self, content: bytes) -> list[SplitLine]:
        return parse_sandbox_splits(content)

    async def parse_notification(self, notification: InboundNotification) -> list[ChannelEvent]:
        try:
            data = wire.verify(self.settings.secret, notification.headers, notification.body,
                               self.ctx.clock.timestamp())
        except wire.WireError as exc:
            raise NotificationRejected(exc.reason, str(exc)) from None
        try:
            return answers.callback_events(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise NotificationRejected("malformed_body", f"callback lacks or garbles {exc}") from None

    def acknowledge(self, accepted: bool, message: str = "") -> Acknowledgement:
        body = wire.encode({"code": "SUCCESS"} if accepted else {"code": "FAIL", "message": message[:200]})
        return Acknowledgement(200 if accepted else 400, body, "application/json")

    def hosted_app(self) -> Any:
        from plugins.mock.simulator import SandboxSimulator

        self._sim = SandboxSimulator(self.settings, notify_url=self.ctx.notify_url, clock=self.ctx.clock)
        return self._sim.app

