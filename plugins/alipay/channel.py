"""Alipay OpenAPI (RSA2) as a paymux channel: qr (precreate), page, wap and app payments; query,
close, refunds; order settle (分账) and its finish. Page, wap and app orders are signed here and need
no call to Alipay to create.

What each answer means (final, unknown, ask again) is in answers.py, with its source. Two of Alipay's
ways shape this plugin: a precreate (qr) order does not exist at Alipay until someone scans it, and a
page/wap/app order until someone opens it, so "交易不存在" proves nothing until the order can no longer
be paid; every order is therefore given a time_expire no later than `max_order_minutes` after it was
made (Alipay's own QR codes live 2 hours), and only past that is a close answered 交易不存在 a close."""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlencode

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.channel import (Acknowledgement, Capability, Channel, ChannelEvent, CreatePayment, Discount,
                             InboundNotification, NotificationRejected, Outcome, ParsedStatement, PaymentResult,
                             RefundRequest, RefundResult, SettingsError, SplitFinish, SplitLimits, SplitLine,
                             SplitRequest, SplitResult, StatementUnavailable)
from plugins.alipay import wire
from plugins.alipay.answers import (PRECREATE_REFUSED, REFUND_REFUSED, ROYALTY_STATE, SETTLE_REFUSED, TRADE_STATUS,
                                    Row, refused)
from plugins.alipay.accountlog import parse_accountlog
from plugins.alipay.statement import parse_bill
from plugins.references import order_time

DEFAULT_GATEWAY = "https://openapi.alipay.com/gateway.do"
# A trade settled with royalty_freeze stays frozen "直到平台商触发解冻或超时自动解冻(系统默认在冻结 30 天后自动
# 解冻)" (支付宝分账接入, 收单结算 alipay.trade.settle.confirm / royalty_freeze).
ROYALTY_FROZEN_DAYS = 30
CHINA = timezone(timedelta(hours=8))
PAGE_METHODS = {"page": ("alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY"),
                "wap": ("alipay.trade.wap.pay", "QUICK_WAP_WAY"),
                "app": ("alipay.trade.app.pay", "QUICK_MSECURITY_PAY")}
NOTIFY_MAX_AGE = timedelta(hours=26)   # Alipay retries for about 25 hours
NOTIFY_MAX_AHEAD = timedelta(minutes=5)   # clocks differ a little; Alipay never dates a notify later than now
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class AlipaySettings:
    app_id: str
    app_private_key: rsa.RSAPrivateKey
    alipay_public_key: rsa.RSAPublicKey
    seller_id: str                          # the 2088… the notifies must name: another seller's are refused
    gateway_url: str = DEFAULT_GATEWAY
    sign_type: str = "RSA2"
    max_order_minutes: int = 120            # every order's time_expire is at most this after it was made
    max_split_ratio_bps: int = 3000         # 商家分账: at most 30% of an order, unless the merchant's contract says more
    royalty_delay_seconds: float = 30.0     # "建议支付成功后间隔 30s 再发起" an order settle


class AlipayRefused(Exception):
    def __init__(self, code: str, sub_code: str, message: str) -> None:
        super().__init__(f"{code} {sub_code}: {message}")
        self.code, self.sub_code, self.message = code, sub_code, message


