"""UnionPay's side of ACP 5.1.0, for tests and local development.

- POST /gateway/api/frontTransReq.do: the payer's browser posts the merchant's signed form; the
  simulator checks it and shows a card page (Pay / Fail).
- POST /gateway/api/backTransReq.do: refund (txnType 04) and same-day cancel (31), answered at once
  (respCode 00: accepted) and completed by a background notification; payout (12, bizType 000401):
  accNo decrypted with UnionPay's encryption key, one payout per orderId however often it is sent
  (paid_count says how often money really left), a card ending in 0000 declined (respCode 14).
- POST /gateway/api/queryTrans.do: an order's state (origRespCode) by orderId + txnTime.
- POST /gateway/api/fileTransRequest.do: the day's statement (fileContent: Base64 of a zip).
- POST /sim/orders/{orderId}/pay {"outcome": "success"|"fail"}: what the payer does.
- POST /sim/faults {"drop_notifications": bool, "server_errors": n, "payout_answer_delay_ms": n}
  (the payout is taken and paid, its answer comes late: a client timeout).
- GET /sim/payouts: what was paid, per orderId.
Every answer and notification is signed with UnionPay's signing certificate, which it carries
(signPubKeyCert); the certificate chains to a root the merchant trusts (verify_cert).
"""
from __future__ import annotations

import asyncio
import base64
import html
import json
import io
import secrets
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from plugins.simulation import CallbackSender, private_folder, write_private
from plugins.unionpay import wire


@dataclass
class SimOrder:
    order_id: str
    txn_time: str
    amount: int
    back_url: str
    reserved: str = ""
    txn_type: str = "01"
    status: str = "WAIT"            # WAIT | SUCCESS | FAIL
    query_id: str = field(default_factory=lambda: "7" + secrets.token_hex(10))
    orig_query_id: str = ""
    finished_at: str = ""
    biz_type: str = "000201"


@dataclass
class Faults:
    drop_notifications: bool = False
    server_errors: int = 0
    payout_answer_delay_ms: int = 0


