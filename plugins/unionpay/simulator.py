"""UnionPay's side of ACP 5.1.0, for tests and local development. Written from UnionPay's SDK demos
and their notes (ACPSample_B2C, ACPSample_DaiFu), not from paymux's plugin; the codes are those of
《平台接入接口规范-第5部分-附录》 as the demos use them.

- POST /gateway/api/frontTransReq.do: the payer's browser posts the merchant's signed consume form
  (txnType 01); refused past its payTimeout. The order exists for queries once the payer has tried.
- POST /sim/orders/{orderId}/pay {"outcome": "success"|"fail"|"processing"|"a6"}: what the payer and
  the bank do. A success (respCode 00) or a defective success (A6) is notified; a declined card
  (64) is not (UnionPay notifies front transactions only when they succeed) and the payer may try
  again until payTimeout; "processing" leaves the order at 05, a bank payment not yet confirmed.
- POST /gateway/api/backTransReq.do: refund (04) and cancel (31) against a paid consume's queryId
  (a cancel only for the whole amount, within the consume's settlement day; else 39), 代付 (12,
  bizType 000401: accNo decrypted with an encryption key, accType 01 and customerInfo required), and
  the encryption certificate query (95). Answered at once (00: accepted), completed afterwards and
  notified success or failure (background transactions notify either). A transaction is merId +
  orderId + txnTime: the same three again are 12 (duplicate); txnTime must be the current time (10).
  A 代付 to a card ending 0000 fails with 61. paid_count: how often money really left, per orderId.
- POST /gateway/api/queryTrans.do: a transaction by orderId + txnTime: respCode 34 if there is
  none, else 00 with origRespCode, the transaction's own code.
- POST /files/: the file service (UnionPay's filedownload.95516.com): txnType 76, the settlement
  day's ZM file (settleDate MMDD, the latest such day; UnionPay's day turns at 23:00 Beijing).
- POST /sim/faults {"drop_notifications", "server_errors": n, "payout_answer_delay_ms": n,
  "payout_answer": respCode (a 代付 is answered so, taken as usual), "payout_hold": origRespCode
  (new 代付s stay there, never paid), "payout_return_days": n (the receiving bank sends every 代付
  paid from then on back, 退汇, n days after it was paid)}; POST /sim/encrypt_cert/rotate; GET /sim/payouts.

A return (退汇) is documented nowhere in UnionPay's published 代付 materials (docs/channels.md says
what is and is not); the simulator does what the nearest documents make of it. Once due (looked at
whenever a query or a file request comes), the 代付 is no longer paid: a query answers its
origRespCode 63 (卡状态不正确, the receiving card's state; the demos' table makes any code but 00, A6
and the "ask again" ones a failure) and a notification says so (background transactions notify when
they end, success or failure). The settlement day it came back on, the ZM file has a record of
交易类型 12 whose 结算金额 is a credit (C) of the amount, tied to the 代付 by 原交易查询流水号 and
原始交易订单号, fee nothing; the day it was paid keeps its debit record.
Every answer and notification is signed with UnionPay's signing certificate, which it carries
(signPubKeyCert), under the root a merchant trusts (trust_pem); blank fields are never sent.
"""
from __future__ import annotations

import asyncio
import html
import json
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from gateway.channel import Clock
from plugins.simulation import CallbackSender, SystemClock, private_folder, write_private
from plugins.unionpay import sim_files, wire
from plugins.unionpay.sim_files import Material, signed_amount

FEE_BPS = 60                    # the consume rate the simulator charges (refunds give their share back)
PAYOUT_FEE = 100                # fen per 代付
TXN_TIME_WINDOW = timedelta(minutes=10)
RETURNED_CODE = "63"            # a returned 代付's state as a query shows it (the simulator's choice: undocumented)
MESSAGES = {"00": "成功", "01": "交易失败", "03": "交易通讯超时，请发起查询交易", "04": "交易状态未明，请查询对账结果",
            "05": "交易已受理，请稍后查询交易结果", "10": "报文格式错误", "11": "验证签名失败", "12": "重复交易",
            "13": "报文交易要素缺失", "34": "查无此交易", "35": "原交易不存在或状态不正确", "36": "与原交易信息不符",
            "39": "交易不在受理时间范围内", "60": "交易失败，详情请咨询您的发卡行", "61": "输入的卡号无效，请确认后输入",
            "64": "卡上的余额不足", "98": "文件不存在", "A6": "有缺陷的成功"}


