"""WeChat Pay APIv3 as a paymux channel: native, jsapi, h5 and app payments; query, close, refunds;
profit sharing (分账), its returns, and the release of what is left (解冻剩余资金).

What each answer means (final, unknown, ask again) is in answers.py, with its source.

Profit sharing: a payment to be split is created with settle_info.profit_sharing (WeChat Pay then
holds its money frozen for splitting); each split adds its receiver (/v3/profitsharing/receivers/add,
name encrypted) and is one profit-sharing order (out_order_no = out_split_no) with that receiver, sent
no sooner than `profit_sharing_delay_seconds` after the payment and within `max_split_ratio_bps` of it
(the merchant platform's 最大分账比例, 30% unless raised); a return (/v3/profitsharing/return-orders)
takes money back from a MERCHANT_ID receiver; the finish (/v3/profitsharing/orders/unfreeze) releases
the rest to the merchant. All are settled by query (the janitor asks).

WeChat Pay holds a direct merchant's order frozen at most PROFIT_SHARING_FROZEN_DAYS (资金冻结期最长是30天):
then it unfreezes what is left itself and the order takes no more splits; an unfreeze after that is
refused 分账金额不足, and what the order still holds (查询剩余待分金额, /v3/profitsharing/transactions/{id}/amounts)
tells whether anything is left frozen: nothing left means released."""
from __future__ import annotations

import gzip
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import date, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping
from urllib.parse import quote

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.channel import (Acknowledgement, Capability, Channel, ChannelEvent, CreatePayment, Discount,
                             InboundNotification, NotificationRejected, Outcome, ParsedStatement, PaymentResult,
                             RefundRequest, RefundResult, SettingsError, SplitFinish, SplitLimits, SplitLine,
                             SplitRequest, SplitResult, SplitReturn, StatementUnavailable)
from plugins.wechatpay import wire
from plugins.wechatpay.answers import (CREATE_REFUSED, CREATE_RETRYABLE, NOT_FOUND, REFUND_REFUSED, REFUND_STATUS,
                                       RETURN_RESULT, SHARE_REFUSED, SHARING_RESULT, SHARING_STATE, TRADE_STATE,
                                       Row, refused)
from plugins.wechatpay.split_bill import parse_split_bill
from plugins.wechatpay.statement import parse_tradebill, tradebill_pieces

DEFAULT_BASE_URL = "https://api.mch.weixin.qq.com"
# "资金冻结期最长是30天，如果在30天内商户没有发起分账指令，则订单冻结资金将全部解冻" (普通商户分账, 常见问题:
# pay.weixin.qq.com/doc/v3/merchant/4014547102); service providers' orders are held 180 days.
PROFIT_SHARING_FROZEN_DAYS = 30
CHINA = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class WechatPaySettings:
    mchid: str
    appid: str                       # the 公众号/小程序 AppID: native, jsapi and h5 orders, openid receivers
    merchant_serial_no: str
    merchant_private_key: rsa.RSAPrivateKey
    apiv3_key: bytes
    platform_keys: Mapping[str, rsa.RSAPublicKey]   # serial -> key; several during a rotation, newest last
    base_url: str = DEFAULT_BASE_URL
    app_appid: str | None = None     # the 移动应用 AppID an app order needs (WeChat Pay binds each to its own)
    max_split_ratio_bps: int = 3000  # 最大分账比例 on the merchant platform (30% unless the merchant raised it)
    profit_sharing_delay_seconds: float = 60.0   # WeChat Pay takes a split of an order only this long after it

    @property
    def request_serial(self) -> str:
        """The platform key we name in Wechatpay-Serial (and encrypt with): the newest configured."""
        return list(self.platform_keys)[-1]