class UnionPaySimulator:
    def __init__(self, *, mer_id: str, merchant_cert_pem: str, material: dict[str, Any] | None = None) -> None:
        """material: UnionPay's keys and certificates kept from an earlier run (see standalone)."""
        self.mer_id = mer_id
        self.merchant_key = wire.load_certs(merchant_cert_pem)[0].public_key()
        if material:
            self.root_key, self.mid_key, self.sign_key = material["root_key"], material["mid_key"], material["sign_key"]
            self.root, self.middle, self.sign_cert = material["root"], material["middle"], material["sign_cert"]
            self.enc_key, self.encrypt_cert = material["enc_key"], material["enc_cert"]
        else:
            self.root_key, self.mid_key, self.sign_key = wire.new_key(), wire.new_key(), wire.new_key()
            self.root = wire.issue("CFCA ACS TEST OCA31", self.root_key, None, self.root_key, ca=True)
            self.middle = wire.issue("CFCA ACS TEST SM2 OCA33", self.mid_key, self.root, self.root_key, ca=True)
            self.sign_cert = wire.issue(f"{wire.UNIONPAY_NAME}:SIGN", self.sign_key, self.middle, self.mid_key,
                                        ca=False)
            self.enc_key = wire.new_key()
            self.encrypt_cert = wire.issue(f"{wire.UNIONPAY_NAME}:ENCRYPT", self.enc_key, self.middle, self.mid_key,
                                           ca=False)
        self.paid_count: dict[str, int] = {}
        self.orders: dict[str, SimOrder] = {}
        self.faults = Faults()
        self.sender = CallbackSender()
        self.app = Starlette(routes=[
            Route("/gateway/api/frontTransReq.do", self.front, methods=["POST"]),
            Route("/gateway/api/backTransReq.do", self.back, methods=["POST"]),
            Route("/gateway/api/queryTrans.do", self.query, methods=["POST"]),
            Route("/gateway/api/fileTransRequest.do", self.file, methods=["POST"]),
            Route("/sim/orders/{order_id}/pay", self.control_pay, methods=["POST"]),
            Route("/sim/faults", self.control_faults, methods=["POST"]),
            Route("/sim/payouts", self.control_payouts, methods=["GET"]),
        ])

    @property
    def trust_pem(self) -> str:
        """What a merchant configures as verify_cert: UnionPay's root and intermediate certificates."""
        return wire.cert_pem(self.root) + wire.cert_pem(self.middle)

    # ---- the wire ----

    def signed(self, fields: dict[str, str], key: rsa.RSAPrivateKey | None = None, cert: Any = None) -> dict[str, str]:
        fields = {**fields, "signPubKeyCert": wire.cert_pem(cert or self.sign_cert), "signMethod": "01",
                  "version": "5.1.0", "encoding": "UTF-8"}
        fields["signature"] = wire.rsa_sign(key or self.sign_key, wire.digest(fields))
        return fields

    def answer(self, fields: dict[str, str]) -> Response:
        signed = self.signed(fields)
        body = "&".join(f"{k}={v}" for k, v in signed.items())   # ACP answers are k=v&… (values not encoded)
        return Response(body.encode(), 200, media_type="text/plain;charset=UTF-8")

    async def _read(self, request: Request) -> tuple[dict[str, str] | None, Response | None]:
        if self.faults.server_errors > 0:
            self.faults.server_errors -= 1
            return None, Response(b"system busy", 503)
        fields = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        if fields.get("merId") != self.mer_id or not wire.verify_with_key(fields, self.merchant_key):
            return None, self.answer({"respCode": "11", "respMsg": "验证签名失败", "merId": fields.get("merId", "")})
        return fields, None

    # ---- the browser's form ----

    async def front(self, request: Request) -> Response:
        fields, error = await self._read(request)
        if error:
            return HTMLResponse("<h1>签名错误</h1>", 400)
        order = self.orders.get(fields["orderId"])
        if order is None:
            order = self.orders[fields["orderId"]] = SimOrder(fields["orderId"], fields["txnTime"], int(fields["txnAmt"]),
                                                              fields.get("backUrl", ""), fields.get("reqReserved", ""))
        return HTMLResponse(f"<h1>银联在线支付</h1><p>{html.escape(order.order_id)}: {order.amount / 100:.2f} 元</p>"
                            f"<form method=post action=/sim/orders/{html.escape(order.order_id)}/pay>"
                            "<button name=outcome value=success>支付</button></form>")

    async def control_pay(self, request: Request) -> Response:
        order = self.orders.get(request.path_params["order_id"])
        if order is None or order.status != "WAIT":
            return Response(b'{"error":"no payable order"}', 409, media_type="application/json")
        outcome = "success"
        if "json" in request.headers.get("content-type", ""):
            outcome = (await request.json()).get("outcome", "success")
        order.status = "SUCCESS" if outcome == "success" else "FAIL"
        order.finished_at = wire.bank_time(datetime.now(UTC))
        await self.notify(order)
        return Response(b'{"ok":true}', 200, media_type="application/json")

    async def notify(self, order: SimOrder) -> None:
        if self.faults.drop_notifications or not order.back_url:
            return
        fields = self.signed(self.view(order))
        body = "&".join(f"{k}={_quote(v)}" for k, v in fields.items()).encode()
        await self.sender.deliver(order.back_url, body, lambda: {"Content-Type": "application/x-www-form-urlencoded"},
                                  lambda response: response.status_code == 200)

    def view(self, order: SimOrder) -> dict[str, str]:
        code = {"SUCCESS": "00", "FAIL": "14" if order.txn_type == "12" else "01", "WAIT": "05"}[order.status]
        fields = {"merId": self.mer_id, "orderId": order.order_id, "txnTime": order.txn_time, "txnType": order.txn_type,
                  "txnSubType": "00" if order.txn_type != "01" else "01", "txnAmt": str(order.amount),
                  "currencyCode": "156", "queryId": order.query_id, "respCode": code, "respMsg": order.status,
                  "reqReserved": order.reserved, "accessType": "0", "bizType": order.biz_type}
        if order.orig_query_id:
            fields["origQryId"] = order.orig_query_id
        return fields

    # ---- background transactions ----

    async def back(self, request: Request) -> Response:
        fields, error = await self._read(request)
        if error:
            return error
        if fields.get("txnType") == "12":
            return await self.payout(fields)
        original = next((o for o in self.orders.values() if o.query_id == fields.get("origQryId")), None)
        if fields.get("txnType") not in ("04", "31") or original is None or original.status != "SUCCESS":
            return self.answer({"respCode": "12", "respMsg": "原交易不存在或状态不正确", "merId": self.mer_id,
                                "orderId": fields.get("orderId", "")})
        taken = sum(o.amount for o in self.orders.values() if o.orig_query_id == original.query_id and o.status != "FAIL")
        if int(fields["txnAmt"]) + taken > original.amount:
            return self.answer({"respCode": "12", "respMsg": "退货金额超限", "merId": self.mer_id,
                                "orderId": fields["orderId"]})
        order = self.orders.setdefault(fields["orderId"], SimOrder(
            fields["orderId"], fields["txnTime"], int(fields["txnAmt"]), fields.get("backUrl", ""),
            fields.get("reqReserved", ""), txn_type=fields["txnType"], orig_query_id=original.query_id))
        answer = self.answer({**self.view(order), "respCode": "00", "respMsg": "成功[0000000]"})
        order.status = "SUCCESS"              # the money moves after the answer; the notification says so
        order.finished_at = wire.bank_time(datetime.now(UTC))
        self.sender.background(self.notify(order))
        return answer

    async def payout(self, fields: dict[str, str]) -> Response:
        order = self.orders.get(fields.get("orderId", ""))
        if order is None:   # a payout sent again under its orderId is the same payout
            try:
                card = wire.decrypt(fields["accNo"], self.enc_key)
                holder = wire.read_customer_info(fields["customerInfo"]).get("customerNm", "")
                amount = int(fields["txnAmt"])
            except (KeyError, ValueError) as exc:
                return self.answer({"respCode": "30", "respMsg": f"报文格式错误 {exc}", "merId": self.mer_id,
                                    "orderId": fields.get("orderId", "")})
            if fields.get("encryptCertId") != str(self.encrypt_cert.serial_number) or not holder or amount <= 0:
                return self.answer({"respCode": "30", "respMsg": "报文格式错误", "merId": self.mer_id,
                                    "orderId": fields.get("orderId", "")})
            order = self.orders[fields["orderId"]] = SimOrder(
                fields["orderId"], fields["txnTime"], amount, fields.get("backUrl", ""), txn_type="12",
                biz_type="000401")
            if card.endswith("0000"):
                order.status = "FAIL"
                return self.answer({**self.view(order), "respCode": "14", "respMsg": "无效卡号"})
            order.status = "SUCCESS"          # paid now, told by notification after the answer
            order.finished_at = wire.bank_time(datetime.now(UTC))
            self.paid_count[order.order_id] = self.paid_count.get(order.order_id, 0) + 1
            self.sender.background(self.notify(order))
        if self.faults.payout_answer_delay_ms:
            await asyncio.sleep(self.faults.payout_answer_delay_ms / 1000)
        code = {"SUCCESS": "00", "FAIL": "14"}.get(order.status, "00")
        return self.answer({**self.view(order), "respCode": code, "respMsg": "成功" if code == "00" else "无效卡号"})

    async def control_payouts(self, request: Request) -> Response:
        return Response(json.dumps(self.paid_count).encode(), 200, media_type="application/json")

    async def query(self, request: Request) -> Response:
        fields, error = await self._read(request)
        if error:
            return error
        order = self.orders.get(fields.get("orderId", ""))
        if order is None or order.txn_time != fields.get("txnTime"):
            return self.answer({"respCode": "34", "respMsg": "查无此交易", "merId": self.mer_id,
                                "orderId": fields.get("orderId", "")})
        view = self.view(order)
        return self.answer({**view, "respCode": "00", "respMsg": "成功", "origRespCode": view["respCode"],
                            "origRespMsg": order.status})

    async def file(self, request: Request) -> Response:
        fields, error = await self._read(request)
        if error:
            return error
        day = fields.get("settleDate", "")   # MMDD
        rows = [o for o in self.orders.values() if o.status == "SUCCESS" and o.finished_at[4:8] == day]
        if not rows:
            return self.answer({"respCode": "98", "respMsg": "文件不存在", "merId": self.mer_id})
        return self.answer({"respCode": "00", "respMsg": "成功", "merId": self.mer_id, "settleDate": day,
                            "fileType": "00", "fileContent": base64.b64encode(statement_zip(rows, day)).decode()})

    async def control_faults(self, request: Request) -> Response:
        for key, value in (await request.json()).items():
            if hasattr(self.faults, key):
                setattr(self.faults, key, value)
        return Response(b"{}", 200, media_type="application/json")


