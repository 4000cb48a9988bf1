"""WeChat Pay APIv3 as a paymux channel: native, jsapi, h5 and app payments; query, close, refunds;
profit sharing (分账) and its returns.

Profit sharing: a payment to be split is created with settle_info.profit_sharing (WeChat Pay then
holds its money for splitting); each split adds its receiver (/v3/profitsharing/receivers/add,
name encrypted) and is one profit-sharing order (out_order_no = out_split_no) with that receiver;
a return (/v3/profitsharing/return-orders) takes money back from a MERCHANT_ID receiver. Both are
settled by query (the janitor asks); WeChat Pay keeps what is left frozen until it is unfrozen or
30 days pass — the remainder is not unfrozen here."""
from __future__ import annotations

import gzip
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import date, timedelta, timezone
from typing import Any, Mapping
from urllib.parse import quote

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.channel import (Acknowledgement, Capability, Channel, ChannelEvent, CreatePayment, Discount,
                             InboundNotification,
                             NotificationRejected, Outcome, PaymentResult, RefundRequest, RefundResult, SettingsError,
                             ParsedStatement, SplitRequest, SplitResult, SplitReturn, StatementUnavailable)
from plugins.wechatpay import wire
from plugins.wechatpay.statement import parse_tradebill

DEFAULT_BASE_URL = "https://api.mch.weixin.qq.com"
CHINA = timezone(timedelta(hours=8))
TRADE_STATE = {"SUCCESS": Outcome.SUCCEEDED, "REFUND": Outcome.SUCCEEDED, "NOTPAY": Outcome.PENDING,
               "USERPAYING": Outcome.PENDING, "CLOSED": Outcome.CLOSED, "REVOKED": Outcome.CLOSED,
               "PAYERROR": Outcome.FAILED}
REFUND_STATUS = {"SUCCESS": Outcome.SUCCEEDED, "PROCESSING": Outcome.PENDING, "CLOSED": Outcome.FAILED,
                 "ABNORMAL": Outcome.FAILED}
SHARING_RESULT = {"PENDING": Outcome.PENDING, "SUCCESS": Outcome.SUCCEEDED, "CLOSED": Outcome.FAILED}
RETURN_RESULT = {"PROCESSING": Outcome.PENDING, "SUCCESS": Outcome.SUCCEEDED, "FAILED": Outcome.FAILED}


