"""Alipay's side of the OpenAPI, for tests and local development: one /gateway.do that verifies the
app's RSA2 signatures and answers signed JSON, a checkout page for page and wap pay, and async
notifies signed with Alipay's key, answered "success" or retried.

Control endpoints (not Alipay's): POST /sim/orders/{out_trade_no}/pay {"outcome": "success"|"fail"},
POST /sim/app (the order string, as the Alipay app receives it), POST /sim/faults.
"""
from __future__ import annotations

import asyncio
import csv
import html
import io
import json
import secrets

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
import zipfile
from typing import Any
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


@dataclass
class Faults:
    callback_mode: str = "normal"     # normal | drop | duplicate | delay | reorder
    callback_delay_ms: int = 300
    server_errors: int = 0            # answer this many next calls with a 502
    slow_ms: int = 0                  # answer every call this much later
    bad_signature: bool = False       # sign answers and notifies with a key nobody trusts


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
    paid_at: str | None = None
    created: str = field(default_factory=lambda: datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S"))
    royalty_freeze: bool = False                                          # held for alipay.trade.order.settle
    # Coupons the payer used (voucher_detail_list), amounts in fen: amount, merchant_contribute,
    # other_contribute, template_id, name, type.
    vouchers: list[dict[str, Any]] = field(default_factory=list)

    def receipt(self) -> int:
        """商家实收: the order less what the merchant put into its coupons."""
        return self.total - sum(v["merchant_contribute"] for v in self.vouchers)

    def voucher_detail_list(self) -> list[dict[str, str]]:
        return [{"id": v["id"], "name": v["name"], "type": v["type"], "amount": wire.yuan(v["amount"]),
                 "merchant_contribute": wire.yuan(v["merchant_contribute"]),
                 "other_contribute": wire.yuan(v["other_contribute"]), "template_id": v["template_id"]}
                for v in self.vouchers]
    settles: dict[str, dict[str, Any]] = field(default_factory=dict)      # out_request_no -> settle

    def settled(self) -> int:
        return sum(d["amount_fen"] for d in self.settles.values() if d["state"] != "FAIL")


def now_text() -> str:
    return datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S")


class AlipaySimulator:
    def __init__(self, *, app_id: str, app_public_key: rsa.RSAPublicKey, seller_id: str = "2088102177846880",
                 alipay_key: rsa.RSAPrivateKey | None = None) -> None:
        self.app_id, self.app_public_key, self.seller_id = app_id, app_public_key, seller_id
        self.alipay_key = alipay_key or wire.new_key()
        self.faults = Faults()
        self.trades: dict[str, SimTrade] = {}
        self.bills: dict[str, bytes] = {}
        self.held: list[tuple[str, bytes]] = []
        self.bound: dict[tuple[str, str], str] = {}      # (type, account) -> name: royalty receivers
        self.base_url = ""
        self.sender = CallbackSender()
        self.app = Starlette(routes=[
            Route("/gateway.do", self.gateway, methods=["GET", "POST"]),
            Route("/sim/orders/{out_trade_no}/pay", self.control_pay, methods=["POST"]),
            Route("/sim/app", self.control_app, methods=["POST"]),
            Route("/sim/bills/{token}", self.bill_file, methods=["GET"]),
            Route("/sim/faults", self.control_faults, methods=["POST"]),
        ])

    @property
    def alipay_public_pem(self) -> str:
        return wire.public_pem(self.alipay_key.public_key())

    def _key(self) -> rsa.RSAPrivateKey:
        return wire.new_key() if self.faults.bad_signature else self.alipay_key

    def _answer(self, method: str, payload: dict[str, Any]) -> Response:
        return Response(wire.signed_response(self._key(), method, payload), 200,
                        media_type="application/json; charset=utf-8")

    @staticmethod
    def _fail(code: str, sub_code: str, sub_msg: str) -> dict[str, str]:
        return {"code": code, "msg": "Business Failed", "sub_code": sub_code, "sub_msg": sub_msg}

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
                   "alipay.trade.order.settle.query": self.settle_query}.get(method)
        if handler is None:
            return self._answer(method, self._fail("40004", "isv.invalid-method", f"unknown method {method}"))
        return await handler(method, biz, params)

    def _open(self, biz: dict, params: dict) -> SimTrade | dict:
        try:
            total = wire.fen(biz["total_amount"])
            out_trade_no = biz["out_trade_no"]
        except (KeyError, wire.WireError):
            return self._fail("40004", "ACQ.INVALID_PARAMETER", "out_trade_no and total_amount are required")
        trade = self.trades.get(out_trade_no)
        if trade is None:
            trade = self.trades[out_trade_no] = SimTrade(out_trade_no, total, biz.get("subject", ""),
                                                         params.get("notify_url"))
            trade.royalty_freeze = (biz.get("extend_params") or {}).get("royalty_freeze") == "true"
        elif trade.status != "WAIT_BUYER_PAY":
            sub = "ACQ.TRADE_HAS_CLOSE" if trade.status == "TRADE_CLOSED" else "ACQ.TRADE_HAS_SUCCESS"
            return self._fail("40004", sub, f"trade is {trade.status}")
        return trade

    async def precreate(self, method: str, biz: dict, params: dict) -> Response:
        trade = self._open(biz, params)
        if isinstance(trade, dict):
            return self._answer(method, trade)
        return self._answer(method, {"code": "10000", "msg": "Success", "out_trade_no": trade.out_trade_no,
                                     "qr_code": f"https://qr.alipay.com/bax{secrets.token_hex(10)}"})

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
        if trade is None:
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
        if request_no not in trade.refunds:  # a repeated out_request_no is the same refund
            if trade.status not in ("TRADE_SUCCESS",):
                return self._answer(method, self._fail("40004", "ACQ.TRADE_STATUS_ERROR", "trade is not paid"))
            if sum(trade.refunds.values()) + trade.settled() + amount > trade.total:
                return self._answer(method, self._fail("40004", "ACQ.REFUND_AMOUNT_EXCEED", "退款金额超限"))
            trade.refunds[request_no] = amount
            trade.refund_times[request_no] = now_text()
            fund_change = "Y"
            self.sender.background(self._notify(trade, {"out_biz_no": request_no, "gmt_refund": now_text(),
                                                  "refund_fee": wire.yuan(sum(trade.refunds.values()))}))
        if sum(trade.refunds.values()) == trade.total:
            trade.status = "TRADE_CLOSED"  # fully refunded trades close, as Alipay's do
        return self._answer(method, {"code": "10000", "msg": "Success", "trade_no": trade.trade_no,
                                     "out_trade_no": trade.out_trade_no, "fund_change": fund_change,
                                     "refund_fee": wire.yuan(sum(trade.refunds.values()))})

    async def refund_query(self, method: str, biz: dict, params: dict) -> Response:
        trade = self.trades.get(biz.get("out_trade_no", ""))
        amount = trade.refunds.get(biz.get("out_request_no", "")) if trade else None
        if amount is None:  # Alipay answers success with no refund fields when there is no such refund
            return self._answer(method, {"code": "10000", "msg": "Success"})
        return self._answer(method, {"code": "10000", "msg": "Success", "out_trade_no": trade.out_trade_no,
                                     "out_request_no": biz["out_request_no"], "refund_amount": wire.yuan(amount),
                                     "total_amount": wire.yuan(trade.total), "refund_status": "REFUND_SUCCESS"})

    # ---- royalty (分账): bind receivers, settle a frozen trade to them ----

    async def bind(self, method: str, biz: dict, params: dict) -> Response:
        try:
            for receiver in biz["receiver_list"]:
                assert receiver["type"] in ("userId", "loginName") and receiver["account"]
                self.bound[(receiver["type"], receiver["account"])] = receiver.get("name", "")
        except (KeyError, TypeError, AssertionError):
            return self._answer(method, self._fail("40004", "ACQ.INVALID_PARAMETER", "receiver_list is malformed"))
        return self._answer(method, {"code": "10000", "msg": "Success", "result_code": "SUCCESS"})

    async def settle(self, method: str, biz: dict, params: dict) -> Response:
        trade = next((t for t in self.trades.values() if t.trade_no == biz.get("trade_no")), None)
        try:
            number, [royalty] = biz["out_request_no"], biz["royalty_parameters"]
            amount, key = wire.fen(royalty["amount"]), (royalty["trans_in_type"], royalty["trans_in"])
        except (KeyError, TypeError, ValueError, wire.WireError):
            return self._answer(method, self._fail("40004", "ACQ.INVALID_PARAMETER", "royalty_parameters malformed"))
        if trade is None or trade.status != "TRADE_SUCCESS":
            return self._answer(method, self._fail("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在或未支付"))
        if number not in trade.settles:
            if not trade.royalty_freeze:
                return self._answer(method, self._fail("40004", "ACQ.TRADE_NOT_ALLOW_SETTLE", "交易未冻结，不能分账"))
            if key not in self.bound:
                return self._answer(method, self._fail("40004", "ACQ.NO_ROYALTY_RELATION", "分账关系未绑定"))
            if sum(trade.refunds.values()) + trade.settled() + amount > trade.total:
                return self._answer(method, self._fail("40004", "ACQ.ALLOC_AMOUNT_VALIDATE_ERROR", "分账金额超限"))
            detail = trade.settles[number] = {"operation_type": "transfer", "trans_in": key[1], "amount_fen": amount,
                                              "amount": royalty["amount"], "state": "PROCESSING",
                                              "settle_no": "2026" + secrets.token_hex(10)}
            self.sender.background(self._finish_settle(detail))
        return self._answer(method, {"code": "10000", "msg": "Success", "trade_no": trade.trade_no,
                                     "settle_no": trade.settles[number]["settle_no"]})

    async def _finish_settle(self, detail: dict[str, Any]) -> None:
        await asyncio.sleep(0.05)
        detail.update(state="SUCCESS", execute_dt=now_text())

    async def settle_query(self, method: str, biz: dict, params: dict) -> Response:
        trade = next((t for t in self.trades.values() if t.trade_no == biz.get("trade_no")), None)
        if trade is None:
            return self._answer(method, self._fail("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在"))
        detail = trade.settles.get(biz.get("out_request_no", ""))
        details = [] if detail is None else [{k: v for k, v in detail.items() if k not in ("amount_fen", "settle_no")}]
        return self._answer(method, {"code": "10000", "msg": "Success", "out_request_no": biz.get("out_request_no"),
                                     "settle_no": detail["settle_no"] if detail else None, "royalty_detail_list": details})

    # ---- statements ----

    service_fee_bps = 60

    def bill_zip(self, day: str) -> bytes | None:
        """The day's trade bill as Alipay serves it: a zip of two GBK CSVs, the detail file (preface,
        header, rows whose id cells end in a tab, trailer) and its summary."""
        rows, sales, refunds = [], [0, 0], [0, 0]
        yuan = wire.yuan
        fee = lambda fen: (fen * self.service_fee_bps + 5000) // 10000  # noqa: E731
        for trade in self.trades.values():
            if trade.paid_at and trade.paid_at.startswith(day):
                rows.append([trade.trade_no + "\t", trade.out_trade_no + "\t", "交易", trade.subject, trade.created,
                             trade.paid_at, "", "", "", "", "159****5620", yuan(trade.total), yuan(trade.total),
                             "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00", "0.00", "",
                             "-" + yuan(fee(trade.total)), "0.00", ""])
                sales = [sales[0] + 1, sales[1] + trade.total]
            for request_no, amount in trade.refunds.items():
                if trade.refund_times[request_no].startswith(day):
                    rows.append([trade.trade_no + "\t", trade.out_trade_no + "\t", "退款", trade.subject,
                                 trade.created, trade.refund_times[request_no], "", "", "", "", "159****5620",
                                 "-" + yuan(amount), "-" + yuan(amount), "0.00", "0.00", "0.00", "0.00", "0.00", "",
                                 "0.00", "0.00", request_no + "\t", yuan(fee(amount)), "0.00", ""])
                    refunds = [refunds[0] + 1, refunds[1] + amount]
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
        detail.write("#-----------------------------------------业务明细列表结束------------------------------------\r\n"
                     f"#交易合计：{sales[0]}笔，商家实收共{yuan(sales[1])}元，商家优惠共0.00元\r\n"
                     f"#退款合计：{refunds[0]}笔，商家实收退款共{yuan(refunds[1])}元，商家优惠退款0.00元\r\n"
                     f"#导出时间：[{now_text()}]\r\n")
        summary = io.StringIO()
        writer = csv.writer(summary, lineterminator="\r\n")
        summary.write(f"#支付宝业务汇总查询\r\n#账号：[{self.seller_id}0156]\r\n")
        writer.writerow(["门店编号", "门店名称", "交易订单总笔数", "退款订单总笔数", "订单金额（元）", "商家实收（元）",
                         "服务费（元）", "实收净额（元）"])
        net = sales[1] - refunds[1]
        writer.writerow(["", "合计", sales[0], refunds[0], yuan(sales[1]), yuan(net), "-" + yuan(fee(net)),
                         yuan(net - fee(net))])
        summary.write(f"#导出时间：[{now_text()}]\r\n")
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{self.seller_id}0156_{compact}_业务明细.csv", detail.getvalue().encode("gbk"))
            archive.writestr(f"{self.seller_id}0156_{compact}_业务明细(汇总).csv", summary.getvalue().encode("gbk"))
        return out.getvalue()

    async def bill_url(self, method: str, biz: dict, params: dict) -> Response:
        if biz.get("bill_type") != "trade" or not biz.get("bill_date"):
            return self._answer(method, self._fail("40004", "isp.bill_type_invalid", "bill_type must be trade"))
        content = self.bill_zip(biz["bill_date"])
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

    async def control_pay(self, request: Request) -> Response:
        trade = self.trades.get(request.path_params["out_trade_no"])
        data = dict(await request.json()) if "json" in request.headers.get("content-type", "") else \
            dict(await request.form())
        outcome = data.get("outcome", "success")
        if trade is None:
            return JSONResponse({"error": "no such trade"}, 404)
        if trade.status != "WAIT_BUYER_PAY":
            return JSONResponse({"error": f"trade is {trade.status}"}, 409)
        if outcome == "success":
            trade.vouchers = [_voucher(v) for v in data.get("vouchers") or []]
            if sum(v["amount"] for v in trade.vouchers) > trade.total:
                return JSONResponse({"error": "coupons exceed the order"}, 400)
            trade.status = "TRADE_SUCCESS"
            trade.paid_at = now_text()
            await self._notify(trade, {})
        return JSONResponse(self._view(trade))

    async def control_faults(self, request: Request) -> Response:
        for key, value in (await request.json()).items():
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
        # Anything but exactly "success" and Alipay sends it again.
        await self.sender.deliver(url, body, lambda: {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
                                  lambda response: response.content == b"success", delay)


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