def statement_zip(orders: list[SimOrder], day: str) -> bytes:
    """The day's statement: one fixed-order line per transaction (txnType, orderId, queryId, txnAmt
    in fen, fee in fen, time, original queryId), separated by '|', then a total line."""
    lines = [f"{o.txn_type}|{o.order_id}|{o.query_id}|{o.amount}|{(o.amount * 60 + 5000) // 10000}|{o.finished_at}|"
             f"{o.orig_query_id}|{o.reserved}" for o in orders]
    text = "\n".join(lines + [f"TOTAL|{len(lines)}|{sum(o.amount for o in orders if o.txn_type == '01')}|"
                              f"{sum(o.amount for o in orders if o.txn_type in ('04', '31'))}"]) + "\n"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(f"INN{day}01ZM_{len(lines)}", text.encode("utf-8"))
    return out.getvalue()


def standalone(workdir: Any, url: str) -> tuple[Starlette, str]:
    """A simulator whose keys and certificates live in workdir (made on first run), and the TOML
    account block that points a gateway at it."""
    from pathlib import Path

    from cryptography import x509

    workdir = private_folder(Path(workdir))
    names = ("merchant", "root", "mid", "sign", "enc")
    if not (workdir / "enc.crt").exists():   # (a workdir from before payouts is made anew)
        merchant_key = wire.new_key()
        merchant_cert = wire.issue("acp local merchant", merchant_key, None, merchant_key, ca=False)
        sim = UnionPaySimulator(mer_id=LOCAL_MER_ID, merchant_cert_pem=wire.cert_pem(merchant_cert))
        for name, key, cert in zip(names, (merchant_key, sim.root_key, sim.mid_key, sim.sign_key, sim.enc_key),
                                   (merchant_cert, sim.root, sim.middle, sim.sign_cert, sim.encrypt_cert)):
            write_private(workdir / f"{name}.key", wire.private_pem(key))
            write_private(workdir / f"{name}.crt", wire.cert_pem(cert))
        write_private(workdir / "trust.pem", sim.trust_pem)
    keys = {n: wire.load_private_key((workdir / f"{n}.key").read_text()) for n in names}
    certs = {n: x509.load_pem_x509_certificate((workdir / f"{n}.crt").read_bytes()) for n in names}
    sim = UnionPaySimulator(mer_id=LOCAL_MER_ID, merchant_cert_pem=wire.cert_pem(certs["merchant"]), material={
        "root_key": keys["root"], "mid_key": keys["mid"], "sign_key": keys["sign"], "root": certs["root"],
        "middle": certs["mid"], "sign_cert": certs["sign"], "enc_key": keys["enc"], "enc_cert": certs["enc"]})
    block = (f'[[channel_accounts]]\nid = "up"\nplugin = "unionpay"\n[channel_accounts.settings]\n'
             f'mer_id = "{LOCAL_MER_ID}"\nverify_cert = "file:{workdir.resolve()}/trust.pem"\n'
             f'encrypt_cert = "file:{workdir.resolve()}/enc.crt"\n'
             f'sign_cert = {{private_key = "file:{workdir.resolve()}/merchant.key", '
             f'cert_id = "{certs["merchant"].serial_number}"}}\nbase_url = "{url}"\n')
    return sim.app, block


LOCAL_MER_ID = "777290058110048"


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")