@dataclass
class SimOrder:
    order_id: str
    txn_time: str
    txn_type: str
    amount: int
    back_url: str = ""
    reserved: str = ""
    biz_type: str = "000201"
    code: str = ""                  # origRespCode as a query shows it; "" while the payer has not tried
    orig_query_id: str = ""
    pay_timeout: datetime | None = None
    finished: datetime | None = None
    fee: int = 0                    # fen the merchant pays (+) or gets back (-)
    return_due: datetime | None = None   # a paid 代付 the receiving bank sends back then (payout_return_days)
    returned: datetime | None = None     # when it came back: its success record stays on the day it was paid
    query_id: str = field(default_factory=lambda: datetime.now().strftime("%m%d%H%M%S") + secrets.token_hex(5)[:11])
    trace_no: str = field(default_factory=lambda: f"{secrets.randbelow(10 ** 6):06d}")

    @property
    def succeeded(self) -> bool:
        return self.code in ("00", "A6")


@dataclass
class Faults:
    drop_notifications: bool = False
    server_errors: int = 0
    payout_answer_delay_ms: int = 0
    payout_answer: str = ""
    payout_hold: str = ""
    payout_return_days: int | None = None


class UnionPaySimulator:
    def __init__(self, *, mer_id: str, merchant_cert_pem: str, material: Material | None = None,
                 clock: Clock | None = None, test_environment: bool = False) -> None:
        """material: UnionPay's keys and certificates kept from an earlier run (see standalone)."""
        self.mer_id = mer_id
        self.merchant_key = wire.load_certs(merchant_cert_pem)[0].public_key()
        self.material = material or Material.new(test_environment)
        self.clock = clock or SystemClock()
        self.enc_keys = {self.material.enc_cert.serial_number: self.material.enc_key}
        self.orders: dict[tuple[str, str], SimOrder] = {}
        self.paid_count: Counter[str] = Counter()
        self.payout_requests: Counter[str] = Counter()
        self.files: dict[str, bytes] = {}        # settleDate MMDD -> a zip served instead of the day's own
        self.received: list[dict[str, str]] = []  # every request whose signature verified, as it came
        self.faults = Faults()
        self.sender = CallbackSender()
        self.app = Starlette(routes=[
            Route("/gateway/api/frontTransReq.do", self.front, methods=["POST"]),
            Route("/gateway/api/backTransReq.do", self.back, methods=["POST"]),
            Route("/gateway/api/queryTrans.do", self.query, methods=["POST"]),
            Route("/files/", self.file, methods=["POST"]),
            Route("/sim/orders/{order_id}/pay", self.control_pay, methods=["POST"]),
            Route("/sim/faults", self.control_faults, methods=["POST"]),
            Route("/sim/payouts", self.control_payouts, methods=["GET"]),
            Route("/sim/encrypt_cert/rotate", self.control_rotate, methods=["POST"]),
        ])

    # certificates, as tests and the standalone block need them
    root = property(lambda self: self.material.root)
    middle = property(lambda self: self.material.middle)
    sign_cert = property(lambda self: self.material.sign_cert)
    sign_key = property(lambda self: self.material.sign_key)
    encrypt_cert = property(lambda self: self.material.enc_cert)

    @property
    def trust_pem(self) -> str:
        """What a merchant configures as verify_cert: UnionPay's root and intermediate certificates."""
        return wire.cert_pem(self.root) + wire.cert_pem(self.middle)

    def order(self, order_id: str) -> SimOrder | None:
        """The latest transaction under an orderId (whatever its txnTime)."""
        return next((o for (number, _), o in reversed(self.orders.items()) if number == order_id), None)

    # ---- the wire ----

    def signed(self, fields: dict[str, str], key: rsa.RSAPrivateKey | None = None,
               cert: x509.Certificate | None = None) -> dict[str, str]:
        fields = wire.signable({**fields, "signPubKeyCert": wire.cert_pem(cert or self.sign_cert), "signMethod": "01",
                                "version": "5.1.0", "encoding": "UTF-8"})
        fields["signature"] = wire.rsa_sign(key or self.sign_key, wire.digest(fields))
        return fields

    def answer(self, fields: dict[str, str]) -> Response:
        body = "&".join(f"{k}={v}" for k, v in self.signed(fields).items())   # k=v&…, values not encoded
        return Response(body.encode(), 200, media_type="text/plain;charset=UTF-8")

    def refusal(self, code: str, fields: dict[str, str], message: str = "") -> Response:
        return self.answer({"merId": self.mer_id, "orderId": fields.get("orderId", ""), "txnTime": fields.get("txnTime", ""),
                            "txnType": fields.get("txnType", ""), "respCode": code,
                            "respMsg": message or MESSAGES.get(code, "")})

    async def _read(self, request: Request) -> tuple[dict[str, str] | None, Response | None]:
        if self.faults.server_errors > 0:
            self.faults.server_errors -= 1
            return None, Response(b"system busy", 503)
        fields = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        if fields.get("merId") != self.mer_id or not wire.verify_with_key(fields, self.merchant_key):
            return None, self.refusal("11", fields)
        self.received.append(fields)
        return fields, None

    def _stale(self, fields: dict[str, str]) -> bool:
        """txnTime must be the time the request is sent (the demos: 必须取当前时间，否则会报txnTime无效)."""
        at = wire.read_bank_time(fields.get("txnTime"))
        return at is None or abs(self.clock.now() - at) > TXN_TIME_WINDOW

    def _finish(self, order: SimOrder, code: str) -> None:
        order.code, order.finished = code, self.clock.now()

    def view(self, order: SimOrder) -> dict[str, str]:
        """A transaction as notifications and query answers show it (respCode: its own code)."""
        fields = {"merId": self.mer_id, "orderId": order.order_id, "txnTime": order.txn_time, "txnType": order.txn_type,
                  "txnSubType": "01" if order.txn_type == "01" else "00", "bizType": order.biz_type,
                  "accessType": "0", "txnAmt": str(order.amount), "currencyCode": "156", "queryId": order.query_id,
                  "respCode": order.code, "respMsg": MESSAGES.get(order.code, ""), "reqReserved": order.reserved,
                  "origQryId": order.orig_query_id, "traceNo": order.trace_no}
        if order.finished is not None:
            fields.update(traceTime=wire.bank_time(order.finished)[4:],
                          settleDate=wire.settlement_day(order.finished).strftime("%m%d"))
            if order.succeeded:
                fields.update(settleAmt=str(order.amount), settleCurrencyCode="156")
        return fields

    async def notify(self, order: SimOrder) -> None:
        if self.faults.drop_notifications or not order.back_url:
            return
        body = "&".join(f"{k}={quote(v, safe='')}" for k, v in self.signed(self.view(order)).items()).encode()
        await self.sender.deliver(order.back_url, body, lambda: {"Content-Type": "application/x-www-form-urlencoded"},
                                  lambda response: response.status_code in (200, 302))

    # ---- the browser's form and the payer ----

    async def front(self, request: Request) -> Response:
        fields, error = await self._read(request)
        if error or fields.get("txnType") != "01":
            return HTMLResponse("<h1>交易失败</h1>", 400)
        timeout = wire.read_bank_time(fields.get("payTimeout"))
        if timeout is not None and self.clock.now() > timeout:
            return HTMLResponse("<h1>订单已超时</h1>", 400)
        key = (fields["orderId"], fields["txnTime"])
        order = self.orders.get(key) or SimOrder(fields["orderId"], fields["txnTime"], "01", int(fields["txnAmt"]),
                                                 fields.get("backUrl", ""), fields.get("reqReserved", ""),
                                                 pay_timeout=timeout)
        self.orders[key] = order
        return HTMLResponse(f"<h1>银联在线支付</h1><p>{html.escape(order.order_id)}: {order.amount / 100:.2f} 元</p>"
                            f"<form method=post action=/sim/orders/{html.escape(order.order_id)}/pay>"
                            "<button name=outcome value=success>支付</button></form>")

    async def control_pay(self, request: Request) -> Response:
        order = self.order(request.path_params["order_id"])
        now = self.clock.now()
        if order is None or order.txn_type != "01" or order.succeeded or order.code == "05" \
                or (order.pay_timeout is not None and now > order.pay_timeout):
            return Response(b'{"error":"no payable order"}', 409, media_type="application/json")
        outcome = "success"
        if "json" in request.headers.get("content-type", ""):
            outcome = (await request.json()).get("outcome", "success")
        code = {"success": "00", "a6": "A6", "processing": "05"}.get(outcome, "64")
        self._finish(order, code)
        if order.succeeded:
            order.fee = (order.amount * FEE_BPS + 5000) // 10000
            await self.notify(order)      # a front transaction is notified only when it succeeds
        return Response(b'{"ok":true}', 200, media_type="application/json")

    # ---- background transactions ----

    async def back(self, request: Request) -> Response:
        fields, error = await self._read(request)
        if error:
            return error
        kind = fields.get("txnType")
        if kind not in ("04", "31", "12", "95"):
            return self.refusal("10", fields)
        if self._stale(fields):
            return self.refusal("10", fields, "txnTime无效")
        if kind == "95":
            return self.answer({"merId": self.mer_id, "txnType": "95", "respCode": "00", "respMsg": "成功",
                                "certType": "01", "encryptPubKeyCert": wire.cert_pem(self.encrypt_cert),
                                "orderId": fields.get("orderId", ""), "txnTime": fields.get("txnTime", "")})
        if kind == "12":
            return await self.payout(fields)
        if (fields.get("orderId", ""), fields.get("txnTime", "")) in self.orders:
            return self.refusal("12", fields)
        original = next((o for o in self.orders.values() if o.query_id == fields.get("origQryId")), None)
        if original is None or original.txn_type != "01" or not original.succeeded:
            return self.refusal("35", fields)
        amount = int(fields.get("txnAmt", "0") or 0)
        taken = [o for o in self.orders.values() if o.orig_query_id == original.query_id and o.code in ("00", "05", "A6")]
        if amount <= 0 or amount + sum(o.amount for o in taken) > original.amount:
            return self.refusal("36", fields)
        if kind == "31" and (amount != original.amount or taken or original.finished is None
                             or wire.settlement_day(original.finished) != wire.settlement_day(self.clock.now())):
            return self.refusal("39", fields)   # a cancel is for the whole consume, within its settlement day
        order = SimOrder(fields["orderId"], fields["txnTime"], kind, amount, fields.get("backUrl", ""),
                         fields.get("reqReserved", ""), orig_query_id=original.query_id, code="05")
        order.fee = -(original.fee if kind == "31" else (amount * FEE_BPS + 5000) // 10000)
        self.orders[(order.order_id, order.txn_time)] = order
        answer = self.answer({**self.view(order), "respCode": "00", "respMsg": "成功"})
        self.sender.background(self._complete(order, "00"))
        return answer

    async def _complete(self, order: SimOrder, code: str) -> None:
        await asyncio.sleep(0.02)          # the money moves after the answer
        if order.txn_type == "12" and code == "00":
            self.paid_count[order.order_id] += 1
        self._finish(order, code)
        if order.txn_type == "12" and order.succeeded and self.faults.payout_return_days is not None:
            order.return_due = self.clock.now() + timedelta(days=self.faults.payout_return_days)
        await self.notify(order)

    def _returns_due(self) -> None:
        """The receiving bank's returns that are due by the clock: those 代付s come back now, notified."""
        now = self.clock.now()
        for order in self.orders.values():
            if order.return_due is not None and order.returned is None and order.return_due <= now:
                order.code, order.returned = RETURNED_CODE, now
                self.sender.background(self.notify(order))

    async def payout(self, fields: dict[str, str]) -> Response:
        self.payout_requests[fields.get("orderId", "")] += 1
        if (fields.get("orderId", ""), fields.get("txnTime", "")) in self.orders:
            return self.refusal("12", fields)
        key = self.enc_keys.get(int(fields["encryptCertId"])) if fields.get("encryptCertId", "").isdigit() else None
        try:
            card = wire.decrypt(fields["accNo"], key) if key else ""
            holder = wire.read_customer_info(fields["customerInfo"]).get("customerNm", "")
            amount = int(fields["txnAmt"])
        except (KeyError, ValueError) as exc:
            return self.refusal("10", fields, f"报文格式错误 {exc}")
        if not card or not holder or amount <= 0 or fields.get("accType") != "01" or fields.get("currencyCode") != "156":
            return self.refusal("13", fields)
        order = SimOrder(fields["orderId"], fields["txnTime"], "12", amount, fields.get("backUrl", ""),
                         fields.get("reqReserved", ""), biz_type="000401", code="05", fee=PAYOUT_FEE)
        self.orders[(order.order_id, order.txn_time)] = order
        if self.faults.payout_hold:
            order.code = self.faults.payout_hold             # stays there: never paid
        else:
            self.sender.background(self._complete(order, "61" if card.endswith("0000") else "00"))
        if self.faults.payout_answer_delay_ms:
            await asyncio.sleep(self.faults.payout_answer_delay_ms / 1000)
        code = self.faults.payout_answer or "00"
        return self.answer({**self.view(order), "respCode": code, "respMsg": MESSAGES.get(code, "")})

    async def query(self, request: Request) -> Response:
        fields, error = await self._read(request)
        if error:
            return error
        self._returns_due()
        order = self.orders.get((fields.get("orderId", ""), fields.get("txnTime", "")))
        if order is None or not order.code:
            return self.refusal("34", fields)
        view = self.view(order)
        return self.answer({**view, "respCode": "00", "respMsg": "成功", "origRespCode": view["respCode"],
                            "origRespMsg": view["respMsg"]})

    # ---- the file service ----

    async def file(self, request: Request) -> Response:
        fields, error = await self._read(request)
        if error:
            return error
        self._returns_due()
        day = fields.get("settleDate", "")
        if fields.get("txnType") != "76" or len(day) != 4 or not day.isdigit() or self._stale(fields):
            return self.refusal("10", fields)
        today = wire.settlement_day(self.clock.now())
        try:   # the latest such day that has begun: a day without transactions is an empty file
            settle = today.replace(month=int(day[:2]), day=int(day[2:]))
        except ValueError:
            return self.refusal("10", fields)
        if settle > today:
            settle = settle.replace(year=settle.year - 1)
        archive = self.files.get(day) or sim_files.zm_zip(self._records(day), self.mer_id, settle.strftime("%y%m%d"))
        return self.answer({"merId": self.mer_id, "txnType": "76", "respCode": "00", "respMsg": "成功",
                            "settleDate": day, "fileType": "00", "fileName": f"{self.mer_id}_{settle:%Y%m%d}.zip",
                            "fileContent": sim_files.file_content(archive)})

    def _records(self, day: str) -> list[bytes]:
        """The settlement day's successful transactions as ZM records, and the 代付s that came back."""
        records = []
        for o in self.orders.values():
            if o.returned is not None and wire.settlement_day(o.returned).strftime("%m%d") == day:
                records.append(self._return_record(o))
            if not (o.succeeded or o.returned) or o.finished is None \
                    or wire.settlement_day(o.finished).strftime("%m%d") != day:
                continue
            money = o.amount if o.txn_type == "01" else -o.amount
            original = next((c for c in self.orders.values() if c.query_id == o.orig_query_id), None)
            records.append(sim_files.zm_record({
                sim_files.TXN_CODE: {"01": "S56", "12": "S22"}.get(o.txn_type, "S30"),
                sim_files.ACQ_INS: "00049992", sim_files.FWD_INS: "00049992", sim_files.TRACE_NO: o.trace_no,
                sim_files.TRACE_TIME: wire.bank_time(o.finished)[4:], sim_files.ACC_NO: "621483******0018",
                sim_files.TXN_AMT: f"{o.amount:012d}", sim_files.MCC: "5311", sim_files.TERM_TYPE: "07",
                sim_files.QUERY_ID: o.query_id, sim_files.ORDER_ID: o.order_id, sim_files.FEE: signed_amount(-o.fee),
                sim_files.SETTLE_AMT: signed_amount(money - o.fee), sim_files.TXN_TYPE: o.txn_type,
                sim_files.TXN_SUB_TYPE: "01" if o.txn_type == "01" else "00", sim_files.BIZ_TYPE: o.biz_type,
                sim_files.ACC_TYPE: "01", sim_files.ORIG_QRY_ID: o.orig_query_id, sim_files.MER_ID: self.mer_id,
                sim_files.ORIG_ORDER_ID: original.order_id if original else ""}))
        return records

    def _return_record(self, o: SimOrder) -> bytes:
        """A returned 代付 on the day it came back: its amount credited back, no fee, tied to the 代付."""
        assert o.returned is not None
        return sim_files.zm_record({
            sim_files.TXN_CODE: "S22", sim_files.ACQ_INS: "00049992", sim_files.FWD_INS: "00049992",
            sim_files.TRACE_NO: o.trace_no, sim_files.TRACE_TIME: wire.bank_time(o.returned)[4:],
            sim_files.ACC_NO: "621483******0018", sim_files.TXN_AMT: f"{o.amount:012d}", sim_files.MCC: "5311",
            sim_files.TERM_TYPE: "07", sim_files.QUERY_ID: "R" + o.query_id[1:], sim_files.ORDER_ID: o.order_id,
            sim_files.FEE: signed_amount(0), sim_files.SETTLE_AMT: signed_amount(o.amount),
            sim_files.TXN_TYPE: "12", sim_files.TXN_SUB_TYPE: "00", sim_files.BIZ_TYPE: o.biz_type,
            sim_files.ACC_TYPE: "01", sim_files.ORIG_QRY_ID: o.query_id, sim_files.MER_ID: self.mer_id,
            sim_files.ORIG_ORDER_ID: o.order_id})

    # ---- controls ----

    async def control_faults(self, request: Request) -> Response:
        for key, value in (await request.json()).items():
            if hasattr(self.faults, key):
                setattr(self.faults, key, value)
        return Response(b"{}", 200, media_type="application/json")

    async def control_payouts(self, request: Request) -> Response:
        return Response(json.dumps(dict(self.paid_count)).encode(), 200, media_type="application/json")

    async def control_rotate(self, request: Request) -> Response:
        """UnionPay renews its encryption certificate; 代付s under the old one are still decrypted."""
        key = wire.new_key()
        cert = Material.leaf("041@Z12@00040000:SIGN@00000003", "CFCA OCA1", key, self.middle, self.material.mid_key)
        self.material.enc_key, self.material.enc_cert = key, cert
        self.enc_keys[cert.serial_number] = key
        return Response(json.dumps({"serial": str(cert.serial_number)}).encode(), 200, media_type="application/json")


def standalone(workdir: Any, url: str) -> tuple[Starlette, str]:
    """A simulator whose keys and certificates live in workdir (made on first run), and the TOML
    account block that points a gateway at it."""
    from pathlib import Path

    workdir = private_folder(Path(workdir))
    names = ("merchant", "root", "mid", "sign", "enc")
    if not (workdir / "sha1.chain").exists():   # a workdir from before the SHA-1 chain is made anew
        merchant_key = wire.new_key()
        merchant_cert = wire.issue(wire.entity_name("acp local merchant", "CFCA OCA1"), merchant_key, None, merchant_key,
                                   ca=False)
        m = Material.new()
        for name, key, cert in zip(names, (merchant_key, m.root_key, m.mid_key, m.sign_key, m.enc_key),
                                   (merchant_cert, m.root, m.middle, m.sign_cert, m.enc_cert)):
            write_private(workdir / f"{name}.key", wire.private_pem(key))
            write_private(workdir / f"{name}.crt", wire.cert_pem(cert))
        write_private(workdir / "trust.pem", wire.cert_pem(m.root) + wire.cert_pem(m.middle))
        write_private(workdir / "sha1.chain", "")
    keys = {n: wire.load_private_key((workdir / f"{n}.key").read_text()) for n in names}
    certs = {n: x509.load_pem_x509_certificate((workdir / f"{n}.crt").read_bytes()) for n in names}
    sim = UnionPaySimulator(mer_id=LOCAL_MER_ID, merchant_cert_pem=wire.cert_pem(certs["merchant"]), material=Material(
        keys["root"], keys["mid"], keys["sign"], keys["enc"], certs["root"], certs["mid"], certs["sign"], certs["enc"]))
    block = (f'[[channel_accounts]]\nid = "up"\nplugin = "unionpay"\n[channel_accounts.settings]\n'
             f'mer_id = "{LOCAL_MER_ID}"\nverify_cert = "file:{workdir.resolve()}/trust.pem"\n'
             f'encrypt_cert = "file:{workdir.resolve()}/enc.crt"\n'
             f'sign_cert = {{private_key = "file:{workdir.resolve()}/merchant.key", '
             f'cert_id = "{certs["merchant"].serial_number}"}}\nbase_url = "{url}"\nfile_url = "{url}/files/"\n')
    return sim.app, block


LOCAL_MER_ID = "777290058110048"
