"""WeChat Pay's side of APIv3, for tests and local development: it verifies the merchant's request
signatures, signs its answers and callbacks with its own platform key, encrypts callback resources
with the APIv3 key, keeps orders and refunds, and lets a test or a person "pay" an order.

Control endpoints (not WeChat Pay's): POST /sim/orders/{out_trade_no}/pay {"outcome": "success"|"fail"}
and POST /sim/faults {callback_mode, server_errors, slow_ms, bad_signature, rotate_key}.
"""
from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from plugins.simulation import CallbackSender, private_folder, write_private
from plugins.wechatpay import wire

CHINA = timezone(timedelta(hours=8))
BILL_HEADER = ["交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号", "用户标识", "交易类型",
               "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额", "微信退款单号", "商户退款单号", "退款金额",
               "充值券退款金额", "退款类型", "退款状态", "商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额",
               "费率备注"]



@dataclass
class Faults:
    callback_mode: str = "normal"     # normal | drop | duplicate | delay | reorder
    callback_delay_ms: int = 300
    server_errors: int = 0            # answer this many next API calls with a 500
    slow_ms: int = 0                  # answer every API call this much later
    bad_signature: bool = False       # sign answers and callbacks with a key nobody trusts
    corrupt_bills: bool = False       # serve bill files that do not match their hash


@dataclass
class SimOrder:
    out_trade_no: str
    method: str
    total: int
    currency: str
    description: str
    notify_url: str
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: str | None = None
    created: float = field(default_factory=time.time)
    profit_sharing: bool = False    # settle_info.profit_sharing: its money is held for splitting
    promotion_detail: list[dict[str, Any]] = field(default_factory=list)   # coupons the payer used

    def nocash(self) -> int:
        """What WeChat Pay keeps of the order: its 免充值 (NOCASH) coupons; it settles the rest."""
        return sum(p["amount"] for p in self.promotion_detail if p["type"] == "NOCASH")


