"""WeChat Pay's side of APIv3, for tests and local development, written from WeChat Pay's documentation
(the pages plugins/wechatpay/answers.py cites), not from the plugin: it verifies the merchant's
request signatures (and that every request names a platform key in Wechatpay-Serial), signs its
answers and callbacks, encrypts callback resources with the APIv3 key, keeps orders, refunds,
profit-sharing orders, returns and what each order still holds frozen, and lets a test or a person
"pay" an order.

How it behaves as WeChat Pay does:
- A refund takes the money from the merchant at once and ends SUCCESS, or ABNORMAL (the payer's card
  refused it; the money waits until apply-abnormal-refund or the merchant platform resolves it) or
  CLOSED, as `Faults.refund_result` says. The same out_refund_no again is the same refund while it
  is processing; once it has ended it is refused as a repeat (400 INVALID_REQUEST).
- Refusals carry the documented status: 403 for NOT_ENOUGH, NO_AUTH, OUT_TRADE_NO_USED,
  USER_ACCOUNT_ABNORMAL; 429 FREQUENCY_LIMITED; 500 SYSTEM_ERROR.
- A payment made to be split is frozen (its share after coupons it keeps and its fee); a split is taken
  only `split_ready_seconds` after payment and within `max_split_ratio_bps` of the order; unfreeze
  releases the rest, after which no split is taken. An order is held frozen at most `frozen_days` (30 for a
  direct merchant, by `now`): then WeChat Pay unfreezes the rest itself, takes no more splits of it, and
  answers an unfreeze 403 NOT_ENOUGH (分账金额不足: 订单已经逾期解冻); /v3/profitsharing/transactions/{id}/amounts
  tells what an order still holds (unsplit_amount).
- Bills of a day are served from 10:00 the next day (Beijing), gzipped on request, with the hash of
  the bill itself; cells are written as WeChat Pay writes them (a backtick before each, never quoted:
  a comma inside a description stays a comma), fees rounded to the fen and written with five decimals.
- Callbacks are retried on WeChat Pay's schedule (15 s, 15 s, 30 s, 3 m, … 6 h; 24 h in all), times
  `callback_time_scale`.
- `moved` lists every movement of money, so a test can prove nothing moved twice.

Control endpoints (not WeChat Pay's): POST /sim/orders/{out_trade_no}/pay {"outcome": "success"|"fail"},
POST /sim/refunds/{out_refund_no}/resolve (a person fixes an ABNORMAL refund at the merchant platform),
POST /sim/faults {callback_mode, server_errors, slow_ms, bad_signature, rotate_key, refund_result,
script: {operation: [{"status", "code", "after"}]}} (answer the next calls of an operation so; `after`:
act first, then answer so, as a timeout after WeChat Pay acted looks).
"""
from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable

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
SHARING_BILL_HEADER = ["create_time", "initiator", "sponsor", "sub_mchid", "transaction_id", "order_id", "out_order_no",
                       "detail_id", "receiver_account", "amount", "currency", "settlement_amount", "settlement_currency",
                       "exchange_rate", "business_type", "status", "description"]
SHARING_SUMMARY_HEADER = ["split_count", "split_amount", "return_count", "return_amount"]
SUMMARY_HEADER = ["总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额", "订单总金额", "申请退款总金额"]
# 通知频率 (支付/退款结果通知): 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h, 24h4m in all
CALLBACK_SCHEDULE = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600)
BILL_READY_HOUR = 10     # 微信支付在每日10点后生成昨日交易账单文件


@dataclass
class Fault:
    status: int
    code: str
    message: str = "simulated"
    after: bool = False      # act first, then answer with the error


@dataclass
class Faults:
    callback_mode: str = "normal"     # normal | drop | duplicate | delay | reorder
    callback_delay_ms: int = 300
    server_errors: int = 0            # answer this many next API calls with a 500 (before acting)
    slow_ms: int = 0                  # answer every API call this much later
    bad_signature: bool = False       # sign answers and callbacks with a key nobody trusts
    corrupt_bills: bool = False       # serve bill files that do not match their hash
    refund_result: str = "SUCCESS"    # how refunds end: SUCCESS | ABNORMAL | CLOSED
    script: dict[str, list[Fault]] = field(default_factory=dict)   # operation -> next answers


@dataclass
class SimOrder:
    out_trade_no: str
    method: str
    total: int
    currency: str
    description: str
    notify_url: str
    appid: str
    attach: str = ""
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: str | None = None
    paid_at: float | None = None      # time.time() of the payment
    profit_sharing: bool = False      # settle_info.profit_sharing: its money is held frozen for splitting
    frozen: int = 0                   # what is still frozen for splitting
    unfrozen: bool = False            # the splitting is over (unfreeze): no more splits
    promotion_detail: list[dict[str, Any]] = field(default_factory=list)   # coupons the payer used

    def nocash(self) -> int:
        """What WeChat Pay keeps of the order: its 免充值 (NOCASH) coupons; it settles the rest."""
        return sum(p["amount"] for p in self.promotion_detail if p["type"] == "NOCASH")