@dataclass(frozen=True)
class WechatPaySettings:
    mchid: str
    appid: str
    merchant_serial_no: str
    merchant_private_key: rsa.RSAPrivateKey
    apiv3_key: bytes
    platform_keys: Mapping[str, rsa.RSAPublicKey]   # serial -> key; several during a rotation
    base_url: str = DEFAULT_BASE_URL


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
                              Capability.SPLIT_RETURN})
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
        return WechatPaySettings(raw["mchid"], raw["appid"], raw["merchant_serial_no"], private_key, apiv3_key,
                                 keys, str(raw.get("base_url") or DEFAULT_BASE_URL).rstrip("/"))

    @property
    def settings(self) -> WechatPaySettings:
        return self.ctx.settings

    # ---- transport: every request signed, every answer verified ----

    async def _call(self, method: str, path: str, payload: dict[str, Any] | None = None,
                    extra_headers: Mapping[str, str] | None = None) -> tuple[int, dict]:
        s = self.settings
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Authorization": wire.authorization(s.mchid, s.merchant_serial_no, s.merchant_private_key, method,
                                                       path, body, self.ctx.clock.timestamp()),
                   "Accept": "application/json", **(extra_headers or {})}
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
        payload: dict[str, Any] = {
            "appid": s.appid, "mchid": s.mchid, "description": request.subject[:127],
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
            payload["scene_info"] = {"payer_client_ip": request.metadata.get("payer_client_ip", "127.0.0.1"),
                                     "h5_info": {"type": "Wap"}}
        try:
            _, data = await self._call("POST", f"/v3/pay/transactions/{request.method}", payload)
        except ChannelRefused as exc:
            if exc.status == 400 and exc.code in ("PARAM_ERROR", "INVALID_REQUEST", "ORDER_CLOSED", "OUT_TRADE_NO_USED"):
                return PaymentResult(Outcome.FAILED, error_code=exc.code, error_message=exc.message)
            return PaymentResult(Outcome.UNKNOWN, error_code=exc.code, error_message=exc.message)
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
        return {"type": "app", "params": {
            "appid": s.appid, "partnerid": s.mchid, "prepayid": prepay_id, "package": "Sign=WXPay",
            "noncestr": nonce, "timestamp": timestamp,
            "sign": wire.rsa_sign(s.merchant_private_key, wire.message(s.appid, timestamp, nonce, prepay_id))}}

    def _transaction(self, data: Mapping[str, Any]) -> PaymentResult:
        amount = data.get("amount") or {}
        outcome = TRADE_STATE.get(data.get("trade_state"), Outcome.UNKNOWN)
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

    def _refund(self, data: Mapping[str, Any]) -> RefundResult:
        return RefundResult(REFUND_STATUS.get(data.get("status") or data.get("refund_status"), Outcome.UNKNOWN),
                            channel_refund_id=data.get("refund_id"), amount=(data.get("amount") or {}).get("refund"))

    async def refund(self, request: RefundRequest) -> RefundResult:
        payload = {"out_trade_no": request.out_trade_no, "out_refund_no": request.out_refund_no,
                   "notify_url": self.ctx.notify_url,
                   "amount": {"refund": request.amount, "total": request.total_amount, "currency": request.currency}}
        if request.reason:
            payload["reason"] = request.reason[:80]
        try:
            _, data = await self._call("POST", "/v3/refund/domestic/refunds", payload)
        except ChannelRefused as exc:
            declined = exc.code in ("NOT_ENOUGH", "INVALID_REQUEST", "PARAM_ERROR", "RESOURCE_NOT_EXISTS")
            return RefundResult(Outcome.FAILED if declined else Outcome.UNKNOWN, error_code=exc.code,
                                error_message=exc.message)
        return self._refund(data)

    async def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundResult:
        try:
            _, data = await self._call("GET", f"/v3/refund/domestic/refunds/{quote(out_refund_no)}")
        except ChannelRefused as exc:
            return RefundResult(Outcome.UNKNOWN, error_code=exc.code, error_message=exc.message)
        return self._refund(data)

    # ---- profit sharing ----

    def _encrypted(self, text: str) -> tuple[str, dict[str, str]]:
        serial, key = next(iter(self.settings.platform_keys.items()))
        return wire.encrypt_sensitive(key, text), {"Wechatpay-Serial": serial}

    @staticmethod
    def _receiver_type(receiver_type: str) -> str:
        return "MERCHANT_ID" if receiver_type == "merchant" else "PERSONAL_OPENID"

    @staticmethod
    def _sharing(data: Mapping[str, Any]) -> SplitResult:
        receivers = data.get("receivers") or [{}]
        result = receivers[0].get("result")
        outcome = SHARING_RESULT.get(result, Outcome.UNKNOWN)
        return SplitResult(outcome, data.get("order_id"),
                           error_code=receivers[0].get("fail_reason") if outcome is Outcome.FAILED else None)

    @staticmethod
    def _refused(exc: ChannelRefused, query: bool = False) -> SplitResult:
        """A refused split or return: a 400 about the request is a decline; a query's 404 means WeChat
        Pay never heard of it; anything else is unknown."""
        if query:
            return SplitResult(Outcome.UNKNOWN, error_code=exc.code, error_message=exc.message,
                               unheard=exc.code == "RESOURCE_NOT_EXISTS")
        declined = exc.status == 400 and exc.code in ("INVALID_REQUEST", "PARAM_ERROR", "NOT_ENOUGH")
        return SplitResult(Outcome.FAILED if declined else Outcome.UNKNOWN, error_code=exc.code,
                           error_message=exc.message)

    async def split(self, request: SplitRequest) -> SplitResult:
        s = self.settings
        kind = self._receiver_type(request.receiver_type)
        name, headers = self._encrypted(request.receiver_name)
        try:
            await self._call("POST", "/v3/profitsharing/receivers/add", {
                "appid": s.appid, "type": kind, "account": request.receiver_account, "name": name,
                "relation_type": "PARTNER"}, headers)
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
        outcome = RETURN_RESULT.get(data.get("result"), Outcome.UNKNOWN)
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

    # ---- statements ----

    async def download_statement(self, business_date: date) -> bytes:
        """The trade bill (ALL) for one day: ask for its download URL, fetch it signed, check its hash."""
        s = self.settings
        try:
            _, info = await self._call("GET", f"/v3/bill/tradebill?bill_date={business_date.isoformat()}&bill_type=ALL")
        except ChannelRefused as exc:
            raise StatementUnavailable(f"{exc.code}: {exc.message}") from None
        url = httpx.URL(info["download_url"])
        path = url.raw_path.decode()
        response = await self.ctx.http.get(url, headers={"Authorization": wire.authorization(
            s.mchid, s.merchant_serial_no, s.merchant_private_key, "GET", path, b"", self.ctx.clock.timestamp())})
        response.raise_for_status()
        content = response.content
        if info.get("hash_type") != "SHA1" or hashlib.sha1(content).hexdigest() != info.get("hash_value"):
            raise StatementUnavailable("the downloaded bill does not match the hash WeChat Pay gave")
        return gzip.decompress(content) if content[:2] == b"\x1f\x8b" else content

    def parse_statement(self, content: bytes) -> ParsedStatement:
        return parse_tradebill(content)

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
        if resource.get("mchid") != s.mchid or ("appid" in resource and resource["appid"] != s.appid):
            raise NotificationRejected("wrong_merchant", "the callback is for another mchid or appid")
        event_type = str(envelope.get("event_type", ""))
        try:
            if event_type.startswith("REFUND."):
                return [ChannelEvent("refund", resource["out_trade_no"], REFUND_STATUS[resource["refund_status"]],
                                     amount=int(resource["amount"]["refund"]), out_refund_no=resource["out_refund_no"],
                                     channel_refund_id=resource.get("refund_id"))]
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