class WechatPaySimulator:
    def __init__(self, *, mchid: str, appid: str, apiv3_key: str, merchant_public_key: rsa.RSAPublicKey,
                 merchant_serial_no: str, platform_key: rsa.RSAPrivateKey | None = None,
                 platform_serial: str = "PUB_KEY_ID_0001", faults: Faults | None = None) -> None:
        self.mchid, self.appid, self.apiv3_key = mchid, appid, apiv3_key.encode()
        self.merchant_public_key, self.merchant_serial_no = merchant_public_key, merchant_serial_no
        self.platform_key = platform_key or wire.new_key()
        self.platform_serial = platform_serial
        self.faults = faults or Faults()
        self.orders: dict[str, SimOrder] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.receivers: dict[tuple[str, str], str] = {}           # (type, account) -> name, as added
        self.sharing: dict[str, dict[str, Any]] = {}             # out_order_no -> profit-sharing order
        self.returns: dict[str, dict[str, Any]] = {}             # out_return_no -> return order
        self.held: list[tuple[str, dict]] = []      # callbacks held back for the reorder fault
        self.bills: dict[str, bytes] = {}
        self.sender = CallbackSender()
        self.app = Starlette(routes=[
            Route("/v3/pay/transactions/{method}", self.create, methods=["POST"]),
            Route("/v3/pay/transactions/out-trade-no/{out_trade_no}", self.query, methods=["GET"]),
            Route("/v3/pay/transactions/out-trade-no/{out_trade_no}/close", self.close, methods=["POST"]),
            Route("/v3/refund/domestic/refunds", self.refund, methods=["POST"]),
            Route("/v3/refund/domestic/refunds/{out_refund_no}", self.refund_query, methods=["GET"]),
            Route("/v3/bill/tradebill", self.tradebill, methods=["GET"]),
            Route("/v3/billdownload/file", self.billdownload, methods=["GET"]),
            Route("/v3/profitsharing/receivers/add", self.add_receiver, methods=["POST"]),
            Route("/v3/profitsharing/orders", self.share, methods=["POST"]),
            Route("/v3/profitsharing/orders/{out_order_no}", self.share_query, methods=["GET"]),
            Route("/v3/profitsharing/return-orders", self.share_return, methods=["POST"]),
            Route("/v3/profitsharing/return-orders/{out_return_no}", self.share_return_query, methods=["GET"]),
            Route("/sim/orders/{out_trade_no}/pay", self.control_pay, methods=["POST"]),
            Route("/sim/faults", self.control_faults, methods=["POST"]),
        ])

    # ---- keys ----

    @property
    def platform_public_pem(self) -> str:
        return wire.public_pem(self.platform_key.public_key())

    def rotate_key(self) -> tuple[str, str]:
        """Start signing with a new platform key; returns (serial, public PEM) for the config."""
        self.platform_key = wire.new_key()
        self.platform_serial = f"PUB_KEY_ID_{secrets.token_hex(4).upper()}"
        return self.platform_serial, self.platform_public_pem

    def _signing_key(self) -> rsa.RSAPrivateKey:
        return wire.new_key() if self.faults.bad_signature else self.platform_key

    # ---- answers ----

    def _answer(self, status: int, data: dict | None = None) -> Response:
        body = b"" if data is None else json.dumps(data, ensure_ascii=False).encode()
        headers = wire.signed_headers(self._signing_key(), self.platform_serial, body, int(time.time()))
        return Response(body, status, headers=headers, media_type="application/json" if body else None)

    def _error(self, status: int, code: str, message: str) -> Response:
        return self._answer(status, {"code": code, "message": message})

    async def _admit(self, request: Request) -> tuple[dict | None, Response | None]:
        """Faults first, then the merchant's signature. Returns (the JSON body, or an error answer)."""
        if self.faults.slow_ms:
            await asyncio.sleep(self.faults.slow_ms / 1000)
        if self.faults.server_errors > 0:
            self.faults.server_errors -= 1
            return None, Response(b'{"code":"SYSTEM_ERROR","message":"simulated"}', 500)
        body = await request.body()
        raw = request.scope.get("raw_path", request.url.path.encode()).decode()
        if request.scope.get("query_string"):
            raw += "?" + request.scope["query_string"].decode()
        try:
            auth = wire.parse_authorization(request.headers.get("authorization"))
        except wire.WireError as exc:
            return None, self._error(401, "SIGN_ERROR", str(exc))
        if auth["mchid"] != self.mchid or auth["serial_no"] != self.merchant_serial_no:
            return None, self._error(401, "SIGN_ERROR", "mchid or serial_no is not the merchant's")
        signed = wire.message(request.method, raw, auth["timestamp"], auth["nonce_str"], body)
        if abs(time.time() - int(auth["timestamp"] or 0)) > wire.WINDOW_SECONDS or \
                not wire.rsa_verify(self.merchant_public_key, signed, auth["signature"]):
            return None, self._error(401, "SIGN_ERROR", "signature does not verify")
        try:
            return (json.loads(body) if body else {}), None
        except ValueError:
            return None, self._error(400, "PARAM_ERROR", "body is not JSON")

    # ---- payments ----

    def _view(self, order: SimOrder) -> dict[str, Any]:
        coupons = sum(p["amount"] for p in order.promotion_detail)
        view = {"appid": self.appid, "mchid": self.mchid, "out_trade_no": order.out_trade_no,
                "trade_state": order.trade_state, "trade_type": order.method.upper(),
                "amount": {"total": order.total, "currency": order.currency,
                           "payer_total": order.total - coupons if order.transaction_id else 0,
                           "payer_currency": order.currency}}
        if order.transaction_id:
            view.update(transaction_id=order.transaction_id, success_time=order.success_time)
        if order.promotion_detail:
            view["promotion_detail"] = order.promotion_detail
        return view

    async def create(self, request: Request) -> Response:
        data, error = await self._admit(request)
        if error:
            return error
        method = request.path_params["method"]
        try:
            out_trade_no, total = data["out_trade_no"], data["amount"]["total"]
            currency = data["amount"].get("currency", "CNY")
            assert data["mchid"] == self.mchid and data["appid"] == self.appid and isinstance(total, int) and total > 0
            assert method in ("native", "jsapi", "h5", "app") and data["notify_url"].startswith("http")
            if method == "jsapi":
                assert data["payer"]["openid"]
        except (KeyError, TypeError, AssertionError):
            return self._error(400, "PARAM_ERROR", "the order is malformed")
        existing = self.orders.get(out_trade_no)
        if existing and existing.trade_state != "NOTPAY":
            return self._error(400, "ORDER_CLOSED" if existing.trade_state == "CLOSED" else "OUT_TRADE_NO_USED",
                               f"order is {existing.trade_state}")
        self.orders[out_trade_no] = SimOrder(out_trade_no, method, total, currency, data.get("description", ""),
                                             data["notify_url"],
                                             profit_sharing=bool((data.get("settle_info") or {}).get("profit_sharing")))
        prepay = "wx" + secrets.token_hex(14)
        if method == "native":
            return self._answer(200, {"code_url": f"weixin://wxpay/bizpayurl?pr={prepay[:12]}"})
        if method == "h5":
            return self._answer(200, {"h5_url": f"https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id={prepay}"})
        return self._answer(200, {"prepay_id": prepay})

    async def query(self, request: Request) -> Response:
        data, error = await self._admit(request)
        if error:
            return error
        if request.query_params.get("mchid") != self.mchid:
            return self._error(400, "PARAM_ERROR", "mchid is required")
        order = self.orders.get(request.path_params["out_trade_no"])
        return self._answer(200, self._view(order)) if order else self._error(404, "ORDER_NOT_EXIST", "no such order")

    async def close(self, request: Request) -> Response:
        data, error = await self._admit(request)
        if error:
            return error
        order = self.orders.get(request.path_params["out_trade_no"])
        if order is None:
            return self._error(404, "ORDER_NOT_EXIST", "no such order")
        if order.trade_state in ("SUCCESS", "REFUND"):
            return self._error(400, "ORDER_PAID", "the order is paid")
        order.trade_state = "CLOSED"
        return self._answer(204)

    # ---- the payer ----

    async def control_pay(self, request: Request) -> Response:
        order = self.orders.get(request.path_params["out_trade_no"])
        data = await request.json()
        outcome = data.get("outcome", "success")
        if order is None:
            return Response(b'{"error":"no such order"}', 404, media_type="application/json")
        if order.trade_state != "NOTPAY":
            return Response(json.dumps({"error": f"order is {order.trade_state}"}).encode(), 409,
                            media_type="application/json")
        if outcome == "fail":
            order.trade_state = "PAYERROR"  # WeChat Pay sends no callback for this: the merchant must query
        else:
            coupons = [_coupon(p, order.currency) for p in data.get("promotion_detail") or []]
            if sum(c["amount"] for c in coupons) > order.total:
                return Response(b'{"error":"coupons exceed the order"}', 400, media_type="application/json")
            order.promotion_detail = coupons
            order.trade_state = "SUCCESS"
            order.transaction_id = "42000" + secrets.token_hex(12)
            order.success_time = datetime.now(CHINA).isoformat(timespec="seconds")
            await self._callback(order.notify_url, "TRANSACTION.SUCCESS", "transaction", "支付成功", self._view(order))
        return Response(json.dumps(self._view(order)).encode(), 200, media_type="application/json")

    async def control_faults(self, request: Request) -> Response:
        data = await request.json()
        answer: dict[str, Any] = {}
        if data.pop("rotate_key", False):
            serial, pem = self.rotate_key()
            answer.update(platform_public_key_id=serial, platform_public_key=pem)
        for key, value in data.items():
            if not hasattr(self.faults, key):
                return Response(json.dumps({"error": f"unknown fault {key}"}).encode(), 400)
            setattr(self.faults, key, value)
        if self.faults.callback_mode != "reorder":
            await self._release_held()
        return Response(json.dumps(answer).encode(), 200, media_type="application/json")

    # ---- refunds ----

    async def refund(self, request: Request) -> Response:
        data, error = await self._admit(request)
        if error:
            return error
        try:
            order = self.orders[data["out_trade_no"]]
            out_refund_no, amount = data["out_refund_no"], data["amount"]["refund"]
            assert isinstance(amount, int) and amount > 0 and data["amount"]["total"] == order.total
        except (KeyError, TypeError, AssertionError):
            return self._error(400, "PARAM_ERROR", "the refund is malformed")
        if out_refund_no in self.refunds:  # the same refund asked again
            return self._answer(200, self.refunds[out_refund_no])
        if order.trade_state not in ("SUCCESS", "REFUND"):
            return self._error(400, "INVALID_REQUEST", "the order is not paid")
        refunded = sum(r["amount"]["refund"] for r in self.refunds.values()
                       if r["out_trade_no"] == order.out_trade_no and r["status"] != "CLOSED")
        if refunded + self.shared(order) + amount > order.total:
            return self._error(400, "NOT_ENOUGH", "refund exceeds what is left (receivers hold what was shared)")
        refund = {"refund_id": "50300" + secrets.token_hex(12), "out_refund_no": out_refund_no,
                  "transaction_id": order.transaction_id, "out_trade_no": order.out_trade_no, "channel": "ORIGINAL",
                  "status": "PROCESSING", "create_time": datetime.now(CHINA).isoformat(timespec="seconds"),
                  "amount": {"refund": amount, "total": order.total, "payer_refund": amount,
                             "payer_total": order.total, "currency": order.currency}}
        self.refunds[out_refund_no] = refund
        order.trade_state = "REFUND"
        self.sender.background(self._complete_refund(refund, data.get("notify_url") or order.notify_url))
        return self._answer(200, refund)

    async def _complete_refund(self, refund: dict[str, Any], notify_url: str) -> None:
        await asyncio.sleep(0.05)
        refund["status"] = "SUCCESS"
        resource = {"mchid": self.mchid, "out_trade_no": refund["out_trade_no"],
                    "transaction_id": refund["transaction_id"], "out_refund_no": refund["out_refund_no"],
                    "refund_id": refund["refund_id"], "refund_status": "SUCCESS",
                    "amount": {k: refund["amount"][k] for k in ("total", "refund", "payer_total", "payer_refund")}}
        await self._callback(notify_url, "REFUND.SUCCESS", "refund", "退款成功", resource)

    async def refund_query(self, request: Request) -> Response:
        data, error = await self._admit(request)
        if error:
            return error
        refund = self.refunds.get(request.path_params["out_refund_no"])
        return self._answer(200, refund) if refund else self._error(404, "RESOURCE_NOT_EXISTS", "no such refund")

    # ---- profit sharing ----

    def shared(self, order: SimOrder) -> int:
        """What receivers hold of an order: shares not closed, less what was returned."""
        total = 0
        for share in self.sharing.values():
            if share["transaction_id"] == order.transaction_id and share["receivers"][0]["result"] != "CLOSED":
                back = sum(r["amount"] for r in self.returns.values()
                           if r["out_order_no"] == share["out_order_no"] and r["result"] == "SUCCESS")
                total += share["receivers"][0]["amount"] - back
        return total

    async def add_receiver(self, request: Request) -> Response:
        data, error = await self._admit(request)
        if error:
            return error
        if request.headers.get("wechatpay-serial") != self.platform_serial:
            return self._error(400, "PARAM_ERROR", "Wechatpay-Serial must name the platform key that encrypted name")
        try:
            name = wire.decrypt_sensitive(self.platform_key, data["name"])
            kind, account = data["type"], data["account"]
            assert kind in ("MERCHANT_ID", "PERSONAL_OPENID") and account and data["appid"] == self.appid
        except (KeyError, ValueError, TypeError, AssertionError):
            return self._error(400, "PARAM_ERROR", "the receiver is malformed or its name does not decrypt")
        self.receivers[(kind, account)] = name
        return self._answer(200, {"type": kind, "account": account, "relation_type": data.get("relation_type")})

    async def share(self, request: Request) -> Response:
        data, error = await self._admit(request)
        if error:
            return error
        try:
            out_order_no, [receiver] = data["out_order_no"], data["receivers"]
            amount, kind, account = receiver["amount"], receiver["type"], receiver["account"]
            assert isinstance(amount, int) and amount > 0
        except (KeyError, ValueError, TypeError, AssertionError):
            return self._error(400, "PARAM_ERROR", "the profit-sharing order is malformed (one receiver here)")
        if out_order_no in self.sharing:   # the same order asked again
            return self._answer(200, self.sharing[out_order_no])
        order = next((o for o in self.orders.values() if o.transaction_id == data.get("transaction_id")), None)
        if order is None or order.trade_state not in ("SUCCESS", "REFUND"):
            return self._error(400, "INVALID_REQUEST", "the order is not paid")
        if not order.profit_sharing:
            return self._error(400, "INVALID_REQUEST", "订单不支持分账: the order was not created with profit_sharing")
        if (kind, account) not in self.receivers:
            return self._error(400, "INVALID_REQUEST", "分账接收方未添加: add the receiver first")
        refunded = sum(r["amount"]["refund"] for r in self.refunds.values()
                       if r["out_trade_no"] == order.out_trade_no and r["status"] != "CLOSED")
        if refunded + self.shared(order) + amount > order.total:
            return self._error(400, "NOT_ENOUGH", "more than is left of the order")
        share = self.sharing[out_order_no] = {
            "transaction_id": order.transaction_id, "out_order_no": out_order_no,
            "order_id": "30000" + secrets.token_hex(12), "state": "PROCESSING",
            "receivers": [{"type": kind, "account": account, "amount": amount, "result": "PENDING",
                           "description": receiver.get("description", ""), "detail_id": "36" + secrets.token_hex(12),
                           "create_time": datetime.now(CHINA).isoformat(timespec="seconds")}]}
        self.sender.background(self._finish_share(share))
        return self._answer(200, share)

    async def _finish_share(self, share: dict[str, Any]) -> None:
        await asyncio.sleep(0.05)
        share["state"] = "FINISHED"
        share["receivers"][0].update(result="SUCCESS", finish_time=datetime.now(CHINA).isoformat(timespec="seconds"))

    async def share_query(self, request: Request) -> Response:
        data, error = await self._admit(request)
        if error:
            return error
        share = self.sharing.get(request.path_params["out_order_no"])
        if share is None or share["transaction_id"] != request.query_params.get("transaction_id"):
            return self._error(404, "RESOURCE_NOT_EXISTS", "no such profit-sharing order")
        return self._answer(200, share)

    async def share_return(self, request: Request) -> Response:
        data, error = await self._admit(request)
        if error:
            return error
        try:
            number, amount, mchid = data["out_return_no"], data["amount"], data["return_mchid"]
            share = self.sharing[data["out_order_no"]]
            assert isinstance(amount, int) and amount > 0
        except (KeyError, TypeError, AssertionError):
            return self._error(400, "PARAM_ERROR", "the return is malformed or its order unknown")
        if number in self.returns:
            return self._answer(200, self.returns[number])
        receiver = share["receivers"][0]
        back = sum(r["amount"] for r in self.returns.values()
                   if r["out_order_no"] == share["out_order_no"] and r["result"] == "SUCCESS")
        if receiver["result"] != "SUCCESS" or receiver["type"] != "MERCHANT_ID" or receiver["account"] != mchid or \
                back + amount > receiver["amount"]:
            return self._error(400, "INVALID_REQUEST", "nothing of that receiver's share to take back")
        self.returns[number] = {"order_id": share["order_id"], "out_order_no": share["out_order_no"],
                                "out_return_no": number, "return_id": "31" + secrets.token_hex(12),
                                "return_mchid": mchid, "amount": amount, "result": "SUCCESS",
                                "description": data.get("description", ""),
                                "finish_time": datetime.now(CHINA).isoformat(timespec="seconds")}
        return self._answer(200, self.returns[number])

    async def share_return_query(self, request: Request) -> Response:
        data, error = await self._admit(request)
        if error:
            return error
        found = self.returns.get(request.path_params["out_return_no"])
        if found is None or found["out_order_no"] != request.query_params.get("out_order_no"):
            return self._error(404, "RESOURCE_NOT_EXISTS", "no such return")
        return self._answer(200, found)

    # ---- statements ----

    fee_rate_bps = 60   # what this WeChat Pay charges, shown per row as 手续费 and 费率

    def bill(self, day: str) -> bytes:
        """The trade bill of one day (Beijing time), in WeChat Pay's format: a header, one row per
        payment or refund with every cell prefixed by a backtick, then the totals."""
        rows, paid, refunded, fees, ordered, asked = [], 0, 0, Decimal(0), 0, 0
        yuan = lambda fen: f"{Decimal(fen) / 100:.2f}"  # noqa: E731
        rate = f"{Decimal(self.fee_rate_bps) / 100:.2f}%"
        for order in self.orders.values():
            if not order.success_time or not order.success_time.startswith(day):
                continue
            fee = Decimal(order.total) * self.fee_rate_bps / 1_000_000
            rows.append([order.success_time.replace("T", " ")[:19], self.appid, self.mchid, "0", "",
                         order.transaction_id, order.out_trade_no, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
                         order.method.upper(), "SUCCESS", "OTHERS", order.currency, yuan(order.total - order.nocash()),
                         yuan(sum(p["amount"] for p in order.promotion_detail)), "0",
                         "0", "0.00", "0.00", "", "", order.description, "", f"{fee:.5f}", rate, yuan(order.total),
                         "0.00", ""])
            paid, fees, ordered = paid + order.total - order.nocash(), fees + fee, ordered + order.total
        for refund in self.refunds.values():
            if refund["status"] != "SUCCESS" or not refund["create_time"].startswith(day):
                continue
            order = self.orders[refund["out_trade_no"]]
            amount = refund["amount"]["refund"]
            fee = -Decimal(amount) * self.fee_rate_bps / 1_000_000
            rows.append([refund["create_time"].replace("T", " ")[:19], self.appid, self.mchid, "0", "",
                         order.transaction_id, order.out_trade_no, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
                         order.method.upper(), "REFUND", "OTHERS", order.currency, "0.00", "0.00",
                         refund["refund_id"], refund["out_refund_no"], yuan(amount), "0.00", "ORIGINAL", "SUCCESS",
                         order.description, "", f"{fee:.5f}", rate, yuan(order.total), yuan(amount), ""])
            refunded, fees, asked = refunded + amount, fees + fee, asked + amount
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(BILL_HEADER)
        writer.writerows([["`" + cell for cell in row] for row in rows])
        writer.writerow(["总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额", "订单总金额",
                         "申请退款总金额"])
        writer.writerow(["`" + cell for cell in (str(len(rows)), yuan(paid), yuan(refunded), "0.00", f"{fees:.5f}",
                                                 yuan(ordered), yuan(asked))])
        return out.getvalue().encode("utf-8")

    async def tradebill(self, request: Request) -> Response:
        data, error = await self._admit(request)
        if error:
            return error
        day = request.query_params.get("bill_date", "")
        if request.query_params.get("bill_type", "ALL") != "ALL" or len(day) != 10:
            return self._error(400, "PARAM_ERROR", "bill_date (yyyy-MM-dd) and bill_type=ALL")
        content = self.bill(day)
        if content.count(b"\n") <= 3:
            return self._error(400, "NO_STATEMENT_EXIST", "no bill for that day")
        token = secrets.token_urlsafe(16)
        self.bills[token] = content
        return self._answer(200, {"hash_type": "SHA1", "hash_value": hashlib.sha1(content).hexdigest(),
                                  "download_url": f"{str(request.base_url).rstrip('/')}/v3/billdownload/file?token={token}"})

    async def billdownload(self, request: Request) -> Response:
        data, error = await self._admit(request)
        if error:
            return error
        content = self.bills.get(request.query_params.get("token", ""))
        if content is None:
            return self._error(404, "RESOURCE_NOT_EXISTS", "no such bill")
        if self.faults.corrupt_bills:
            content = content.replace(b"SUCCESS", b"SUCCES5")
        return Response(content, 200, media_type="text/plain; charset=utf-8")  # files are not signed

    # ---- callbacks, shaped by the faults ----

    def envelope(self, event_type: str, original_type: str, summary: str, resource: dict[str, Any]) -> bytes:
        encrypted = wire.encrypt_resource(self.apiv3_key, json.dumps(resource, ensure_ascii=False).encode(),
                                          original_type, original_type)
        return json.dumps({"id": secrets.token_hex(18), "create_time": datetime.now(CHINA).isoformat(
            timespec="seconds"), "resource_type": "encrypt-resource", "event_type": event_type, "summary": summary,
            "resource": encrypted}, ensure_ascii=False).encode()

    async def _callback(self, url: str, event_type: str, original_type: str, summary: str, resource: dict) -> None:
        body = self.envelope(event_type, original_type, summary, resource)
        mode = self.faults.callback_mode
        if mode == "drop":
            return
        if mode == "reorder":  # hold it; the next one overtakes it
            self.held.append((url, {"body": body}))
            if len(self.held) >= 2:
                await self._release_held()
            return
        if mode == "delay":
            self.sender.background(self._deliver(url, body, self.faults.callback_delay_ms / 1000))
            return
        await self._deliver(url, body)
        if mode == "duplicate":
            await self._deliver(url, body)

    async def _release_held(self) -> None:
        held, self.held = self.held, []
        for url, item in reversed(held):
            await self._deliver(url, item["body"])

    async def _deliver(self, url: str, body: bytes, delay: float = 0.0) -> None:
        await self.sender.deliver(
            url, body, lambda: {**wire.signed_headers(self._signing_key(), self.platform_serial, body, int(time.time())),
                                "Content-Type": "application/json"},
            lambda response: response.status_code in (200, 204), delay)