class ChannelRefused(Exception):
    """The channel answered with a verified business error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class WechatPayChannel(Channel):
    name = "wechatpay"
    methods = ("native", "jsapi", "h5", "app")
    capabilities = frozenset({Capability.PAY, Capability.QUERY, Capability.CLOSE, Capability.REFUND,
                              Capability.REFUND_QUERY, Capability.NOTIFY, Capability.STATEMENT, Capability.SPLIT,
                              Capability.SPLIT_RETURN, Capability.SPLIT_FINISH, Capability.SPLIT_STATEMENT})
    currencies = frozenset({"CNY"})

    @classmethod
    def parse_settings(cls, raw: Mapping[str, Any]) -> WechatPaySettings:
        for key in ("mchid", "appid", "merchant_serial_no", "merchant_private_key", "apiv3_key"):
            if not isinstance(raw.get(key), str) or not raw.get(key):
                raise SettingsError(f"{key} is required")
        try:
            private_key = wire.load_private_key(raw["merchant_private_key"])
        except (ValueError, TypeError) as exc:
            raise SettingsError(f"merchant_private_key is not a PEM RSA private key: {exc}") from None
        apiv3_key = raw["apiv3_key"].encode()
        if len(apiv3_key) != 32:
            raise SettingsError("apiv3_key must be exactly 32 bytes")
        pairs = list(raw.get("platform_public_keys") or [])
        if raw.get("platform_public_key"):
            pairs.append({"id": raw.get("platform_public_key_id"), "key": raw["platform_public_key"]})
        if not pairs:
            raise SettingsError("platform_public_key and platform_public_key_id (or platform_public_keys) are required")
        keys = {}
        for i, pair in enumerate(pairs):
            if not isinstance(pair, Mapping) or not pair.get("id") or not pair.get("key"):
                raise SettingsError(f"platform key {i} needs an id (the Wechatpay-Serial) and a key")
            try:
                keys[str(pair["id"])] = wire.load_public_key(pair["key"])
            except (ValueError, TypeError) as exc:
                raise SettingsError(f"platform key {pair['id']!r} is not a PEM RSA public key or certificate: "
                                    f"{exc}") from None
        app_appid = raw.get("app_appid") or None
        if app_appid is not None and not isinstance(app_appid, str):
            raise SettingsError("app_appid must be the app's AppID (a string)")
        try:
            ratio = int(raw.get("max_split_ratio_bps", 3000))
            delay = float(raw.get("profit_sharing_delay_seconds", 60))
        except (TypeError, ValueError):
            raise SettingsError("max_split_ratio_bps and profit_sharing_delay_seconds must be numbers") from None
        if not 0 < ratio <= 10000 or delay < 0:
            raise SettingsError("max_split_ratio_bps must be 1..10000 and profit_sharing_delay_seconds >= 0")
        return WechatPaySettings(raw["mchid"], raw["appid"], raw["merchant_serial_no"], private_key, apiv3_key,
                                 keys, str(raw.get("base_url") or DEFAULT_BASE_URL).rstrip("/"), app_appid, ratio,
                                 delay)

    @property
    def settings(self) -> WechatPaySettings:
        return self.ctx.settings

    # ---- transport: every request signed, every answer verified ----

    async def _call(self, method: str, path: str, payload: dict[str, Any] | None = None,
                    extra_headers: Mapping[str, str] | None = None) -> tuple[int, dict]:
        s = self.settings
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        # Wechatpay-Serial on every request: with WeChat Pay public keys it names the key WeChat Pay signs
        # its answer with (and the one a sensitive field is encrypted under).
        headers = {"Authorization": wire.authorization(s.mchid, s.merchant_serial_no, s.merchant_private_key, method,
                                                       path, body, self.ctx.clock.timestamp()),
                   "Accept": "application/json", "Wechatpay-Serial": s.request_serial, **(extra_headers or {})}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        response = await self.ctx.http.request(method, s.base_url + path, content=body, headers=headers)
        if response.status_code >= 500:
            raise httpx.HTTPStatusError("WeChat Pay server error", request=response.request, response=response)
        wire.verify_headers(s.platform_keys, response.headers, response.content, self.ctx.clock.timestamp())
        data = response.json() if response.content else {}
        if response.status_code >= 400:
            raise ChannelRefused(response.status_code, str(data.get("code")), str(data.get("message")))
        return response.status_code, data

    # ---- payments ----

    async def create(self, request: CreatePayment) -> PaymentResult:
        s = self.settings
        appid = s.app_appid if request.method == "app" else s.appid
        if not appid:
            return PaymentResult(Outcome.FAILED, error_code="app_appid_required", retryable=True,
                                 error_message="app orders need the account's app_appid (the 移动应用 AppID)")
        payload: dict[str, Any] = {
            "appid": appid, "mchid": s.mchid, "description": request.subject[:127],
            "out_trade_no": request.out_trade_no, "notify_url": self.ctx.notify_url,
            "amount": {"total": request.amount, "currency": request.currency}}
        if request.expires_at:
            payload["time_expire"] = request.expires_at.astimezone(CHINA).isoformat(timespec="seconds")
        if request.split:
            payload["settle_info"] = {"profit_sharing": True}
        if request.method == "jsapi":
            openid = request.metadata.get("payer_openid")
            if not openid:
                return PaymentResult(Outcome.FAILED, error_code="payer_openid_required",
                                     error_message="jsapi payments need metadata.payer_openid")
            payload["payer"] = {"openid": openid}
        if request.method == "h5":
            # The payer's own IP: WeChat Pay checks it against the browser that opens h5_url.
            ip = request.metadata.get("payer_client_ip")
            if not ip:
                return PaymentResult(Outcome.FAILED, error_code="payer_client_ip_required",
                                     error_message="h5 payments need metadata.payer_client_ip, the payer's IP")
            payload["scene_info"] = {"payer_client_ip": ip, "h5_info": {"type": "Wap"}}
        try:
            _, data = await self._call("POST", f"/v3/pay/transactions/{request.method}", payload)
        except ChannelRefused as exc:
            row = refused(CREATE_REFUSED, exc.status, exc.code)
            return PaymentResult(row.outcome, error_code=exc.code, error_message=exc.message,
                                 retryable=row.outcome is Outcome.FAILED and exc.code in CREATE_RETRYABLE)
        return PaymentResult(Outcome.PENDING, action=self._action(request.method, data))

    def _action(self, method: str, data: dict[str, Any]) -> dict[str, Any]:
        s = self.settings
        if method == "native":
            return {"type": "qr", "code": data["code_url"]}
        if method == "h5":
            return {"type": "redirect", "url": data["h5_url"]}
        timestamp, nonce, prepay_id = str(self.ctx.clock.timestamp()), secrets.token_hex(16), data["prepay_id"]
        if method == "jsapi":
            package = f"prepay_id={prepay_id}"
            return {"type": "jsapi", "params": {
                "appId": s.appid, "timeStamp": timestamp, "nonceStr": nonce, "package": package, "signType": "RSA",
                "paySign": wire.rsa_sign(s.merchant_private_key, wire.message(s.appid, timestamp, nonce, package))}}
        appid = s.app_appid or s.appid
        return {"type": "app", "params": {
            "appid": appid, "partnerid": s.mchid, "prepayid": prepay_id, "package": "Sign=WXPay",
            "noncestr": nonce, "timestamp": timestamp,
            "sign": wire.rsa_sign(s.merchant_private_key, wire.message(appid, timestamp, nonce, prepay_id))}}

    def _transaction(self, data: Mapping[str, Any]) -> PaymentResult:
        amount = data.get("amount") or {}
        outcome = _row(TRADE_STATE, data.get("trade_state")).outcome
        if outcome is not Outcome.SUCCEEDED:
            return PaymentResult(outcome, channel_transaction_id=data.get("transaction_id"), amount=amount.get("total"),
                                 currency=amount.get("currency"))
        discounts = promotions(data.get("promotion_detail") or [])
        return PaymentResult(outcome, channel_transaction_id=data.get("transaction_id"), amount=amount.get("total"),
                             currency=amount.get("currency"), discounts=discounts,
                             payer_amount=amount.get("payer_total"),
                             settled_amount=int(amount["total"]) - sum(d.unsettled for d in discounts))

    async def query(self, out_trade_no: str) -> PaymentResult:
        path = f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no)}?mchid={quote(self.settings.mchid)}"
        try:
            _, data = await self._call("GET", path)
        except ChannelRefused as exc:
            # Never created there (a create that timed out): nobody can have paid it.
            outcome = Outcome.PENDING if exc.code == "ORDER_NOT_EXIST" else Outcome.UNKNOWN
            return PaymentResult(outcome, error_code=exc.code, error_message=exc.message)
        return self._transaction(data)

    async def close(self, out_trade_no: str) -> PaymentResult:
        try:
            await self._call("POST", f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no)}/close",
                             {"mchid": self.settings.mchid})
        except ChannelRefused as exc:
            if exc.code == "ORDER_NOT_EXIST":  # the create never reached WeChat Pay: nobody can pay it
                return PaymentResult(Outcome.CLOSED, error_code=exc.code, error_message=exc.message)
            if exc.code != "ORDER_PAID":
                return PaymentResult(Outcome.UNKNOWN, error_code=exc.code, error_message=exc.message)
        # Closing answers 204 with no order in it: ask what the order is now (paid meanwhile, or closed).
        return await self.query(out_trade_no)

    # ---- refunds ----

    @staticmethod
    def _refund(data: Mapping[str, Any]) -> RefundResult:
        row = _row(REFUND_STATUS, data.get("status") or data.get("refund_status"))
        state = data.get("status") or data.get("refund_status")
        return RefundResult(row.outcome, channel_refund_id=data.get("refund_id"),
                            amount=(data.get("amount") or {}).get("refund"),
                            error_code=state if row.attention or row.outcome is Outcome.FAILED else None,
                            error_message=row.source if row.outcome is Outcome.FAILED else None,
                            attention=row.attention)

    async def refund(self, request: RefundRequest) -> RefundResult:
        payload = {"out_trade_no": request.out_trade_no, "out_refund_no": request.out_refund_no,
                   "notify_url": self.ctx.notify_url,
                   "amount": {"refund": request.amount, "total": request.total_amount, "currency": request.currency}}
        if request.reason:
            payload["reason"] = request.reason[:80]
        try:
            _, data = await self._call("POST", "/v3/refund/domestic/refunds", payload)
        except ChannelRefused as exc:
            return RefundResult(refused(REFUND_REFUSED, exc.status, exc.code).outcome, error_code=exc.code,
                                error_message=exc.message)
        return self._refund(data)

    async def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundResult:
        try:
            _, data = await self._call("GET", f"/v3/refund/domestic/refunds/{quote(out_refund_no)}")
        except ChannelRefused as exc:
            # 404 RESOURCE_NOT_EXISTS: no such refund there; it may be sent again under the same number.
            return RefundResult(Outcome.UNKNOWN, error_code=exc.code, error_message=exc.message,
                                unheard=exc.status == 404 and exc.code in NOT_FOUND)
        return self._refund(data)

    # ---- profit sharing ----

    def _encrypted(self, text: str) -> str:
        """A sensitive field, under the platform key every request names in Wechatpay-Serial."""
        s = self.settings
        return wire.encrypt_sensitive(s.platform_keys[s.request_serial], text)

    @staticmethod
    def _receiver_type(receiver_type: str) -> str:
        return "MERCHANT_ID" if receiver_type == "merchant" else "PERSONAL_OPENID"

    @staticmethod
    def _sharing(data: Mapping[str, Any]) -> SplitResult:
        receivers = data.get("receivers") or [{}]
        row = _row(SHARING_RESULT, receivers[0].get("result"))
        return SplitResult(row.outcome, data.get("order_id"),
                           error_code=receivers[0].get("fail_reason") if row.outcome is Outcome.FAILED else None)

    @staticmethod
    def _refused(exc: ChannelRefused, query: bool = False) -> SplitResult:
        """A refused split, return or finish: as answers.SHARE_REFUSED says; a query's 404 means WeChat Pay
        never heard of it (send it again under the same number)."""
        if query:
            return SplitResult(Outcome.UNKNOWN, error_code=exc.code, error_message=exc.message,
                               unheard=exc.status == 404 and exc.code in NOT_FOUND)
        return SplitResult(refused(SHARE_REFUSED, exc.status, exc.code).outcome, error_code=exc.code,
                           error_message=exc.message)

    def split_limits(self) -> SplitLimits:
        return SplitLimits(self.settings.max_split_ratio_bps, self.settings.profit_sharing_delay_seconds,
                           PROFIT_SHARING_FROZEN_DAYS)

    async def split(self, request: SplitRequest) -> SplitResult:
        s = self.settings
        kind = self._receiver_type(request.receiver_type)
        name = self._encrypted(request.receiver_name)
        try:
            await self._call("POST", "/v3/profitsharing/receivers/add", {
                "appid": s.appid, "type": kind, "account": request.receiver_account, "name": name,
                "relation_type": "PARTNER"})
            _, data = await self._call("POST", "/v3/profitsharing/orders", {
                "appid": s.appid, "transaction_id": request.channel_transaction_id,
                "out_order_no": request.out_split_no, "unfreeze_unsplit": False,
                "receivers": [{"type": kind, "account": request.receiver_account, "amount": request.amount,
                               "description": request.description[:80]}]})
        except ChannelRefused as exc:
            return self._refused(exc)
        return self._sharing(data)

    async def query_split(self, request: SplitRequest) -> SplitResult:
        path = (f"/v3/profitsharing/orders/{quote(request.out_split_no)}"
                f"?transaction_id={quote(request.channel_transaction_id or '')}")
        try:
            _, data = await self._call("GET", path)
        except ChannelRefused as exc:
            return self._refused(exc, query=True)
        return self._sharing(data)

    @staticmethod
    def _returned(data: Mapping[str, Any]) -> SplitResult:
        outcome = _row(RETURN_RESULT, data.get("result")).outcome
        return SplitResult(outcome, data.get("return_id"),
                           error_code=data.get("fail_reason") if outcome is Outcome.FAILED else None)

    async def return_split(self, request: SplitReturn) -> SplitResult:
        if request.receiver_type != "merchant":
            return SplitResult(Outcome.FAILED, error_code="receiver_not_returnable",
                               error_message="WeChat Pay takes splits back from merchant receivers only")
        try:
            _, data = await self._call("POST", "/v3/profitsharing/return-orders", {
                "out_order_no": request.out_split_no, "out_return_no": request.out_return_no,
                "return_mchid": request.receiver_account, "amount": request.amount,
                "description": request.description[:80]})
        except ChannelRefused as exc:
            return self._refused(exc)
        return self._returned(data)

    async def query_split_return(self, request: SplitReturn) -> SplitResult:
        path = (f"/v3/profitsharing/return-orders/{quote(request.out_return_no)}"
                f"?out_order_no={quote(request.out_split_no)}")
        try:
            _, data = await self._call("GET", path)
        except ChannelRefused as exc:
            return self._refused(exc, query=True)
        return self._returned(data)

    # ---- the end of splitting: 解冻剩余资金 ----

    @staticmethod
    def _unfrozen(data: Mapping[str, Any]) -> SplitResult:
        return SplitResult(_row(SHARING_STATE, data.get("state")).outcome, data.get("order_id"))

    async def finish_split(self, request: SplitFinish) -> SplitResult:
        try:
            _, data = await self._call("POST", "/v3/profitsharing/orders/unfreeze", {
                "transaction_id": request.channel_transaction_id, "out_order_no": request.out_finish_no,
                "description": request.description[:80]})
        except ChannelRefused as exc:
            refusal = self._refused(exc)
            # 分账金额不足 is also what an order WeChat Pay unfroze itself (its freeze ran out) answers
            return await self._released_anyway(request, refusal) if exc.code == "NOT_ENOUGH" else refusal
        return self._unfrozen(data)

    async def query_split_finish(self, request: SplitFinish) -> SplitResult:
        path = (f"/v3/profitsharing/orders/{quote(request.out_finish_no)}"
                f"?transaction_id={quote(request.channel_transaction_id or '')}")
        try:
            _, data = await self._call("GET", path)
        except ChannelRefused as exc:
            found = self._refused(exc, query=True)
            # our unfreeze never reached it: an order that holds nothing frozen any more was released anyway
            return await self._released_anyway(request, found) if found.unheard else found
        return self._unfrozen(data)

    async def _released_anyway(self, request: SplitFinish, otherwise: SplitResult) -> SplitResult:
        """查询剩余待分金额: an order whose unsplit_amount is 0 holds nothing frozen, so what the finish
        wanted holds (the merchant has the rest), whoever unfroze it; anything left: `otherwise`."""
        try:
            _, data = await self._call(
                "GET", f"/v3/profitsharing/transactions/{quote(request.channel_transaction_id or '')}/amounts")
        except ChannelRefused:
            return otherwise
        return SplitResult(Outcome.SUCCEEDED) if data.get("unsplit_amount") == 0 else otherwise

    # ---- statements ----

    async def download_statement(self, business_date: date) -> bytes:
        """The trade bill (ALL) for one day: ask for its download URL, fetch it signed (gzipped), check the
        hash WeChat Pay gives, which is over the bill itself (原始账单, gzip需要解压缩的摘要值)."""
        return await self._bill(f"/v3/bill/tradebill?bill_date={business_date.isoformat()}&bill_type=ALL&tar_type=GZIP")

    async def download_split_statement(self, business_date: date) -> bytes:
        """The profit-sharing bill (申请分账账单) of one day, fetched and checked as the trade bill is."""
        return await self._bill(f"/v3/profitsharing/bills?bill_date={business_date.isoformat()}&tar_type=GZIP")

    def parse_split_statement(self, content: bytes) -> list[SplitLine]:
        return parse_split_bill(content)

    async def _bill(self, request_path: str) -> bytes:
        s = self.settings
        try:
            _, info = await self._call("GET", request_path)
        except ChannelRefused as exc:
            raise StatementUnavailable(f"{exc.code}: {exc.message}") from None
        url = httpx.URL(info["download_url"])
        path = url.raw_path.decode()
        response = await self.ctx.http.get(url, headers={"Authorization": wire.authorization(
            s.mchid, s.merchant_serial_no, s.merchant_private_key, "GET", path, b"", self.ctx.clock.timestamp())})
        response.raise_for_status()
        content = response.content
        if content[:2] == b"\x1f\x8b":
            try:
                content = gzip.decompress(content)
            except (OSError, EOFError) as exc:
                raise StatementUnavailable(f"the downloaded bill does not gunzip: {exc}") from None
        if info.get("hash_type") != "SHA1" or hashlib.sha1(content).hexdigest() != info.get("hash_value"):
            raise StatementUnavailable("the downloaded bill does not match the hash WeChat Pay gave")
        return content

    def parse_statement(self, content: bytes) -> ParsedStatement:
        return parse_tradebill(content)

    def read_statement(self, path: Path) -> ParsedStatement:
        return parse_tradebill(path)

    def read_statement_pieces(self, path: Path) -> Iterator[ParsedStatement]:
        return tradebill_pieces(path)

    # ---- callbacks ----

    async def parse_notification(self, notification: InboundNotification) -> list[ChannelEvent]:
        s = self.settings
        try:
            wire.verify_headers(s.platform_keys, notification.headers, notification.body, self.ctx.clock.timestamp())
            envelope = json.loads(notification.body)
            resource = json.loads(wire.decrypt_resource(s.apiv3_key, envelope["resource"]))
        except wire.WireError as exc:
            raise NotificationRejected(exc.reason, str(exc)) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise NotificationRejected("malformed_body", f"the callback is not a WeChat Pay notification: {exc}") from None
        if resource.get("mchid") != s.mchid or ("appid" in resource and resource["appid"] not in (s.appid, s.app_appid)):
            raise NotificationRejected("wrong_merchant", "the callback is for another mchid or appid")
        event_type = str(envelope.get("event_type", ""))
        try:
            if event_type.startswith("REFUND."):   # REFUND.SUCCESS, REFUND.ABNORMAL, REFUND.CLOSED
                row = REFUND_STATUS[resource["refund_status"]]
                return [ChannelEvent("refund", resource["out_trade_no"], row.outcome,
                                     amount=int(resource["amount"]["refund"]), out_refund_no=resource["out_refund_no"],
                                     channel_refund_id=resource.get("refund_id"), attention=row.attention,
                                     error_code=None if row.outcome is Outcome.SUCCEEDED else resource["refund_status"])]
            if event_type == "TRANSACTION.SUCCESS":
                result = self._transaction(resource)
                return [ChannelEvent("payment", resource["out_trade_no"], result.outcome, amount=int(result.amount),
                                     currency=result.currency, channel_transaction_id=result.channel_transaction_id,
                                     discounts=result.discounts, payer_amount=result.payer_amount,
                                     settled_amount=result.settled_amount)]
        except (KeyError, TypeError, ValueError) as exc:
            raise NotificationRejected("malformed_body", f"the resource lacks {exc}") from None
        return []  # an event type we do not act on: acknowledged, nothing applied

    @classmethod
    def standalone_simulator(cls, workdir: Any, url: str) -> tuple[Any, str]:
        """For `paymux simulate wechatpay`: the simulator app and the account block to configure."""
        from plugins.wechatpay.simulator import standalone

        return standalone(workdir, url)

    def acknowledge(self, accepted: bool, message: str = "") -> Acknowledgement:
        if accepted:
            return Acknowledgement(204)
        body = json.dumps({"code": "FAIL", "message": message[:200]}).encode()
        return Acknowledgement(400, body, "application/json")


def _row(table: Mapping[str, Row], state: Any) -> Row:
    """A state's row; one WeChat Pay has not documented is unknown (asked about again)."""
    return table.get(state) or Row(Outcome.UNKNOWN, f"undocumented state {state!r}")


def promotions(details: list[Mapping[str, Any]]) -> tuple[Discount, ...]:
    """A paid order's promotion_detail: each coupon with what WeChat Pay, the merchant and others put in.
    A NOCASH (免充值, v2: DISCOUNT) coupon is not settled: WeChat Pay pays the order less it (应结订单金额);
    a CASH (充值, v2: COUPON) one is paid in full from its funders' prefunded budget. The contributions
    are optional fields: when none is given, a NOCASH coupon is the merchant's (it is kept out of what
    the merchant is paid) and a CASH one someone else's."""
    discounts = []
    for p in details:
        amount, unsettled = int(p["amount"]), p.get("type") in ("NOCASH", "DISCOUNT")
        funded = [int(p.get(k) or 0) for k in ("merchant_contribute", "wechatpay_contribute", "other_contribute")]
        if not any(funded):
            funded = [amount, 0, 0] if unsettled else [0, 0, amount]
        discounts.append(Discount(amount, *funded, unsettled=amount if unsettled else 0,
                                  campaign=p.get("stock_id") or p.get("activity_id"), name=str(p.get("name") or "")))
    return tuple(discounts)
