"""Alipay's side of the OpenAPI, for tests and local development, written from Alipay's documentation
(the pages plugins/alipay/answers.py cites), not from the plugin: one /gateway.do that verifies the
app's RSA2 signatures and answers signed JSON, a checkout page for page and wap pay, and async
notifies signed with Alipay's key, answered "success" or retried.

How it behaves as Alipay does:
- A precreate (qr) order does not exist until someone scans its code (query and close answer
  ACQ.TRADE_NOT_EXIST until then); the code lives 2 hours, the trade until its time_expire.
- A refund moves the money at once (fund_change Y); the same out_request_no again moves nothing
  (fund_change N), and once a full refund has closed the trade a repeat is refused
  ACQ.TRADE_STATUS_ERROR. A refund the query does not know was not made.
- An order settle moves money from what the trade holds frozen (royalty_freeze), within
  `max_split_ratio_bps` of the order; royalty_finish releases the rest (with or without a split);
  onsettle.query tells what is still frozen. A trade is held frozen `frozen_days` (30) after its payment
  (by `now`): then Alipay releases the rest itself and the trade takes no more order settles.
- Answers can be scripted per method (`Faults.script`): a 40004 sub_code, 20000, or an HTTP 502,
  before acting or after (as a timeout after Alipay acted looks).
- Bills of a day are served from 09:00 the next day (Beijing), a zip whose member names are GBK
  without the zip's UTF-8 flag, as Alipay's are; merchant discounts in 商家优惠 and the totals.
- Notifies are retried on Alipay's schedule (4 m, 10 m, 10 m, 1 h, 2 h, 6 h, 15 h), times
  `callback_time_scale`.
- `moved` lists every movement of money.

Control endpoints (not Alipay's): POST /sim/orders/{out_trade_no}/pay {"outcome": "success"|"fail"},
POST /sim/orders/{out_trade_no}/scan (a payer scans a qr code), POST /sim/app (the order string, as the
Alipay app receives it), POST /sim/faults.
"""
from __future__ import annotations

import asyncio
import csv
import html
import io
import json
import secrets
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode

from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from plugins.alipay import wire
from plugins.simulation import CallbackSender, private_folder, write_private

CHINA = timezone(timedelta(hours=8))
DETAIL_HEADER = ["支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号", "门店名称", "操作员",
                 "终端号", "对方账户", "订单金额（元）", "商家实收（元）", "支付宝红包（元）", "集分宝（元）", "支付宝优惠（元）",
                 "商家优惠（元）", "券核销金额（元）", "券名称", "商家红包消费金额（元）", "卡消费金额（元）", "退款批次号/请求号",
                 "服务费（元）", "分润（元）", "备注"]
NOTIFY_SCHEDULE = (240, 600, 600, 3600, 7200, 21600, 54000)   # 4m,10m,10m,1h,2h,6h,15h after the first
QR_LIFETIME = timedelta(hours=2)      # 用户扫码之前二维码有效期2小时
BILL_READY_HOUR = 9                   # 当日数据一般于次日 9 点前生成
FEE_BPS = 60


@dataclass
class Fault:
    code: str = "40004"
    sub_code: str = "ACQ.SYSTEM_ERROR"
    sub_msg: str = "simulated"
    after: bool = False               # act first, then answer so
    http_status: int | None = None    # answer this HTTP status instead (e.g. 502)


@dataclass
class Faults:
    callback_mode: str = "normal"     # normal | drop | duplicate | delay | reorder
    callback_delay_ms: int = 300
    server_errors: int = 0            # answer this many next calls with a 502
    slow_ms: int = 0                  # answer every call this much later
    bad_signature: bool = False       # sign answers and notifies with a key nobody trusts
    script: dict[str, list[Fault]] = field(default_factory=dict)   # method -> next answers