def _coupon(spec: dict[str, Any], currency: str) -> dict[str, Any]:
    """A coupon the payer uses, as promotion_detail lists it: spec gives amount, type (CASH or NOCASH),
    funded_by (wechatpay, merchant or other; NOCASH ones are the merchant's unless said), stock_id."""
    amount, kind = int(spec["amount"]), spec.get("type", "NOCASH")
    funder = spec.get("funded_by", "merchant" if kind == "NOCASH" else "wechatpay")
    return {"coupon_id": spec.get("coupon_id", str(secrets.randbelow(10**10))), "name": spec.get("name", "代金券"),
            "scope": "GLOBAL", "type": kind, "amount": amount, "stock_id": spec.get("stock_id", "9856000"),
            "wechatpay_contribute": amount if funder == "wechatpay" else 0,
            "merchant_contribute": amount if funder == "merchant" else 0,
            "other_contribute": amount if funder == "other" else 0, "currency": currency}


def standalone(workdir: Any, url: str) -> tuple[Starlette, str]:
    """A simulator whose keys live in workdir (made on first run), and the TOML account block that
    points a gateway at it."""
    from pathlib import Path

    workdir = private_folder(Path(workdir))
    files = {name: workdir / f"{name}.pem" for name in ("merchant_private_key", "platform_private_key",
                                                        "platform_public_key")}
    if not files["merchant_private_key"].exists():
        merchant, platform = wire.new_key(), wire.new_key()
        write_private(files["merchant_private_key"], wire.private_pem(merchant))
        write_private(files["platform_private_key"], wire.private_pem(platform))
        write_private(files["platform_public_key"], wire.public_pem(platform.public_key()))
        write_private(workdir / "apiv3_key", secrets.token_hex(16))
    merchant = wire.load_private_key(files["merchant_private_key"].read_text())
    apiv3_key = (workdir / "apiv3_key").read_text().strip()
    sim = WechatPaySimulator(mchid="1900000109", appid="wx8888888888888888", apiv3_key=apiv3_key,
                             merchant_public_key=merchant.public_key(), merchant_serial_no="SIM_MERCHANT_SERIAL",
                             platform_key=wire.load_private_key(files["platform_private_key"].read_text()),
                             platform_serial="PUB_KEY_ID_SIM0001")
    block = f"""[[channel_accounts]]
id = "wx"
plugin = "wechatpay"
enabled = true
[channel_accounts.settings]
mchid = "1900000109"
appid = "wx8888888888888888"
merchant_serial_no = "SIM_MERCHANT_SERIAL"
merchant_private_key = "file:{files['merchant_private_key'].resolve()}"
apiv3_key = "file:{(workdir / 'apiv3_key').resolve()}"
platform_public_key = "file:{files['platform_public_key'].resolve()}"
platform_public_key_id = "PUB_KEY_ID_SIM0001"
base_url = "{url}"
"""
    return sim.app, block