def fee_fen(amount: int, bps: int) -> int:
    """A fee in fen, rounded half up, as WeChat Pay charges it per order (0.54% of 60.00 is 0.32)."""
    return int((Decimal(amount) * bps / 10000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


class WechatPaySimulator:
    fee_rate_bps = 60   # what this WeChat Pay charges, shown per row as 手续费 and 费率

    def __init__(self, *, mchid: str, appid: str, apiv3_key: str, merchant_public_key: rsa.RSAPublicKey,
                 merchant_serial_no: str, platform_key: rsa.RSAPrivateKey | None = None,
                 platform_serial: str = "PUB_KEY_ID_0001", faults: Faults | None = None, app_appid: str | None = None,
                 callback_time_scale: float = 1.0, split_ready_seconds: float = 60.0,
                 max_split_ratio_bps: int = 3000, now: Callable[[], datetime] | None = None,
                 bill_ready_hour: int | None = BILL_READY_HOUR, frozen_days: int = 30,
                 timestamps: Callable[[], float] = time.time) -> None:
        self.mchid, self.appid, self.apiv3_key = mchid, appid, apiv3_key.encode()
        self.app_appid = app_appid
        self.merchant_public_key, self.merchant_serial_no = merchant_public_key, merchant_serial_no
        self.platform_key = platform_key or wire.new_key()
        self.platform_serial = platform_serial
        self.faults = faults or Faults()
        self.callback_time_scale = callback_time_scale
        self.split_ready_seconds, self.max_split_ratio_bps = split_ready_seconds, max_split_ratio_bps
        self.now = now or (lambda: datetime.now(CHINA))
        self.frozen_days = frozen_days
        self.timestamps = timestamps   # the clock its signatures are dated by and checked against
        self.bill_ready_hour = bill_ready_hour   # None: a day's bill at once (a suite that cannot wait a night)
        self.orders: dict[str, SimOrder] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.receivers: dict[tuple[str, str], str] = {}           # (type, account) -> name, as added
        self.sharing: dict[str, dict[str, Any]] = {}             # out_order_no -> profit-sharing order
        self.returns: dict[str, dict[str, Any]] = {}             # out_return_no -> return order
        self.moved: list[tuple[str, str, int]] = []              # (what, number, amount) each time money moved
        self.held: list[tuple[str, dict]] = []      # callbacks held back for the reorder fault
        self.bills: dict[str, bytes] = {}
        self.sender = CallbackSender()
        self.app = Starlette(routes=[
            Route("/v3/pay/transactions/{method}", self.create, methods=["POST"]),
            Route("/v3/pay/transactions/out-trade-no/{out_trade_no}", self.query, methods=["GET"]),
            Route("/v3/pay/transactions/out-trade-no/{out_trade_no}/close", self.close, methods=["POST"]),
            Route("/v3/refund/domestic/refunds", self.refund, methods=["POST"]),
            Route("/v3/refund/domestic/refunds/{out_refund_no}", self.refund_query, methods=["GET"]),
            Route("/v3/refund/domestic/refunds/{refund_id}/apply-abnormal-refund", self.apply_abnormal_refund,
                  methods=["POST"]),
            Route("/v3/bill/tradebill", self.tradebill, methods=["GET"]),
            Route("/v3/billdownload/file", self.billdownload, methods=["GET"]),
            Route("/v3/profitsharing/receivers/add", self.add_receiver, methods=["POST"]),
            Route("/v3/profitsharing/orders", self.share, methods=["POST"]),
            Route("/v3/profitsharing/orders/unfreeze", self.unfreeze, methods=["POST"]),
            Route("/v3/profitsharing/orders/{out_order_no}", self.share_query, methods=["GET"]),
            Route("/v3/profitsharing/transactions/{transaction_id}/amounts", self.unsplit_amount, methods=["GET"]),
            Route("/v3/profitsharing/return-orders", self.share_return, methods=["POST"]),
            Route("/v3/profitsharing/return-orders/{out_return_no}", self.share_return_query, methods=["GET"]),
            Route("/v3/profitsharing/bills", self.profitsharing_bill, methods=["GET"]),
            Route("/sim/orders/{out_trade_no}/pay", self.control_pay, methods=["POST"]),
            Route("/sim/refunds/{out_refund_no}/resolve", self.control_resolve, methods=["POST"]),
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

    # ---- what moved ----

    def moved_for(self, what: str, number: str) -> int:
        """How many times money moved for one refund, split, return or unfreeze number (never above 1)."""
        return sum(1 for kind, no, _ in self.moved if kind == what and no == number)

    def refunded(self, order: SimOrder) -> int:
        """What refunds took of an order: every one that took the money (ABNORMAL ones too), not CLOSED."""
        return sum(r["amount"]["refund"] for r in self.refunds.values()
                   if r["out_trade_no"] == order.out_trade_no and r["status"] != "CLOSED")

    # ---- answers ----

    def _timestamp(self) -> int:
        """Now, as its signatures date themselves and check the merchant's (`timestamps`: real time, or a
        test's clock that the gateway shares)."""
        return int(self.timestamps())

    def _answer(self, status: int, data: dict | None = None) -> Response:
        body = b"" if data is None else json.dumps(data, ensure_ascii=False).encode()
        headers = wire.signed_headers(self._signing_key(), self.platform_serial, body, self._timestamp())
        return Response(body, status, headers=headers, media_type="application/json" if body else None)

    def _error(self, status: int, code: str, message: str) -> Response:
        return self._answer(status, {"code": code, "message": message})

    def _fault(self, operation: str) -> Fault | None:
        queue = self.faults.script.get(operation)
        return queue.pop(0) if queue else None

    def _faulted(self, fault: Fault) -> Response:
        if fault.status >= 500:   # WeChat Pay's own failures come unsigned often enough: the plugin must cope
            return Response(json.dumps({"code": fault.code, "message": fault.message}).encode(), fault.status,
                            media_type="application/json")
        return self._error(fault.status, fault.code, fault.message)

    async def _admit(self, request: Request, serial_needed: bool = True) -> tuple[dict | None, Response | None]:
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
        if abs(self._timestamp() - int(auth["timestamp"] or 0)) > wire.WINDOW_SECONDS or \
                not wire.rsa_verify(self.merchant_public_key, signed, auth["signature"]):
            return None, self._error(401, "SIGN_ERROR", "signature does not verify")
        if serial_needed and request.headers.get("wechatpay-serial") != self.platform_serial:
            return None, self._error(400, "PARAM_ERROR", "Wechatpay-Serial must name the WeChat Pay public key ID")
        try:
            return (json.loads(body) if body else {}), None
        except ValueError:
            return None, self._error(400, "PARAM_ERROR", "body is not JSON")

    # ---- payments ----

    def _view(self, order: SimOrder) -> dict[str, Any]:
        coupons = sum(p["amount"] for p in order.promotion_detail)
        view = {"appid": order.appid, "mchid": self.mchid, "out_trade_no": order.out_trade_no,
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
        fault = self._fault("create")
        if fault and not fault.after:
            return self._faulted(fault)
        method = request.path_params["method"]
        appid = self.app_appid if method == "app" and self.app_appid else self.appid
        try:
            out_trade_no, total = data["out_trade_no"], data["amount"]["total"]
            currency = data["amount"].get("currency", "CNY")
            assert data["mchid"] == self.mchid and isinstance(total, int) and total > 0
            assert method in ("native", "jsapi", "h5", "app") and data["notify_url"].startswith("http")
            if method == "jsapi":
                assert data["payer"]["openid"]
            if method == "h5":   # WeChat Pay checks the payer's real IP against the browser
                ip = data["scene_info"]["payer_client_ip"]
                assert ip and not ip.startswith("127.")
        except (KeyError, TypeError, AssertionError):
            return self._error(400, "PARAM_ERROR", "the order is malformed")
        if data["appid"] != appid:   # an app order needs the 移动应用 AppID, the others the 公众号/小程序 one
            return self._error(400, "APPID_MCHID_NOT_MATCH", f"appid {data['appid']} is not bound for {method}")
        existing = self.orders.get(out_trade_no)
        if existing and existing.trade_state != "NOTPAY":
            if existing.trade_state == "CLOSED":
                return self._error(400, "ORDER_CLOSED", "订单已关闭")
            return self._error(403, "OUT_TRADE_NO_USED", "商户订单号重复")
        self.orders[out_trade_no] = SimOrder(out_trade_no, method, total, currency, data.get("description", ""),
                                             data["notify_url"], appid, str(data.get("attach") or ""),
                                             profit_sharing=bool((data.get("settle_info") or {}).get("profit_sharing")))
        if fault:
            return self._faulted(fault)
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
        fault = self._fault("query")
        if fault:
            return self._faulted(fault)
        if request.query_params.get("mchid") != self.mchid:
            return self._error(400, "PARAM_ERROR", "mchid is required")
        order = self.orders.get(request.path_params["out_trade_no"])
        return self._answer(200, self._view(order)) if order else self._error(404, "ORDER_NOT_EXIST", "订单不存在")

    async def close(self, request: Request) -> Response:
        data, error = await self._admit(request)
        if error:
            return error
        order = self.orders.get(request.path_params["out_trade_no"])
        if order is None:
            return self._error(404, "ORDER_NOT_EXIST", "订单不存在")
        if order.trade_state in ("SUCCESS", "REFUND"):
            return self._error(400, "ORDER_PAID", "订单已支付")
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
            order.success_time = self.now().isoformat(timespec="seconds")
            order.paid_at = time.time()
            if order.profit_sharing:   # its share after the coupons it keeps and its fee, frozen for splitting
                settled = order.total - order.nocash()
                order.frozen = settled - fee_fen(settled, self.fee_rate_bps)
            await self._callback(order.notify_url, "TRANSACTION.SUCCESS", "transaction", "支付成功", self._view(order))
        return Response(json.dumps(self._view(order)).encode(), 200, media_type="application/json")

    async def control_faults(self, request: Request) -> Response:
        data = await request.json()
        answer: dict[str, Any] = {}
        if data.pop("rotate_key", False):
            serial, pem = self.rotate_key()
            answer.update(platform_public_key_id=serial, platform_public_key=pem)
        if "script" in data:
            for operation, faults in data.pop("script").items():
                self.faults.script.setdefault(operation, []).extend(Fault(**f) for f in faults)
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
        fault = self._fault("refund")
        if fault and not fault.after:
            return self._faulted(fault)
        try:
            order = self.orders.get(data["out_trade_no"])
            out_refund_no, amount = data["out_refund_no"], data["amount"]["refund"]
            assert isinstance(amount, int) and amount > 0 and isinstance(data["amount"]["total"], int)
        except (KeyError, TypeError, AssertionError):
            return self._error(400, "PARAM_ERROR", "the refund is malformed")
        if order is None:
            return self._error(404, "RESOURCE_NOT_EXISTS", "订单号不存在")
        existing = self.refunds.get(out_refund_no)
        if existing is not None:   # 同一退款单号多次请求只退一笔
            if existing["status"] != "PROCESSING" or existing["amount"]["refund"] != amount:
                return self._error(400, "INVALID_REQUEST", "重复的退款请求: 该商户退款单号已退款")
            return self._faulted(fault) if fault else self._answer(200, existing)
        if data["amount"]["total"] != order.total:
            return self._error(400, "PARAM_ERROR", "amount.total is not the order's")
        if order.trade_state not in ("SUCCESS", "REFUND"):
            return self._error(404, "RESOURCE_NOT_EXISTS", "订单号不存在或未支付")
        if self.refunded(order) + amount > order.total:
            return self._error(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
        if self.refunded(order) + self.shared(order) + amount > order.total:
            return self._error(403, "NOT_ENOUGH", "余额不足 (receivers hold what was shared)")
        nocash_refund = self._nocash_share(order, amount)
        refund = {"refund_id": "50300" + secrets.token_hex(12), "out_refund_no": out_refund_no,
                  "transaction_id": order.transaction_id, "out_trade_no": order.out_trade_no, "channel": "ORIGINAL",
                  "user_received_account": "支付用户零钱", "status": "PROCESSING",
                  "create_time": self.now().isoformat(timespec="seconds"),
                  "amount": {"refund": amount, "total": order.total, "payer_refund": amount - self._coupon_share(
                      order, amount), "payer_total": order.total - sum(p["amount"] for p in order.promotion_detail),
                      "settlement_refund": amount - nocash_refund, "settlement_total": order.total - order.nocash(),
                      "discount_refund": self._coupon_share(order, amount), "currency": order.currency}}
        self.refunds[out_refund_no] = refund
        self.moved.append(("refund", out_refund_no, amount))       # 退款受理成功: taken from the merchant now
        if order.profit_sharing and not order.unfrozen:            # refunded from the frozen share first
            order.frozen = max(0, order.frozen - (amount - nocash_refund))
        order.trade_state = "REFUND"
        self.sender.background(self._end_refund(refund, data.get("notify_url") or order.notify_url,
                                                self.faults.refund_result))
        return self._faulted(fault) if fault else self._answer(200, refund)

    def _coupon_share(self, order: SimOrder, amount: int) -> int:
        coupons = sum(p["amount"] for p in order.promotion_detail)
        return coupons * amount // order.total

    def _nocash_share(self, order: SimOrder, amount: int) -> int:
        """A refund's share of the NOCASH coupons (not taken back from the merchant): in proportion; the
        refund that completes the order takes the rest."""
        taken = sum(r["amount"]["refund"] - r["amount"]["settlement_refund"] for r in self.refunds.values()
                    if r["out_trade_no"] == order.out_trade_no and r["status"] != "CLOSED")
        if self.refunded(order) + amount == order.total:
            return order.nocash() - taken
        return min(order.nocash() * amount // order.total, order.nocash() - taken)

    async def _end_refund(self, refund: dict[str, Any], notify_url: str, result: str) -> None:
        await asyncio.sleep(0.05)
        if refund["status"] != "PROCESSING":
            return
        refund["status"] = result
        if result == "SUCCESS":
            refund["success_time"] = self.now().isoformat(timespec="seconds")
        if result == "CLOSED":   # the money goes back to the merchant
            self.moved.append(("refund_closed", refund["out_refund_no"], -refund["amount"]["refund"]))
        await self._refund_callback(refund, notify_url)

    async def _refund_callback(self, refund: dict[str, Any], notify_url: str) -> None:
        event, summary = {"SUCCESS": ("REFUND.SUCCESS", "退款成功"), "ABNORMAL": ("REFUND.ABNORMAL", "退款异常"),
                          "CLOSED": ("REFUND.CLOSED", "退款关闭")}[refund["status"]]
        resource = {"mchid": self.mchid, "out_trade_no": refund["out_trade_no"],
                    "transaction_id": refund["transaction_id"], "out_refund_no": refund["out_refund_no"],
                    "refund_id": refund["refund_id"], "refund_status": refund["status"],
                    "user_received_account": refund["user_received_account"],
                    "amount": {k: refund["amount"][k] for k in ("total", "refund", "payer_total", "payer_refund")}}
        if refund.get("success_time"):
            resource["success_time"] = refund["success_time"]
        refund["notify_url"] = notify_url
        await self._callback(notify_url, event, "refund", summary, resource)

    async def refund_query(self, request: Request) -> Response:
        data, error = await self._admit(request)
        if error:
            return error
        fault = self._fault("refund_query")
        if fault:
            return self._faulted(fault)
        refund = self.refunds.get(request.path_params["out_refund_no"])
        return self._answer(200, refund) if refund else self._error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")

    async def apply_abnormal_refund(self, request: Request) -> Response:
        """发起异常退款: the refund's money, waiting since the bank refused it, goes to a card (or back to
        the merchant's bank account); either way the refund is then SUCCESS."""
        data, error = await self._admit(request)
        if error:
            return error
        refund = next((r for r in self.refunds.values() if r["refund_id"] == request.path_params["refund_id"]), None)
        if refund is None or refund["out_refund_no"] != (data or {}).get("out_refund_no"):
            return self._error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        if refund["status"] != "ABNORMAL":
            return self._error(400, "INVALID_REQUEST", "退款单状态不是退款异常")
        await self._resolve(refund, "USER_BANK_CARD" if data.get("type") != "MERCHANT_BANK_CARD" else "MERCHANT")
        return self._answer(200, refund)

    async def control_resolve(self, request: Request) -> Response:
        refund = self.refunds.get(request.path_params["out_refund_no"])
        if refund is None or refund["status"] != "ABNORMAL":
            return Response(b'{"error":"no ABNORMAL refund of that number"}', 409, media_type="application/json")
        await self._resolve(refund, "USER_BANK_CARD")
        return Response(json.dumps(refund).encode(), 200, media_type="application/json")

    async def _resolve(self, refund: dict[str, Any], how: str) -> None:
        refund.update(status="SUCCESS", success_time=self.now().isoformat(timespec="seconds"),
                      channel="OTHER_BANKCARD", user_received_account="招商银行借记卡0403" if how == "USER_BANK_CARD"
                      else "商户结算银行账户")
        order = self.orders[refund["out_trade_no"]]
        await self._refund_callback(refund, refund.get("notify_url") or order.notify_url)

    # ---- profit sharing ----

    def shared(self, order: SimOrder) -> int:
        """What receivers hold of an order: shares not closed, less what was returned."""
        total = 0
        for share in self.sharing.values():
            if share["transaction_id"] == order.transaction_id and share["kind"] == "share" and \
                    share["receivers"][0]["result"] != "CLOSED":
                back = sum(r["amount"] for r in self.returns.values()
                           if r["out_order_no"] == share["out_order_no"] and r["result"] == "SUCCESS")
                total += share["receivers"][0]["amount"] - back
        return total

    async def add_receiver(self, request: Request) -> Response:
        data, error = await self._admit(request)
        if error:
            return error
        try:
            name = wire.decrypt_sensitive(self.platform_key, data["name"])
            kind, account = data["type"], data["account"]
            assert kind in ("MERCHANT_ID", "PERSONAL_OPENID") and account and data["appid"] == self.appid
        except (KeyError, ValueError, TypeError, AssertionError):
            return self._error(400, "PARAM_ERROR", "the receiver is malformed or its name does not decrypt")
        self.receivers[(kind, account)] = name
        return self._answer(200, {"type": kind, "account": account, "relation_type": data.get("relation_type")})

    def _paid_order(self, transaction_id: Any) -> SimOrder | None:
        """The order of a WeChat Pay transaction id; one whose freeze ran out is unfrozen first, as
        WeChat Pay does of itself once the order has been held `frozen_days`."""
        order = next((o for o in self.orders.values() if o.transaction_id == transaction_id), None)
        if order is not None and order.profit_sharing and not order.unfrozen and order.success_time and \
                self.now() >= datetime.fromisoformat(order.success_time) + timedelta(days=self.frozen_days):
            self._unfreeze(order, f"expired-{order.transaction_id}")
        return order

    def _sharable(self, transaction_id: Any) -> SimOrder | Response:
        order = self._paid_order(transaction_id)
        if order is None or order.trade_state not in ("SUCCESS", "REFUND"):
            return self._error(400, "INVALID_REQUEST", "订单不存在或未支付")
        if not order.profit_sharing:
            return self._error(400, "INVALID_REQUEST", "非分账订单不支持分账")
        if order.unfrozen:
            return self._error(400, "INVALID_REQUEST", "订单已解冻，不支持再次分账")
        if time.time() < (order.paid_at or 0) + self.split_ready_seconds:
            return self._error(400, "INVALID_REQUEST", "订单处理中，暂时无法分账，请稍后再试")
        return order

    async def share(self, request: Request) -> Response:
        data, error = await self._admit(request)
        if error:
            return error
        fault = self._fault("share")
        if fault and not fault.after:
            return self._faulted(fault)
        try:
            out_order_no, [receiver] = data["out_order_no"], data["receivers"]
            amount, kind, account = receiver["amount"], receiver["type"], receiver["account"]
            assert isinstance(amount, int) and amount > 0 and data["unfreeze_unsplit"] in (True, False)
        except (KeyError, ValueError, TypeError, AssertionError):
            return self._error(400, "PARAM_ERROR", "the profit-sharing order is malformed (one receiver here)")
        if out_order_no in self.sharing:   # 同一分账单号多次请求等同一次
            share = self.sharing[out_order_no]
            return self._faulted(fault) if fault else self._answer(200, share)
        order = self._sharable(data.get("transaction_id"))
        if isinstance(order, Response):
            return order
        if (kind, account) not in self.receivers:
            return self._error(400, "INVALID_REQUEST", "分账接收方关系不存在")
        if (self.shared(order) + amount) * 10000 > order.total * self.max_split_ratio_bps:
            return self._error(400, "INVALID_REQUEST", "分账金额超出最大分账比例")
        if amount > order.frozen:
            return self._error(403, "NOT_ENOUGH", "分账金额不足")
        order.frozen -= amount
        share = self.sharing[out_order_no] = {
            "transaction_id": order.transaction_id, "out_order_no": out_order_no, "kind": "share",
            "order_id": "30000" + secrets.token_hex(12), "state": "PROCESSING",
            "receivers": [{"type": kind, "account": account, "amount": amount, "result": "PENDING",
                           "description": receiver.get("description", ""), "detail_id": "36" + secrets.token_hex(12),
                           "create_time": self.now().isoformat(timespec="seconds")}]}
        self.moved.append(("share", out_order_no, amount))
        if data["unfreeze_unsplit"]:
            self._unfreeze(order, out_order_no)
        self.sender.background(self._finish_share(share))
        return self._faulted(fault) if fault else self._answer(200, share)

    async def _finish_share(self, share: dict[str, Any]) -> None:
        await asyncio.sleep(0.05)
        share["state"] = "FINISHED"
        share["receivers"][0].update(result="SUCCESS", finish_time=self.now().isoformat(timespec="seconds"))

    def _unfreeze(self, order: SimOrder, out_order_no: str) -> int:
        released, order.frozen, order.unfrozen = order.frozen, 0, True
        self.moved.append(("unfreeze", out_order_no, released))
        return released

    async def unfreeze(self, request: Request) -> Response:
        """解冻剩余资金: what is left frozen goes to the merchant; the order takes no more splits."""
        data, error = await self._admit(request)
        if error:
            return error
        fault = self._fault("unfreeze")
        if fault and not fault.after:
            return self._faulted(fault)
        try:
            out_order_no, transaction_id = data["out_order_no"], data["transaction_id"]
            assert data["description"]
        except (KeyError, TypeError, AssertionError):
            return self._error(400, "PARAM_ERROR", "transaction_id, out_order_no and description are required")
        if out_order_no not in self.sharing:
            known = self._paid_order(transaction_id)
            if known is not None and known.profit_sharing and (known.unfrozen or known.frozen == 0):
                return self._error(403, "NOT_ENOUGH", "分账金额不足")   # 已逾期解冻, 已分完或已全额退款
            order = self._sharable(transaction_id)
            if isinstance(order, Response):
                return order
            released = self._unfreeze(order, out_order_no)
            self.sharing[out_order_no] = {
                "transaction_id": transaction_id, "out_order_no": out_order_no, "kind": "unfreeze",
                "order_id": "30000" + secrets.token_hex(12), "state": "FINISHED",
                "receivers": [{"type": "MERCHANT_ID", "account": self.mchid, "amount": released, "result": "SUCCESS",
                               "description": "解冻给分账方", "detail_id": "36" + secrets.token_hex(12),
                               "create_time": self.now().isoformat(timespec="seconds"),
                               "finish_time": self.now().isoformat(timespec="seconds")}]}
        return self._faulted(fault) if fault else self._answer(200, self.sharing[out_order_no])

    async def unsplit_amount(self, request: Request) -> Response:
        """查询剩余待分金额: what the order still holds frozen for splitting."""
        data, error = await self._admit(request)
        if error:
            return error
        transaction_id = request.path_params["transaction_id"]
        order = self._paid_order(transaction_id)
        if order is None or not order.profit_sharing:
            return self._error(404, "RESOURCE_NOT_EXISTS", "记录不存在")
        return self._answer(200, {"transaction_id": transaction_id, "unsplit_amount": order.frozen})

    async def share_query(self, request: Request) -> Response:
        data, error = await self._admit(request)
        if error:
            return error
        fault = self._fault("share_query")
        if fault:
            return self._faulted(fault)
        share = self.sharing.get(request.path_params["out_order_no"])
        if share is None or share["transaction_id"] != request.query_params.get("transaction_id"):
            return self._error(404, "RESOURCE_NOT_EXISTS", "记录不存在")
        return self._answer(200, share)

    async def share_return(self, request: Request) -> Response:
        data, error = await self._admit(request)
        if error:
            return error
        fault = self._fault("return")
        if fault and not fault.after:
            return self._faulted(fault)
        try:
            number, amount, mchid = data["out_return_no"], data["amount"], data["return_mchid"]
            share = self.sharing[data["out_order_no"]]
            assert isinstance(amount, int) and amount > 0
        except (KeyError, TypeError, AssertionError):
            return self._error(400, "PARAM_ERROR", "the return is malformed or its order unknown")
        if number not in self.returns:
            receiver = share["receivers"][0]
            back = sum(r["amount"] for r in self.returns.values()
                       if r["out_order_no"] == share["out_order_no"] and r["result"] == "SUCCESS")
            if receiver["result"] != "SUCCESS" or receiver["type"] != "MERCHANT_ID" or \
                    receiver["account"] != mchid or back + amount > receiver["amount"]:
                return self._error(400, "INVALID_REQUEST", "回退金额超过分账金额")
            self.returns[number] = {"order_id": share["order_id"], "out_order_no": share["out_order_no"],
                                    "out_return_no": number, "return_id": "31" + secrets.token_hex(12),
                                    "return_mchid": mchid, "amount": amount, "result": "SUCCESS",
                                    "description": data.get("description", ""),
                                    "finish_time": self.now().isoformat(timespec="seconds")}
            self.moved.append(("return", number, amount))
        return self._faulted(fault) if fault else self._answer(200, self.returns[number])

    async def share_return_query(self, request: Request) -> Response:
        data, error = await self._admit(request)
        if error:
            return error
        found = self.returns.get(request.path_params["out_return_no"])
        if found is None or found["out_order_no"] != request.query_params.get("out_order_no"):
            return self._error(404, "RESOURCE_NOT_EXISTS", "记录不存在")
        return self._answer(200, found)

    # ---- statements ----

    def bill(self, day: str) -> bytes:
        """The trade bill of one day (Beijing time), as WeChat Pay writes it: a header, one row per payment
        or refund with a backtick before every cell (cells are never quoted), then the totals."""
        rows: list[list[str]] = []
        totals = {name: 0 for name in ("settled", "refunded", "cash_coupon_refund", "ordered", "asked")}
        fees = 0
        yuan = lambda fen: f"{Decimal(fen) / 100:.2f}"  # noqa: E731
        fee_text = lambda fen: f"{Decimal(fen) / 100:.5f}"  # noqa: E731
        rate = f"{Decimal(self.fee_rate_bps) / 100:.2f}%"
        for order in self.orders.values():
            if not order.success_time or not order.success_time.startswith(day):
                continue
            settled = order.total - order.nocash()
            fee = fee_fen(settled, self.fee_rate_bps)
            rows.append([order.success_time.replace("T", " ")[:19], order.appid, self.mchid, "0", "",
                         order.transaction_id, order.out_trade_no, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
                         order.method.upper(), "SUCCESS", "OTHERS", order.currency, yuan(settled),
                         yuan(sum(p["amount"] for p in order.promotion_detail)), "0", "0", "0.00", "0.00", "", "",
                         order.description, order.attach, fee_text(fee), rate, yuan(order.total), "0.00", ""])
            totals["settled"] += settled
            totals["ordered"] += order.total
            fees += fee
        for refund in self.refunds.values():
            if refund["status"] != "SUCCESS" or not refund.get("success_time", "").startswith(day):
                continue
            order = self.orders[refund["out_trade_no"]]
            amount, settled = refund["amount"]["refund"], refund["amount"]["settlement_refund"]
            fee = -fee_fen(settled, self.fee_rate_bps)
            rows.append([refund["success_time"].replace("T", " ")[:19], order.appid, self.mchid, "0", "",
                         order.transaction_id, order.out_trade_no, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
                         order.method.upper(), "REFUND", "OTHERS", order.currency, "0.00", "0.00",
                         refund["refund_id"], refund["out_refund_no"], yuan(settled), "0.00", "ORIGINAL", "SUCCESS",
                         order.description, order.attach, fee_text(fee), rate, "0.00", yuan(amount), ""])
            totals["refunded"] += settled
            totals["asked"] += amount
            fees += fee
        lines = [",".join(BILL_HEADER)]
        lines += [",".join("`" + cell for cell in row) for row in rows]
        lines.append(",".join(SUMMARY_HEADER))
        lines.append(",".join("`" + cell for cell in (
            str(len(rows)), yuan(totals["settled"]), yuan(totals["refunded"]), "0.00", fee_text(fees),
            yuan(totals["ordered"]), yuan(totals["asked"]))))
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")

    def sharing_bill(self, day: str) -> bytes:
        """The profit-sharing bill (分账账单) of one day, as WeChat Pay's page describes it: a detail part and
        a summary part, each a header and rows; one detail row per split or return (回退) that succeeded (one
        that did not is never listed), every cell after a backtick, amounts in yuan. The detail header is the
        one WeChat Pay documents for its profit-sharing bill (create_time … description); the summary's
        columns are not given on the pages read, so these name what they count."""
        rows, totals = [], [0, 0, 0, 0]
        yuan = lambda fen: f"{Decimal(fen) / 100:.2f}"  # noqa: E731
        for share in self.sharing.values():
            receiver = share["receivers"][0]
            if share["kind"] != "share" or receiver["result"] != "SUCCESS" or \
                    not receiver.get("finish_time", "").startswith(day):
                continue
            rows.append([receiver["finish_time"].replace("T", " ")[:19], self.mchid, self.mchid, "",
                         share["transaction_id"], share["order_id"], share["out_order_no"], receiver["detail_id"],
                         receiver["account"], yuan(receiver["amount"]), "CNY", yuan(receiver["amount"]), "CNY",
                         "1.00000000", "分账", "SUCCESS", receiver["description"]])
            totals[0], totals[1] = totals[0] + 1, totals[1] + receiver["amount"]
        for ret in self.returns.values():
            if ret["result"] != "SUCCESS" or not ret["finish_time"].startswith(day):
                continue
            share = self.sharing[ret["out_order_no"]]
            rows.append([ret["finish_time"].replace("T", " ")[:19], self.mchid, ret["return_mchid"], "",
                         share["transaction_id"], ret["return_id"], ret["out_return_no"], "", ret["return_mchid"],
                         yuan(ret["amount"]), "CNY", yuan(ret["amount"]), "CNY", "1.00000000", "回退", "SUCCESS",
                         ret["description"]])
            totals[2], totals[3] = totals[2] + 1, totals[3] + ret["amount"]
        lines = [",".join(SHARING_BILL_HEADER)]
        lines += [",".join("`" + cell for cell in row) for row in rows]
        lines.append(",".join(SHARING_SUMMARY_HEADER))
        lines.append(",".join("`" + cell for cell in (str(totals[0]), yuan(totals[1]), str(totals[2]),
                                                       yuan(totals[3]))))
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")

    async def profitsharing_bill(self, request: Request) -> Response:
        """申请分账账单: the day's profit-sharing bill, served as the trade bill is (a download URL and the
        SHA1 of the bill itself, gzipped on request)."""
        data, error = await self._admit(request)
        if error:
            return error
        day = request.query_params.get("bill_date", "")
        try:
            datetime.fromisoformat(day)
        except ValueError:
            return self._error(400, "PARAM_ERROR", "bill_date must be yyyy-MM-dd")
        return self._serve_bill(request, self.sharing_bill(day))   # a day without splits: an empty bill

    def _serve_bill(self, request: Request, content: bytes) -> Response:
        token = secrets.token_urlsafe(16)
        gzipped = request.query_params.get("tar_type") == "GZIP"
        self.bills[token] = gzip.compress(content) if gzipped else content
        # The hash is of the bill itself (原始账单, gzip需要解压缩), whichever way it is served.
        return self._answer(200, {"hash_type": "SHA1", "hash_value": hashlib.sha1(content).hexdigest(),
                                  "download_url": f"{str(request.base_url).rstrip('/')}/v3/billdownload/file?token={token}"})

    async def tradebill(self, request: Request) -> Response:
        data, error = await self._admit(request)
        if error:
            return error
        day = request.query_params.get("bill_date", "")
        if request.query_params.get("bill_type", "ALL") != "ALL" or len(day) != 10:
            return self._error(400, "PARAM_ERROR", "bill_date (yyyy-MM-dd) and bill_type=ALL")
        try:
            ready = datetime.fromisoformat(day).replace(tzinfo=CHINA) + timedelta(days=1, hours=BILL_READY_HOUR)
        except ValueError:
            return self._error(400, "PARAM_ERROR", "bill_date must be yyyy-MM-dd")
        if self.bill_ready_hour is not None and self.now() < ready - timedelta(hours=BILL_READY_HOUR - self.bill_ready_hour):
            return self._error(400, "NO_STATEMENT_EXIST", "账单尚未生成: 次日10点后生成")
        content = self.bill(day)
        if content.count(b"\n") <= 3:
            return self._error(400, "NO_STATEMENT_EXIST", "账单不存在")
        return self._serve_bill(request, content)

    async def billdownload(self, request: Request) -> Response:
        data, error = await self._admit(request, serial_needed=False)
        if error:
            return error
        content = self.bills.get(request.query_params.get("token", ""))
        if content is None:
            return self._error(404, "RESOURCE_NOT_EXISTS", "no such bill")
        if self.faults.corrupt_bills:
            raw = gzip.decompress(content) if content[:2] == b"\x1f\x8b" else content
            raw = raw.replace(b"SUCCESS", b"SUCCES5")
            content = gzip.compress(raw) if content[:2] == b"\x1f\x8b" else raw
        return Response(content, 200, media_type="application/octet-stream")  # files are not signed

    # ---- callbacks, shaped by the faults ----

    def envelope(self, event_type: str, original_type: str, summary: str, resource: dict[str, Any]) -> bytes:
        encrypted = wire.encrypt_resource(self.apiv3_key, json.dumps(resource, ensure_ascii=False).encode(),
                                          original_type, original_type)
        return json.dumps({"id": secrets.token_hex(18), "create_time": self.now().isoformat(timespec="seconds"),
                           "resource_type": "encrypt-resource", "event_type": event_type, "summary": summary,
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
            url, body, lambda: {**wire.signed_headers(self._signing_key(), self.platform_serial, body, self._timestamp()),
                                "Content-Type": "application/json"},
            lambda response: response.status_code in (200, 204), delay,
            schedule=[wait * self.callback_time_scale for wait in CALLBACK_SCHEDULE])


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
                             platform_serial="PUB_KEY_ID_SIM0001", app_appid="wx9999999999999999")
    block = f"""[[channel_accounts]]
id = "wx"
plugin = "wechatpay"
enabled = true
[channel_accounts.settings]
mchid = "1900000109"
appid = "wx8888888888888888"
app_appid = "wx9999999999999999"
merchant_serial_no = "SIM_MERCHANT_SERIAL"
merchant_private_key = "file:{files['merchant_private_key'].resolve()}"
apiv3_key = "file:{(workdir / 'apiv3_key').resolve()}"
platform_public_key = "file:{files['platform_public_key'].resolve()}"
platform_public_key_id = "PUB_KEY_ID_SIM0001"
base_url = "{url}"
"""
    return sim.app, block