class AlipayChannel(Channel):
    name = "alipay"
    methods = ("qr", "page", "wap", "app")
    local_create_methods = ("page", "wap", "app")   # signed here; Alipay hears of them from the payer
    capabilities = frozenset({Capability.PAY, Capability.QUERY, Capability.CLOSE, Capability.REFUND,
                              Capability.REFUND_QUERY, Capability.NOTIFY, Capability.STATEMENT, Capability.SPLIT,
                              Capability.SPLIT_FINISH, Capability.SPLIT_STATEMENT})
    currencies = frozenset({"CNY"})

    @classmethod
    def parse_settings(cls, raw: Mapping[str, Any]) -> AlipaySettings:
        for key in ("app_id", "app_private_key", "alipay_public_key"):
            if not isinstance(raw.get(key), str) or not raw.get(key):
                raise SettingsError(f"{key} is required")
        if raw.get("sign_type", "RSA2") != "RSA2":
            raise SettingsError("sign_type must be RSA2")
        try:
            private_key = wire.load_private_key(raw["app_private_key"])
        except (ValueError, TypeError) as exc:
            raise SettingsError(f"app_private_key is not a PEM RSA private key: {exc}") from None
        try:
            public_key = wire.load_public_key(raw["alipay_public_key"])
        except (ValueError, TypeError) as exc:
            raise SettingsError(f"alipay_public_key is not a PEM RSA public key: {exc}") from None
        seller_id = raw.get("seller_id")
        if not isinstance(seller_id, str) or not (seller_id.startswith("2088") and len(seller_id) == 16
                                                  and seller_id.isdigit()):
            raise SettingsError("seller_id is required: the merchant's 2088… Alipay user id (16 digits), which "
                                "every notify is checked against")
        try:
            minutes, ratio = int(raw.get("max_order_minutes", 120)), int(raw.get("max_split_ratio_bps", 3000))
            delay = float(raw.get("royalty_delay_seconds", 30))
        except (TypeError, ValueError):
            raise SettingsError("max_order_minutes, max_split_ratio_bps and royalty_delay_seconds are numbers") from None
        if not (1 <= minutes <= 15 * 24 * 60 and 0 < ratio <= 10000 and delay >= 0):
            raise SettingsError("max_order_minutes must be 1..21600, max_split_ratio_bps 1..10000, "
                                "royalty_delay_seconds >= 0")
        return AlipaySettings(raw["app_id"], private_key, public_key, seller_id,
                              str(raw.get("gateway_url") or DEFAULT_GATEWAY), max_order_minutes=minutes,
                              max_split_ratio_bps=ratio, royalty_delay_seconds=delay)

    @property
    def settings(self) -> AlipaySettings:
        return self.ctx.settings

    def _params(self, method: str, biz: Mapping[str, Any], notify: bool = False) -> dict[str, str]:
        s = self.settings
        params = {"app_id": s.app_id, "method": method, "format": "JSON", "charset": "utf-8", "sign_type": "RSA2",
                  "timestamp": datetime.fromtimestamp(self.ctx.clock.timestamp(), CHINA).strftime("%Y-%m-%d %H:%M:%S"),
                  "version": "1.0", "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":"))}
        if notify:
            params["notify_url"] = self.ctx.notify_url
        params["sign"] = wire.sign_params(s.app_private_key, params)
        return params

    async def _call(self, method: str, biz: Mapping[str, Any], notify: bool = False) -> dict[str, Any]:
        response = await self.ctx.http.post(self.settings.gateway_url, data=self._params(method, biz, notify),
                                            params={"charset": "utf-8"})
        if response.status_code >= 500:
            raise httpx.HTTPStatusError("Alipay server error", request=response.request, response=response)
        text, sign = wire.response_text(response.text, method)
        if not sign or not wire.rsa_verify(self.settings.alipay_public_key, text.encode(), sign):
            raise wire.WireError("bad_signature", f"the {method} answer is not signed by Alipay")
        data = json.loads(text)
        if data.get("code") != "10000":
            raise AlipayRefused(str(data.get("code")), str(data.get("sub_code")), str(data.get("sub_msg") or data.get("msg")))
        return data

    # ---- payments ----

    async def create(self, request: CreatePayment) -> PaymentResult:
        biz: dict[str, Any] = {"out_trade_no": request.out_trade_no, "total_amount": wire.yuan(request.amount),
                               "subject": request.subject[:256],
                               "time_expire": self._expiry(request).strftime("%Y-%m-%d %H:%M:%S")}
        if request.split:   # the money stays frozen for alipay.trade.order.settle
            biz["extend_params"] = {"royalty_freeze": "true"}
        if request.method in PAGE_METHODS:
            api, product = PAGE_METHODS[request.method]
            params = self._params(api, {**biz, "product_code": product}, notify=True)
            if request.method == "app":
                return PaymentResult(Outcome.PENDING, action={"type": "app", "order_string": urlencode(params)})
            return PaymentResult(Outcome.PENDING, action={
                "type": "redirect", "url": f"{self.settings.gateway_url}?{urlencode(params)}"})
        try:
            data = await self._call("alipay.trade.precreate", biz, notify=True)
        except AlipayRefused as exc:
            row = refused(PRECREATE_REFUSED, exc.code, exc.sub_code)
            if row.outcome is Outcome.SUCCEEDED:     # 交易已被支付: how, the query says
                return await self.query(request.out_trade_no)
            return PaymentResult(row.outcome, error_code=exc.sub_code, error_message=exc.message)
        return PaymentResult(Outcome.PENDING, action={"type": "qr", "code": data["qr_code"]})

    def _expiry(self, request: CreatePayment) -> datetime:
        """No later than max_order_minutes after the order was made: after that, 交易不存在 is proof."""
        latest = self.ctx.clock.now() + timedelta(minutes=self.settings.max_order_minutes)
        return min(request.expires_at or latest, latest).astimezone(CHINA)

    def _trade(self, data: Mapping[str, Any]) -> PaymentResult:
        outcome = _row(TRADE_STATUS, data.get("trade_status")).outcome
        amount = wire.fen(data["total_amount"]) if data.get("total_amount") else None
        if outcome is not Outcome.SUCCEEDED or amount is None:
            return PaymentResult(outcome, channel_transaction_id=data.get("trade_no"), amount=amount, currency="CNY")
        discounts, settled = vouchers(amount, data)
        return PaymentResult(outcome, channel_transaction_id=data.get("trade_no"), amount=amount, currency="CNY",
                             discounts=discounts, settled_amount=settled)

    async def query(self, out_trade_no: str) -> PaymentResult:
        try:
            # The coupons are listed only when asked for (query_options).
            return self._trade(await self._call("alipay.trade.query", {"out_trade_no": out_trade_no,
                                                                       "query_options": ["voucher_detail_list"]}))
        except AlipayRefused as exc:
            # Not there yet: nobody has scanned or opened it (or it was never sent). Not paid.
            outcome = Outcome.PENDING if exc.sub_code == "ACQ.TRADE_NOT_EXIST" else Outcome.UNKNOWN
            return PaymentResult(outcome, error_code=exc.sub_code, error_message=exc.message)

    async def close(self, out_trade_no: str) -> PaymentResult:
        try:
            await self._call("alipay.trade.close", {"out_trade_no": out_trade_no})
        except AlipayRefused as exc:
            if exc.sub_code == "ACQ.TRADE_NOT_EXIST":
                # Nobody has scanned or opened it yet; until its time_expire someone still may, and then pay.
                made = order_time(out_trade_no)
                over = made is not None and self.ctx.clock.now() >= made + timedelta(
                    minutes=self.settings.max_order_minutes) + CLOCK_SKEW
                return PaymentResult(Outcome.CLOSED if over else Outcome.PENDING, error_code=exc.sub_code,
                                     error_message=exc.message)
            if exc.sub_code != "ACQ.TRADE_STATUS_ERROR":   # paid or closed already: the query says which
                return PaymentResult(Outcome.UNKNOWN, error_code=exc.sub_code, error_message=exc.message)
        return await self.query(out_trade_no)

    # ---- refunds (Alipay answers them synchronously) ----

    async def refund(self, request: RefundRequest) -> RefundResult:
        biz = {"out_trade_no": request.out_trade_no, "refund_amount": wire.yuan(request.amount),
               "out_request_no": request.out_refund_no}
        if request.reason:
            biz["refund_reason"] = request.reason[:256]
        try:
            data = await self._call("alipay.trade.refund", biz)
        except AlipayRefused as exc:
            return RefundResult(refused(REFUND_REFUSED, exc.code, exc.sub_code).outcome, error_code=exc.sub_code,
                                error_message=exc.message)
        if data.get("fund_change") == "Y":   # money moved now
            return RefundResult(Outcome.SUCCEEDED, channel_refund_id=data.get("trade_no"), amount=request.amount)
        # N (or none): this call moved nothing. A refund made before under this number shows on the query;
        # if it does not show, Alipay has not done it (yet): unknown, asked again.
        found = await self.query_refund(request.out_trade_no, request.out_refund_no)
        if found.outcome is Outcome.SUCCEEDED:
            return found
        return RefundResult(Outcome.UNKNOWN, error_code=f"fund_change_{data.get('fund_change') or 'absent'}",
                            error_message="Alipay accepted the refund without moving money; asked again")

    async def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundResult:
        try:
            data = await self._call("alipay.trade.fastpay.refund.query",
                                    {"out_trade_no": out_trade_no, "out_request_no": out_refund_no})
        except AlipayRefused as exc:
            return RefundResult(Outcome.UNKNOWN, error_code=exc.sub_code, error_message=exc.message,
                                unheard=exc.sub_code == "ACQ.TRADE_NOT_EXIST")
        if data.get("refund_status") == "REFUND_SUCCESS" or (data.get("refund_amount") and not data.get("refund_status")):
            return RefundResult(Outcome.SUCCEEDED, channel_refund_id=data.get("trade_no"),
                                amount=wire.fen(data["refund_amount"]))
        # No refund data: "没有查询到则代表未退款成功，可以调用退款接口进行重试" under the same number.
        return RefundResult(Outcome.UNKNOWN, error_code="REFUND_NOT_FOUND", unheard=not data.get("refund_amount"))

    # ---- splits: alipay.trade.order.settle (分账), after binding the receiver ----

    @staticmethod
    def _trans_in_type(account: str) -> str:
        return "userId" if account.startswith("2088") and len(account) == 16 and account.isdigit() else "loginName"

    def split_limits(self) -> SplitLimits:
        return SplitLimits(self.settings.max_split_ratio_bps, self.settings.royalty_delay_seconds, ROYALTY_FROZEN_DAYS)

    async def split(self, request: SplitRequest) -> SplitResult:
        kind = self._trans_in_type(request.receiver_account)
        try:
            await self._call("alipay.trade.royalty.relation.bind", {
                "out_request_no": f"bind{request.out_split_no}"[:64],
                "receiver_list": [{"type": kind, "account": request.receiver_account, "name": request.receiver_name}]})
            await self._call("alipay.trade.order.settle", {
                "out_request_no": request.out_split_no, "trade_no": request.channel_transaction_id,
                "royalty_parameters": [{"royalty_type": "transfer", "trans_in_type": kind,
                                        "trans_in": request.receiver_account, "amount": wire.yuan(request.amount),
                                        "desc": request.description[:100]}]})
        except AlipayRefused as exc:
            return SplitResult(refused(SETTLE_REFUSED, exc.code, exc.sub_code).outcome, error_code=exc.sub_code,
                               error_message=exc.message)
        return await self.query_split(request)   # accepted: settled asynchronously, its state is on the query

    async def query_split(self, request: SplitRequest) -> SplitResult:
        try:
            data = await self._call("alipay.trade.order.settle.query", {
                "out_request_no": request.out_split_no, "trade_no": request.channel_transaction_id})
        except AlipayRefused as exc:
            return SplitResult(Outcome.UNKNOWN, error_code=exc.sub_code, error_message=exc.message)
        details = data.get("royalty_detail_list") or []
        if not details:
            return SplitResult(Outcome.UNKNOWN, unheard=True)
        outcome = _row(ROYALTY_STATE, details[0].get("state")).outcome
        return SplitResult(outcome, data.get("settle_no"), error_code=details[0].get("error_code"),
                           error_message=details[0].get("error_desc"))

    async def finish_split(self, request: SplitFinish) -> SplitResult:
        """分账完结 alone: an order settle with royalty_finish and no royalty_parameters."""
        try:
            data = await self._call("alipay.trade.order.settle", {
                "out_request_no": request.out_finish_no, "trade_no": request.channel_transaction_id,
                "extend_params": {"royalty_finish": "true"}})
        except AlipayRefused as exc:
            refusal = SplitResult(refused(SETTLE_REFUSED, exc.code, exc.sub_code).outcome, error_code=exc.sub_code,
                                  error_message=exc.message)
            # a trade whose freeze ran out was released by Alipay itself (and takes no more settles):
            # nothing left frozen means the finish's end holds
            found = await self.query_split_finish(request)
            return found if found.outcome is Outcome.SUCCEEDED else refusal
        found = await self.query_split_finish(request)
        return found if found.outcome is Outcome.SUCCEEDED else SplitResult(Outcome.PENDING, data.get("settle_no"))

    async def query_split_finish(self, request: SplitFinish) -> SplitResult:
        """Nothing left to settle (onsettle unsettled_amount 0): released. Anything left: the finish did
        not take effect, and is sent again under its number."""
        try:
            data = await self._call("alipay.trade.order.onsettle.query", {"trade_no": request.channel_transaction_id})
        except AlipayRefused as exc:
            return SplitResult(Outcome.UNKNOWN, error_code=exc.sub_code, error_message=exc.message)
        left = wire.fen(data["unsettled_amount"]) if data.get("unsettled_amount") else None
        if left == 0:
            return SplitResult(Outcome.SUCCEEDED)
        return SplitResult(Outcome.UNKNOWN, error_code="UNSETTLED_LEFT", unheard=left is not None)

    # ---- statements ----

    async def download_statement(self, business_date: date) -> bytes:
        """The day's trade bill: a zip of GBK CSVs (detail and summary), as Alipay serves it."""
        try:
            data = await self._call("alipay.data.dataservice.bill.downloadurl.query",
                                    {"bill_type": "trade", "bill_date": business_date.isoformat()})
        except AlipayRefused as exc:
            raise StatementUnavailable(f"{exc.sub_code}: {exc.message}") from None
        response = await self.ctx.http.get(data["bill_download_url"])
        response.raise_for_status()
        if not zipfile.is_zipfile(io.BytesIO(response.content)):
            raise StatementUnavailable("the downloaded bill is not a zip archive")
        return response.content

    def parse_statement(self, content: bytes) -> ParsedStatement:
        return parse_bill(content)

    async def download_split_statement(self, business_date: date) -> bytes:
        """The day's order settles, from the account log (alipay.data.bill.accountlog.query), every page."""
        window = {"start_time": f"{business_date.isoformat()} 00:00:00",
                  "end_time": f"{(business_date + timedelta(days=1)).isoformat()} 00:00:00"}
        logs: list[dict[str, Any]] = []
        page = 1
        while True:
            try:
                data = await self._call("alipay.data.bill.accountlog.query",
                                        {**window, "page_no": str(page), "page_size": "2000"})
            except AlipayRefused as exc:
                raise StatementUnavailable(f"{exc.sub_code}: {exc.message}") from None
            logs += data.get("detail_list") or []
            total = int(data.get("total_size") or 0)
            if len(logs) >= total or not data.get("detail_list"):
                break
            page += 1
        return json.dumps({"total_size": total, "detail_list": logs}, ensure_ascii=False).encode()

    def parse_split_statement(self, content: bytes) -> list[SplitLine]:
        return parse_accountlog(content)

    def read_statement(self, path: Path) -> ParsedStatement:
        return parse_bill(path)

    # ---- async notifies ----

    async def parse_notification(self, notification: InboundNotification) -> list[ChannelEvent]:
        s = self.settings
        try:
            form = dict(parse_qsl(notification.body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            raise NotificationRejected("malformed_body", "the notify is not a form") from None
        if not wire.verify_params(s.alipay_public_key, form):
            raise NotificationRejected("bad_signature", "the notify is not signed by Alipay")
        if form.get("app_id") != s.app_id or form.get("seller_id") != s.seller_id:
            raise NotificationRejected("wrong_merchant", "the notify is for another app_id or seller_id")
        try:
            sent = datetime.strptime(form["notify_time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
            out_trade_no = form["out_trade_no"]
            amount = wire.fen(form["total_amount"])
        except (KeyError, ValueError) as exc:
            raise NotificationRejected("malformed_body", f"the notify lacks or garbles {exc}") from None
        age = self.ctx.clock.now() - sent
        if not -NOTIFY_MAX_AHEAD <= age <= NOTIFY_MAX_AGE:
            raise NotificationRejected("stale_timestamp", "notify_time is older than Alipay's retry window or "
                                                          "later than now")
        if form.get("out_biz_no") and form.get("gmt_refund"):
            return [ChannelEvent("refund", out_trade_no, Outcome.SUCCEEDED, out_refund_no=form["out_biz_no"],
                                 channel_refund_id=form.get("trade_no"))]
        row = TRADE_STATUS.get(form.get("trade_status", ""))
        if row is None:
            return []
        outcome = row.outcome
        try:
            trade = self._trade(form)
        except (KeyError, TypeError, ValueError) as exc:
            raise NotificationRejected("malformed_body", f"the notify's coupons cannot be read: {exc}") from None
        return [ChannelEvent("payment", out_trade_no, outcome, amount=amount, currency="CNY",
                             channel_transaction_id=form.get("trade_no"), discounts=trade.discounts,
                             settled_amount=trade.settled_amount)]

    def acknowledge(self, accepted: bool, message: str = "") -> Acknowledgement:
        # Exactly these bytes: anything but "success" makes Alipay send it again.
        return Acknowledgement(200, b"success" if accepted else b"fail", "text/plain")

    @classmethod
    def standalone_simulator(cls, workdir: Any, url: str) -> tuple[Any, str]:
        from plugins.alipay.simulator import standalone

        return standalone(workdir, url)


def _row(table: Mapping[str, Row], state: Any) -> Row:
    """A state's row; one Alipay has not documented is unknown (asked about again)."""
    return table.get(state) or Row(Outcome.UNKNOWN, f"undocumented state {state!r}")


def vouchers(amount: int, data: Mapping[str, Any]) -> tuple[tuple[Discount, ...], int | None]:
    """A paid trade's coupons (voucher_detail_list: a JSON string in a notify, a list in a query answer)
    and what Alipay pays the merchant for it (receipt_amount, 商家实收). The merchant's contribution to a
    voucher is kept out of what Alipay pays; others' (Alipay's, a brand's) are paid. receipt_amount is
    the channel's word: a merchant discount no voucher explains (商家优惠) is the merchant's too."""
    raw = data.get("voucher_detail_list") or []
    listed = json.loads(raw) if isinstance(raw, str) else raw
    discounts = []
    for v in listed:
        total, merchant = wire.fen(v["amount"]), wire.fen(v.get("merchant_contribute") or "0.00")
        other = wire.fen(v.get("other_contribute") or "0.00")
        discounts.append(Discount(total, merchant_funded=merchant, channel_funded=max(0, total - merchant - other),
                                  other_funded=other, unsettled=merchant, campaign=v.get("template_id") or None,
                                  name=str(v.get("name") or "")))
    if not data.get("receipt_amount"):
        return tuple(discounts), None
    settled = wire.fen(data["receipt_amount"])
    unexplained = amount - settled - sum(d.unsettled for d in discounts)
    if unexplained > 0:
        discounts.append(Discount(unexplained, merchant_funded=unexplained, unsettled=unexplained, name="商家优惠"))
    return tuple(discounts), settled