@dataclass
class SimTrade:
    out_trade_no: str
    total: int
    subject: str
    notify_url: str | None
    status: str = "WAIT_BUYER_PAY"
    trade_no: str = field(default_factory=lambda: datetime.now(CHINA).strftime("%Y%m%d") + "2200" + secrets.token_hex(6))
    refunds: dict[str, int] = field(default_factory=dict)
    refund_times: dict[str, str] = field(default_factory=dict)
    refund_discounts: dict[str, int] = field(default_factory=dict)   # each refund's share of 商家优惠
    paid_at: str | None = None
    paid_clock: float | None = None
    created: str = field(default_factory=lambda: datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S"))
    expires: datetime | None = None
    royalty_freeze: bool = False                                          # held for alipay.trade.order.settle
    frozen: int = 0                                                       # what is still frozen for settling
    finished: bool = False                                                # royalty_finish: released, no more
    # Coupons the payer used (voucher_detail_list), amounts in fen: amount, merchant_contribute,
    # other_contribute, template_id, name, type.
    vouchers: list[dict[str, Any]] = field(default_factory=list)
    settles: dict[str, dict[str, Any]] = field(default_factory=dict)      # out_request_no -> settle

    def merchant_discount(self) -> int:
        """商家优惠: what the merchant put into its coupons (Alipay does not pay it)."""
        return sum(v["merchant_contribute"] for v in self.vouchers)

    def receipt(self) -> int:
        """商家实收: the order less the merchant's discounts."""
        return self.total - self.merchant_discount()

    def voucher_detail_list(self) -> list[dict[str, str]]:
        return [{"id": v["id"], "name": v["name"], "type": v["type"], "amount": wire.yuan(v["amount"]),
                 "merchant_contribute": wire.yuan(v["merchant_contribute"]),
                 "other_contribute": wire.yuan(v["other_contribute"]), "template_id": v["template_id"]}
                for v in self.vouchers]

    def settled(self) -> int:
        return sum(d["amount_fen"] for d in self.settles.values() if d.get("state") != "FAIL")


def now_text() -> str:
    return datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def service_fee(fen: int) -> int:
    return (fen * FEE_BPS + 5000) // 10000


class AlipaySimulator:
    service_fee_bps = FEE_BPS

    def __init__(self, *, app_id: str, app_public_key: rsa.RSAPublicKey, seller_id: str = "2088102177846880",
                 alipay_key: rsa.RSAPrivateKey | None = None, callback_time_scale: float = 1.0,
                 max_split_ratio_bps: int = 3000, now: Callable[[], datetime] | None = None,
                 bill_ready_hour: int | None = BILL_READY_HOUR, frozen_days: int = 30) -> None:
        self.app_id, self.app_public_key, self.seller_id = app_id, app_public_key, seller_id
        self.frozen_days = frozen_days
        self.alipay_key = alipay_key or wire.new_key()
        self.faults = Faults()
        self.callback_time_scale = callback_time_scale
        self.max_split_ratio_bps = max_split_ratio_bps
        self.now = now or (lambda: datetime.now(CHINA))
        self.bill_ready_hour = bill_ready_hour   # None: a day's bill at once (a suite that cannot wait a night)
        self.trades: dict[str, SimTrade] = {}
        self.codes: dict[str, dict[str, Any]] = {}      # precreated qr codes nobody has scanned yet
        self.moved: list[tuple[str, str, int]] = []     # (what, number, amount) each time money moved
        self.bills: dict[str, bytes] = {}
        self.held: list[tuple[str, bytes]] = []
        self.bound: dict[tuple[str, str], str] = {}      # (type, account) -> name: royalty receivers
        self.base_url = ""
        self.sender = CallbackSender()
        self.app = Starlette(routes=[
            Route("/gateway.do", self.gateway, methods=["GET", "POST"]),
            Route("/sim/orders/{out_trade_no}/pay", self.control_pay, methods=["POST"]),
            Route("/sim/orders/{out_trade_no}/scan", self.control_scan, methods=["POST"]),
            Route("/sim/app", self.control_app, methods=["POST"]),
            Route("/sim/bills/{token}", self.bill_file, methods=["GET"]),
            Route("/sim/faults", self.control_faults, methods=["POST"]),
        ])

    @property
    def alipay_public_pem(self) -> str:
        return wire.public_pem(self.alipay_key.public_key())

    def moved_for(self, what: str, number: str) -> int:
        """How many times money moved for one refund, settle or finish number (never above 1)."""
        return sum(1 for kind, no, _ in self.moved if kind == what and no == number)

    def _key(self) -> rsa.RSAPrivateKey:
        return wire.new_key() if self.faults.bad_signature else self.alipay_key

    def _answer(self, method: str, payload: dict[str, Any]) -> Response:
        return Response(wire.signed_response(self._key(), method, payload), 200,
                        media_type="application/json; charset=utf-8")

    @staticmethod
    def _fail(code: str, sub_code: str, sub_msg: str) -> dict[str, str]:
        msg = {"20000": "Service Currently Unavailable", "40004": "Business Failed"}.get(code, "Invalid Arguments")
        return {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}

    # ---- the one gateway ----

    async def gateway(self, request: Request) -> Response:
        self.base_url = str(request.base_url).rstrip("/")
        if self.faults.slow_ms:
            await asyncio.sleep(self.faults.slow_ms / 1000)
        if self.faults.server_errors > 0:
            self.faults.server_errors -= 1
            return Response(b"<html>502 Bad Gateway</html>", 502)
        params = dict(request.query_params)
        if request.method == "POST":
            params.update(dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True)))
        params.pop("charset_", None)
        method = params.get("method", "")
        if params.get("app_id") != self.app_id or not wire.verify_request(self.app_public_key, params):
            return self._answer(method or "error", {"code": "40002", "msg": "Invalid Arguments",
                                                    "sub_code": "isv.invalid-signature", "sub_msg": "验签出错"})
        try:
            biz = json.loads(params["biz_content"])
        except (KeyError, ValueError):
            return self._answer(method, self._fail("40002", "isv.missing-biz-content", "biz_content is required"))
        handler = {"alipay.trade.precreate": self.precreate, "alipay.trade.page.pay": self.page_pay,
                   "alipay.trade.wap.pay": self.page_pay, "alipay.trade.query": self.query,
                   "alipay.trade.close": self.close, "alipay.trade.refund": self.refund,
                   "alipay.trade.fastpay.refund.query": self.refund_query,
                   "alipay.data.dataservice.bill.downloadurl.query": self.bill_url,
                   "alipay.trade.royalty.relation.bind": self.bind, "alipay.trade.order.settle": self.settle,
                   "alipay.trade.order.settle.query": self.settle_query,
                   "alipay.trade.order.onsettle.query": self.onsettle_query,
                   "alipay.data.bill.accountlog.query": self.accountlog}.get(method)
        if handler is None:
            return self._answer(method, self._fail("40004", "isv.invalid-method", f"unknown method {method}"))
        fault = (self.faults.script.get(method) or [None]).pop(0) if self.faults.script.get(method) else None
        if fault and not fault.after:
            return self._faulted(method, fault)
        answer = await handler(method, biz, params)
        return self._faulted(method, fault) if fault else answer

    def _faulted(self, method: str, fault: Fault) -> Response:
        if fault.http_status:
            return Response(b"<html>Bad Gateway</html>", fault.http_status)
        if fault.code == "10000":   # accepted, nothing moved by this call (a refund's fund_change N)
            return self._answer(method, {"code": "10000", "msg": "Success", "fund_change": "N"})
        return self._answer(method, self._fail(fault.code, fault.sub_code, fault.sub_msg))

    def _expiry(self, biz: dict) -> datetime | None:
        try:
            return datetime.strptime(biz["time_expire"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
        except (KeyError, ValueError):
            return None

    def _open(self, biz: dict, params: dict) -> SimTrade | dict:
        """The payer opens (or scans) an order: the trade exists from now."""
        try:
            total = wire.fen(biz["total_amount"])
            out_trade_no = biz["out_trade_no"]
        except (KeyError, wire.WireError):
            return self._fail("40004", "ACQ.INVALID_PARAMETER", "out_trade_no and total_amount are required")
        trade = self.trades.get(out_trade_no)
        if trade is None:
            trade = self.trades[out_trade_no] = SimTrade(out_trade_no, total, biz.get("subject", ""),
                                                         params.get("notify_url"), expires=self._expiry(biz))
            trade.royalty_freeze = (biz.get("extend_params") or {}).get("royalty_freeze") == "true"
        elif trade.status != "WAIT_BUYER_PAY":
            sub = "ACQ.TRADE_HAS_CLOSE" if trade.status == "TRADE_CLOSED" else "ACQ.TRADE_HAS_SUCCESS"
            return self._fail("40004", sub, f"trade is {trade.status}")
        return trade

    async def precreate(self, method: str, biz: dict, params: dict) -> Response:
        """预下单: a code to scan. No trade exists until someone scans it."""
        out_trade_no = biz.get("out_trade_no")
        if not out_trade_no or not biz.get("total_amount"):
            return self._answer(method, self._fail("40004", "ACQ.INVALID_PARAMETER", "参数无效"))
        trade = self.trades.get(out_trade_no)
        if trade is not None and trade.status != "WAIT_BUYER_PAY":
            sub = "ACQ.TRADE_HAS_CLOSE" if trade.status == "TRADE_CLOSED" else "ACQ.TRADE_HAS_SUCCESS"
            return self._answer(method, self._fail("40004", sub, f"trade is {trade.status}"))
        self.codes[out_trade_no] = {"biz": biz, "params": params, "at": self.now()}
        return self._answer(method, {"code": "10000", "msg": "Success", "out_trade_no": out_trade_no,
                                     "qr_code": f"https://qr.alipay.com/bax{secrets.token_hex(10)}"})

    def scan(self, out_trade_no: str) -> SimTrade | dict:
        """A payer scans a precreated code: the trade is made now (if the code still lives)."""
        if out_trade_no in self.trades:
            return self.trades[out_trade_no]
        code = self.codes.get(out_trade_no)
        if code is None:
            return {"error": "no such code"}
        if self.now() > code["at"] + QR_LIFETIME:
            return {"error": "二维码已过期"}
        return self._open(code["biz"], code["params"])

    async def page_pay(self, method: str, biz: dict, params: dict) -> Response:
        trade = self._open(biz, params)
        if isinstance(trade, dict):
            return HTMLResponse(f"<p>{html.escape(trade['sub_msg'])}</p>", 409)
        return HTMLResponse(f"""<!doctype html><meta charset=utf-8><title>支付宝 (simulated)</title>
<h1>{html.escape(trade.subject)}</h1><p>¥{wire.yuan(trade.total)}</p>
<form method=post action="/sim/orders/{html.escape(trade.out_trade_no)}/pay">
<button name=outcome value=success>Pay</button> <button name=outcome value=fail>Cancel</button></form>""")

    def _view(self, trade: SimTrade, options: tuple[str, ...] = ()) -> dict[str, Any]:
        view = {"code": "10000", "msg": "Success", "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
                "trade_status": trade.status, "total_amount": wire.yuan(trade.total),
                "buyer_logon_id": "159****5620", "send_pay_date": trade.created}
        if trade.paid_at:
            view.update(receipt_amount=wire.yuan(trade.receipt()),
                        buyer_pay_amount=wire.yuan(trade.total - sum(v["amount"] for v in trade.vouchers)))
            if "voucher_detail_list" in options and trade.vouchers:   # listed only when asked for
                view["voucher_detail_list"] = trade.voucher_detail_list()
        return view

    async def query(self, method: str, biz: dict, params: dict) -> Response:
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if trade is None:
            return self._answer(method, self._fail("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在"))
        return self._answer(method, self._view(trade, tuple(biz.get("query_options") or ())))

    async def close(self, method: str, biz: dict, params: dict) -> Response:
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if trade is None:   # a code nobody scanned: nothing to close, and it may still be scanned
            return self._answer(method, self._fail("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在"))
        if trade.status != "WAIT_BUYER_PAY":
            return self._answer(method, self._fail("40004", "ACQ.TRADE_STATUS_ERROR", f"trade is {trade.status}"))
        trade.status = "TRADE_CLOSED"
        return self._answer(method, {"code": "10000", "msg": "Success", "trade_no": trade.trade_no,
                                     "out_trade_no": trade.out_trade_no})

    async def refund(self, method: str, biz: dict, params: dict) -> Response:
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if trade is None:
            return self._answer(method, self._fail("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在"))
        try:
            amount, request_no = wire.fen(biz["refund_amount"]), biz.get("out_request_no") or trade.out_trade_no
        except (KeyError, wire.WireError):
            return self._answer(method, self._fail("40004", "ACQ.INVALID_PARAMETER", "refund_amount is required"))
        fund_change = "N"
        if request_no in trade.refunds:   # the same request again moves nothing
            if trade.refunds[request_no] != amount:
                return self._answer(method, self._fail("40004", "ACQ.DISCORDANT_REPEAT_REQUEST", "不一致的请求"))
            if trade.status == "TRADE_CLOSED":
                return self._answer(method, self._fail("40004", "ACQ.TRADE_STATUS_ERROR", "交易状态非法"))
        else:
            if trade.status != "TRADE_SUCCESS":
                return self._answer(method, self._fail("40004", "ACQ.TRADE_STATUS_ERROR", "交易状态非法"))
            if amount <= 0:
                return self._answer(method, self._fail("40004", "ACQ.REASON_TRADE_REFUND_FEE_ERR", "退款金额无效"))
            if sum(trade.refunds.values()) + trade.settled() + amount > trade.total:
                return self._answer(method, self._fail("40004", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限"))
            refunded_before = sum(trade.refunds.values())
            share = trade.merchant_discount() - sum(trade.refund_discounts.values()) \
                if refunded_before + amount == trade.total else trade.merchant_discount() * amount // trade.total
            trade.refunds[request_no] = amount
            trade.refund_discounts[request_no] = share
            trade.refund_times[request_no] = self.now().strftime("%Y-%m-%d %H:%M:%S")
            if trade.royalty_freeze and not trade.finished:   # refunded from what is frozen first
                trade.frozen = max(0, trade.frozen - (amount - share))
            self.moved.append(("refund", request_no, amount))
            fund_change = "Y"
            if sum(trade.refunds.values()) == trade.total:
                trade.status = "TRADE_CLOSED"  # fully refunded trades close, as Alipay's do
            self.sender.background(self._notify(trade, {"out_biz_no": request_no, "gmt_refund": now_text(),
                                                        "refund_fee": wire.yuan(sum(trade.refunds.values()))}))
        return self._answer(method, {"code": "10000", "msg": "Success", "trade_no": trade.trade_no,
                                     "out_trade_no": trade.out_trade_no, "fund_change": fund_change,
                                     "refund_fee": wire.yuan(sum(trade.refunds.values()))})

    async def refund_query(self, method: str, biz: dict, params: dict) -> Response:
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if trade is None:
            return self._answer(method, self._fail("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在"))
        amount = trade.refunds.get(biz.get("out_request_no", ""))
        if amount is None:  # Alipay answers success with no refund fields when there is no such refund
            return self._answer(method, {"code": "10000", "msg": "Success"})
        return self._answer(method, {"code": "10000", "msg": "Success", "trade_no": trade.trade_no,
                                     "out_trade_no": trade.out_trade_no, "out_request_no": biz["out_request_no"],
                                     "refund_amount": wire.yuan(amount), "total_amount": wire.yuan(trade.total),
                                     "refund_status": "REFUND_SUCCESS"})

    # ---- royalty (分账): bind receivers, settle a frozen trade to them, finish it ----

    async def bind(self, method: str, biz: dict, params: dict) -> Response:
        try:
            for receiver in biz["receiver_list"]:
                assert receiver["type"] in ("userId", "loginName") and receiver["account"]
                self.bound[(receiver["type"], receiver["account"])] = receiver.get("name", "")
        except (KeyError, TypeError, AssertionError):
            return self._answer(method, self._fail("40004", "ACQ.INVALID_PARAMETER", "receiver_list is malformed"))
        return self._answer(method, {"code": "10000", "msg": "Success", "result_code": "SUCCESS"})

    def _frozen_trade(self, trade_no: Any) -> SimTrade | None:
        """The trade of an Alipay trade_no; one held frozen past `frozen_days` is released first, as Alipay
        does of itself ("系统默认在冻结 30 天后自动解冻")."""
        trade = next((t for t in self.trades.values() if t.trade_no == trade_no), None)
        if trade is not None and trade.royalty_freeze and not trade.finished and trade.paid_at and \
                self.now() >= datetime.strptime(trade.paid_at, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA) + \
                timedelta(days=self.frozen_days):
            released, trade.frozen, trade.finished = trade.frozen, 0, True
            self.moved.append(("finish", f"expired-{trade.trade_no}", released))
        return trade

    async def settle(self, method: str, biz: dict, params: dict) -> Response:
        trade = self._frozen_trade(biz.get("trade_no"))
        number = biz.get("out_request_no")
        royalties = biz.get("royalty_parameters") or []
        finish = (biz.get("extend_params") or {}).get("royalty_finish") == "true"
        if not number or len(royalties) > 1 or (not royalties and not finish):
            return self._answer(method, self._fail("40004", "ACQ.INVALID_PARAMETER", "royalty_parameters 无效"))
        if trade is None:
            return self._answer(method, self._fail("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在"))
        if number in trade.settles:   # the same request again: the same settle
            return self._answer(method, {"code": "10000", "msg": "Success", "trade_no": trade.trade_no,
                                         "settle_no": trade.settles[number]["settle_no"]})
        if trade.status != "TRADE_SUCCESS" or not trade.royalty_freeze:
            return self._answer(method, self._fail("40004", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法或未冻结"))
        if trade.finished:
            return self._answer(method, self._fail("40004", "ACQ.TRADE_STATUS_ERROR", "交易分账已完结"))
        detail: dict[str, Any] = {"settle_no": "2026" + secrets.token_hex(10), "amount_fen": 0}
        if royalties:
            royalty = royalties[0]
            try:
                amount, key = wire.fen(str(royalty["amount"])), (royalty["trans_in_type"], royalty["trans_in"])
            except (KeyError, TypeError, wire.WireError):
                return self._answer(method, self._fail("40004", "ACQ.INVALID_PARAMETER", "royalty_parameters 无效"))
            if key not in self.bound:
                return self._answer(method, self._fail("40004", "ACQ.INVALID_PARAMETER", "分账关系未绑定"))
            if (trade.settled() + amount) * 10000 > trade.total * self.max_split_ratio_bps or amount > trade.frozen:
                return self._answer(method, self._fail("40004", "ACQ.ALLOC_AMOUNT_VALIDATE_ERROR", "分账金额超限"))
            trade.frozen -= amount
            detail.update(operation_type="transfer", trans_in=key[1], amount_fen=amount, amount=royalty["amount"],
                          state="PROCESSING")
            self.moved.append(("settle", number, amount))
            self.sender.background(self._finish_settle(detail))
        trade.settles[number] = detail
        if finish:   # 本次分账处理完成后会把该笔交易的剩余冻结金额全额解冻
            released, trade.frozen, trade.finished = trade.frozen, 0, True
            self.moved.append(("finish", number, released))
        return self._answer(method, {"code": "10000", "msg": "Success", "trade_no": trade.trade_no,
                                     "settle_no": detail["settle_no"]})

    async def _finish_settle(self, detail: dict[str, Any]) -> None:
        await asyncio.sleep(0.05)
        detail.update(state="SUCCESS", execute_dt=now_text())

    async def settle_query(self, method: str, biz: dict, params: dict) -> Response:
        trade = next((t for t in self.trades.values() if t.trade_no == biz.get("trade_no")), None)
        if trade is None:
            return self._answer(method, self._fail("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在"))
        detail = trade.settles.get(biz.get("out_request_no", ""))
        details = [] if detail is None or "state" not in detail else [
            {k: v for k, v in detail.items() if k not in ("amount_fen", "settle_no")}]
        return self._answer(method, {"code": "10000", "msg": "Success", "out_request_no": biz.get("out_request_no"),
                                     "settle_no": detail["settle_no"] if detail else None, "royalty_detail_list": details})

    async def onsettle_query(self, method: str, biz: dict, params: dict) -> Response:
        """交易分账剩余可分账金额查询: what is still frozen for settling."""
        trade = self._frozen_trade(biz.get("trade_no"))
        if trade is None:
            return self._answer(method, self._fail("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在"))
        return self._answer(method, {"code": "10000", "msg": "Success", "unsettled_amount": wire.yuan(trade.frozen)})

    # ---- statements ----

    async def accountlog(self, method: str, biz: dict, params: dict) -> Response:
        """支付宝商家账户账务明细查询: the account's money movements in [start_time, end_time) (at most 31
        days), newest last, paged (page_no from 1, page_size up to 2000): a paid trade is 收入 of type 交易,
        an order settle (分账) that succeeded is 支出 of type 分账, its settle_no as alipay_order_no."""
        try:
            start, end = (datetime.strptime(biz[k], "%Y-%m-%d %H:%M:%S") for k in ("start_time", "end_time"))
            page_no, page_size = int(biz.get("page_no") or 1), int(biz.get("page_size") or 2000)
            assert start < end <= start + timedelta(days=31) and page_no >= 1 and 1 <= page_size <= 2000
        except (KeyError, ValueError, TypeError, AssertionError):
            return self._answer(method, self._fail("40004", "isv.invalid-arguments", "start_time/end_time/page 无效"))
        inside = lambda at: start <= datetime.strptime(at, "%Y-%m-%d %H:%M:%S") < end  # noqa: E731
        logs: list[dict[str, str]] = []
        for trade in self.trades.values():
            if trade.paid_at and inside(trade.paid_at):
                logs.append({"trans_dt": trade.paid_at, "type": "交易", "direction": "收入",
                             "alipay_order_no": trade.trade_no, "merchant_order_no": trade.out_trade_no,
                             "trans_amount": wire.yuan(trade.receipt()), "other_account": "159****5620"})
            for number, detail in trade.settles.items():
                if detail.get("state") == "SUCCESS" and inside(detail["execute_dt"]):
                    logs.append({"trans_dt": detail["execute_dt"], "type": "分账", "direction": "支出",
                                 "alipay_order_no": detail["settle_no"], "merchant_order_no": trade.out_trade_no,
                                 "biz_orig_no": trade.trade_no, "trans_amount": wire.yuan(detail["amount_fen"]),
                                 "other_account": detail["trans_in"]})
        logs.sort(key=lambda log: log["trans_dt"])
        for index, log in enumerate(logs):
            log["account_log_id"] = f"{index + 1:012d}"
        page = logs[(page_no - 1) * page_size:page_no * page_size]
        return self._answer(method, {"code": "10000", "msg": "Success", "page_no": str(page_no),
                                     "page_size": str(page_size), "total_size": str(len(logs)),
                                     "detail_list": page})

    def bill_zip(self, day: str) -> bytes | None:
        """The day's trade bill as Alipay serves it: a zip of two GBK CSVs, the detail file (preface,
        header, rows whose id cells end in a tab, trailer) and its summary, named in GBK."""
        rows, sales, refunds = [], [0, 0, 0], [0, 0, 0]   # count, 商家实收, 商家优惠
        yuan = wire.yuan
        for trade in self.trades.values():
            if trade.paid_at and trade.paid_at.startswith(day):
                channel_discount = sum(v["amount"] - v["merchant_contribute"] for v in trade.vouchers)
                rows.append([trade.trade_no + "\t", trade.out_trade_no + "\t", "交易", trade.subject, trade.created,
                             trade.paid_at, "", "", "", "", "159****5620", yuan(trade.total), yuan(trade.receipt()),
                             "0.00", "0.00", yuan(channel_discount), yuan(trade.merchant_discount()), "0.00", "",
                             "0.00", "0.00", "", "-" + yuan(service_fee(trade.receipt())), "0.00", ""])
                sales = [sales[0] + 1, sales[1] + trade.receipt(), sales[2] + trade.merchant_discount()]
            for request_no, amount in trade.refunds.items():
                if trade.refund_times[request_no].startswith(day):
                    share = trade.refund_discounts[request_no]
                    rows.append([trade.trade_no + "\t", trade.out_trade_no + "\t", "退款", trade.subject,
                                 trade.created, trade.refund_times[request_no], "", "", "", "", "159****5620",
                                 "-" + yuan(amount), "-" + yuan(amount - share), "0.00", "0.00", "0.00",
                                 ("-" + yuan(share)) if share else "0.00", "0.00", "", "0.00", "0.00",
                                 request_no + "\t", yuan(service_fee(amount - share)), "0.00", ""])
                    refunds = [refunds[0] + 1, refunds[1] + amount - share, refunds[2] + share]
        if not rows:
            return None
        compact = day.replace("-", "")
        y, m, d = day.split("-")
        detail = io.StringIO()
        detail.write(f"#支付宝业务明细查询\r\n#账号：[{self.seller_id}0156]\r\n"
                     f"#起始日期：[{y}年{m}月{d}日 00:00:00]   终止日期：[{y}年{m}月{d}日 23:59:59]\r\n"
                     "#-----------------------------------------业务明细列表----------------------------------------\r\n")
        writer = csv.writer(detail, lineterminator="\r\n")
        writer.writerow(DETAIL_HEADER)
        writer.writerows(rows)
        negative = lambda fen: ("-" + yuan(fen)) if fen else "0.00"  # noqa: E731
        detail.write("#-----------------------------------------业务明细列表结束------------------------------------\r\n"
                     f"#交易合计：{sales[0]}笔，商家实收共{yuan(sales[1])}元，商家优惠共{yuan(sales[2])}元\r\n"
                     f"#退款合计：{refunds[0]}笔，商家实收退款共{negative(refunds[1])}元，"
                     f"商家优惠退款共{negative(refunds[2])}元\r\n"
                     f"#导出时间：[{now_text()}]\r\n")
        summary = io.StringIO()
        writer = csv.writer(summary, lineterminator="\r\n")
        summary.write(f"#支付宝业务汇总查询\r\n#账号：[{self.seller_id}0156]\r\n")
        writer.writerow(["门店编号", "门店名称", "交易订单总笔数", "退款订单总笔数", "订单金额（元）", "商家实收（元）",
                         "服务费（元）", "实收净额（元）"])
        net = sales[1] - refunds[1]
        writer.writerow(["", "合计", sales[0], refunds[0], yuan(sales[1] + sales[2]), yuan(net), "-" + yuan(service_fee(net)),
                         yuan(net - service_fee(net))])
        summary.write(f"#导出时间：[{now_text()}]\r\n")
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, text in ((f"{self.seller_id}0156_{compact}_业务明细.csv", detail.getvalue()),
                               (f"{self.seller_id}0156_{compact}_业务明细(汇总).csv", summary.getvalue())):
                archive.writestr(_GbkNamed(name, date_time=datetime.now(CHINA).timetuple()[:6]), text.encode("gbk"),
                                 compress_type=zipfile.ZIP_DEFLATED)
        return out.getvalue()

    async def bill_url(self, method: str, biz: dict, params: dict) -> Response:
        day = biz.get("bill_date") or ""
        if biz.get("bill_type") != "trade" or len(day) != 10:
            return self._answer(method, self._fail("40004", "isp.bill_type_invalid", "bill_type must be trade"))
        try:
            ready = datetime.fromisoformat(day).replace(tzinfo=CHINA) + timedelta(days=1, hours=self.bill_ready_hour or 0)
        except ValueError:
            return self._answer(method, self._fail("40004", "isv.invalid-arguments", "bill_date"))
        if self.bill_ready_hour is not None and self.now() < ready:   # 不支持下载当日账单
            return self._answer(method, self._fail("40004", "isp.bill_not_exist", "账单不存在: 次日9点后生成"))
        content = self.bill_zip(day)
        if content is None:
            return self._answer(method, self._fail("40004", "isp.bill_not_exist", "账单不存在"))
        token = secrets.token_urlsafe(16)
        self.bills[token] = content
        return self._answer(method, {"code": "10000", "msg": "Success",
                                     "bill_download_url": f"{self.base_url}/sim/bills/{token}"})

    async def bill_file(self, request: Request) -> Response:
        content = self.bills.get(request.path_params["token"])
        if content is None:
            return Response(b"", 404)
        return Response(content, 200, media_type="application/zip")

    # ---- the payer ----

    async def control_app(self, request: Request) -> Response:
        params = dict(parse_qsl((await request.body()).decode()))
        if not wire.verify_request(self.app_public_key, params):
            return JSONResponse({"error": "the order string is not signed by the app"}, 400)
        trade = self._open(json.loads(params["biz_content"]), params)
        if isinstance(trade, dict):
            return JSONResponse(trade, 409)
        return JSONResponse({"out_trade_no": trade.out_trade_no})

    async def control_scan(self, request: Request) -> Response:
        trade = self.scan(request.path_params["out_trade_no"])
        if isinstance(trade, dict):
            return JSONResponse(trade, 409)
        return JSONResponse(self._view(trade))

    async def control_pay(self, request: Request) -> Response:
        out_trade_no = request.path_params["out_trade_no"]
        trade = self.trades.get(out_trade_no) or (self.scan(out_trade_no) if out_trade_no in self.codes else None)
        data = dict(await request.json()) if "json" in request.headers.get("content-type", "") else \
            dict(await request.form())
        outcome = data.get("outcome", "success")
        if trade is None:
            return JSONResponse({"error": "no such trade"}, 404)
        if isinstance(trade, dict):
            return JSONResponse(trade, 409)
        if trade.status == "WAIT_BUYER_PAY" and trade.expires and self.now() > trade.expires:
            trade.status = "TRADE_CLOSED"   # time_expire passed: 逾期将关闭交易
        if trade.status != "WAIT_BUYER_PAY":
            return JSONResponse({"error": f"trade is {trade.status}"}, 409)
        if outcome == "success":
            trade.vouchers = [_voucher(v) for v in data.get("vouchers") or []]
            if sum(v["amount"] for v in trade.vouchers) > trade.total:
                return JSONResponse({"error": "coupons exceed the order"}, 400)
            trade.status = "TRADE_SUCCESS"
            trade.paid_at = self.now().strftime("%Y-%m-%d %H:%M:%S")
            trade.paid_clock = time.time()
            if trade.royalty_freeze:   # the merchant's share, after its discounts and the fee, frozen
                trade.frozen = trade.receipt() - service_fee(trade.receipt())
            await self._notify(trade, {})
        return JSONResponse(self._view(trade))

    async def control_faults(self, request: Request) -> Response:
        data = await request.json()
        for method, faults in (data.pop("script", None) or {}).items():
            self.faults.script.setdefault(method, []).extend(Fault(**f) for f in faults)
        for key, value in data.items():
            if not hasattr(self.faults, key):
                return JSONResponse({"error": f"unknown fault {key}"}, 400)
            setattr(self.faults, key, value)
        return JSONResponse({})

    # ---- async notifies ----

    def notify_form(self, trade: SimTrade, extra: dict[str, str]) -> dict[str, str]:
        form = {"notify_time": now_text(), "notify_type": "trade_status_sync", "notify_id": secrets.token_hex(16),
                "app_id": self.app_id, "charset": "utf-8", "version": "1.0", "sign_type": "RSA2",
                "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "trade_status": trade.status,
                "total_amount": wire.yuan(trade.total), "receipt_amount": wire.yuan(trade.receipt()),
                "buyer_pay_amount": wire.yuan(trade.total - sum(v["amount"] for v in trade.vouchers)),
                "seller_id": self.seller_id,
                "subject": trade.subject, "gmt_create": trade.created, "gmt_payment": now_text(), **extra}
        if trade.vouchers:
            form["voucher_detail_list"] = json.dumps(trade.voucher_detail_list(), ensure_ascii=False)
        form["sign"] = wire.rsa_sign(self._key(), wire.signing_string(form, ("sign", "sign_type")))
        return form

    async def _notify(self, trade: SimTrade, extra: dict[str, str]) -> None:
        if not trade.notify_url or self.faults.callback_mode == "drop":
            return
        body = urlencode(self.notify_form(trade, extra)).encode()
        if self.faults.callback_mode == "reorder":  # hold it; the next one overtakes it
            self.held.append((trade.notify_url, body))
            if len(self.held) >= 2:
                held, self.held = self.held, []
                for url, held_body in reversed(held):
                    await self._deliver(url, held_body)
            return
        if self.faults.callback_mode == "delay":
            self.sender.background(self._deliver(trade.notify_url, body, self.faults.callback_delay_ms / 1000))
            return
        await self._deliver(trade.notify_url, body)
        if self.faults.callback_mode == "duplicate":
            await self._deliver(trade.notify_url, body)

    async def _deliver(self, url: str, body: bytes, delay: float = 0.0) -> None:
        # Anything but exactly "success" and Alipay sends it again, on its schedule.
        await self.sender.deliver(url, body, lambda: {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
                                  lambda response: response.content == b"success", delay,
                                  schedule=[wait * self.callback_time_scale for wait in NOTIFY_SCHEDULE])


class _GbkNamed(zipfile.ZipInfo):
    """A zip member named in GBK without the UTF-8 flag, as Alipay's bill archives are (Python's zipfile
    would otherwise write any non-ASCII name as UTF-8 and flag it)."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:   # noqa: N802  (zipfile's own hook)
        return self.filename.encode("gbk"), self.flag_bits & ~0x800


def _voucher(spec: dict[str, Any]) -> dict[str, Any]:
    """A coupon the payer uses: spec gives amount (fen), merchant_contribute (default: all of it),
    other_contribute, template_id."""
    amount = int(spec["amount"])
    merchant = int(spec.get("merchant_contribute", amount))
    return {"id": "2015102600073002039000002D5O" + secrets.token_hex(2), "name": spec.get("name", "优惠券"),
            "type": spec.get("type", "ALIPAY_FIX_VOUCHER"), "amount": amount, "merchant_contribute": merchant,
            "other_contribute": int(spec.get("other_contribute", amount - merchant)),
            "template_id": spec.get("template_id", "20171030000730015359000EMZP0")}


def standalone(workdir: Any, url: str) -> tuple[Starlette, str]:
    from pathlib import Path

    workdir = private_folder(Path(workdir))
    files = {n: workdir / f"{n}.pem" for n in ("app_private_key", "alipay_private_key", "alipay_public_key")}
    if not files["app_private_key"].exists():
        app_key, alipay_key = wire.new_key(), wire.new_key()
        write_private(files["app_private_key"], wire.private_pem(app_key))
        write_private(files["alipay_private_key"], wire.private_pem(alipay_key))
        write_private(files["alipay_public_key"], wire.public_pem(alipay_key.public_key()))
    app_key = wire.load_private_key(files["app_private_key"].read_text())
    sim = AlipaySimulator(app_id="2021000000000001", app_public_key=app_key.public_key(),
                          alipay_key=wire.load_private_key(files["alipay_private_key"].read_text()))
    block = f"""[[channel_accounts]]
id = "ali"
plugin = "alipay"
enabled = true
[channel_accounts.settings]
app_id = "2021000000000001"
app_private_key = "file:{files['app_private_key'].resolve()}"
alipay_public_key = "file:{files['alipay_public_key'].resolve()}"
seller_id = "{sim.seller_id}"
gateway_url = "{url}/gateway.do"
"""
    return sim.app, block
