"""UnionPay ACP 5.1.0 (gateway payment): the channel plugin.

- create (method `web`): a form the payer's browser posts to frontTransReq.do, signed here; nothing
  is sent until the payer opens it, so it is a local create.
- query: queryTrans.do by orderId and txnTime (the order's time, read from our out_trade_no).
- refund: backTransReq.do against the consume's queryId (asked for first): a full refund on the
  consume's own day (Beijing) is a same-day cancel (txnType 31, no refund fee, nothing reaches the
  card statement), anything else a refund (04); the answer's notification (reqReserved carries
  our out_trade_no) or a query settles it.
- payout (代付): backTransReq.do txnType 12, bizType 000401, the card number (accNo) encrypted with
  UnionPay's encryption certificate (`encrypt_cert`), the holder's name in customerInfo; the same
  orderId and txnTime sent again are the same payout; query and notifications settle it.
- notifications: form posts to backUrl, verified by their signPubKeyCert against UnionPay's root.
- statement: fileTransRequest.do, a zip with one '|'-separated line per transaction.
"""
from __future__ import annotations

import base64
import io
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, ClassVar, Mapping
from urllib.parse import parse_qsl, urlencode

import polars as pl
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.channel import (Acknowledgement, Capability, Channel, ChannelEvent, CreatePayment, InboundNotification,
                             NotificationRejected, Outcome, ParsedStatement, PaymentResult, PayoutRequest,
                             PayoutResult, RefundRequest, RefundResult, SettingsError, StatementInvalid,
                             StatementUnavailable, order_time)
from plugins.statements import empty_check, first_failure, normalized
from plugins.unionpay import wire

PRODUCTION = "https://gateway.95516.com"
UNKNOWN_CODES = ("03", "04", "05")      # ACP: "unknown, query later"


@dataclass(frozen=True)
class UnionPaySettings:
    mer_id: str
    sign_key: rsa.RSAPrivateKey
    cert_id: str
    trusted: tuple[x509.Certificate, ...]
    base_url: str
    front_url: str | None
    back_url: str | None
    encrypt_cert: x509.Certificate | None = None    # UnionPay's encryption certificate (payouts need it)


class UnionPayChannel(Channel):
    name = "unionpay"
    methods = ("web",)
    local_create_methods = ("web",)
    currencies = frozenset({"CNY"})
    capabilities = frozenset({Capability.PAY, Capability.QUERY, Capability.REFUND, Capability.REFUND_QUERY,
                              Capability.NOTIFY, Capability.STATEMENT, Capability.PAYOUT})
    KEYS: ClassVar[set[str]] = {"mer_id", "sign_cert", "verify_cert", "encrypt_cert", "front_url", "back_url",
                                "base_url"}

    @classmethod
    def parse_settings(cls, raw: Mapping[str, Any]) -> UnionPaySettings:
        unknown = set(raw) - cls.KEYS
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        mer_id = raw.get("mer_id")
        if not isinstance(mer_id, str) or not mer_id.isdigit() or len(mer_id) != 15:
            raise SettingsError("mer_id is required: UnionPay's 15-digit merchant number")
        sign = raw.get("sign_cert")
        if not isinstance(sign, Mapping) or not {"private_key", "cert_id"} <= set(sign):
            raise SettingsError("sign_cert is required: {private_key = PEM, cert_id = the signing certificate's serial}")
        try:
            key = wire.load_private_key(str(sign["private_key"]))
        except ValueError as exc:
            raise SettingsError(f"sign_cert.private_key: {exc}") from None
        if not str(sign["cert_id"]).isdigit():
            raise SettingsError("sign_cert.cert_id must be the certificate's serial number in decimal")
        try:
            trusted = tuple(wire.load_certs(str(raw.get("verify_cert", ""))))
        except ValueError as exc:
            raise SettingsError(f"verify_cert: UnionPay's root and intermediate certificates (PEM): {exc}") from None
        encrypt = None
        if raw.get("encrypt_cert"):
            try:
                encrypt = wire.load_certs(str(raw["encrypt_cert"]))[0]
            except (ValueError, IndexError) as exc:
                raise SettingsError(f"encrypt_cert: UnionPay's encryption certificate (PEM): {exc}") from None
        return UnionPaySettings(mer_id, key, str(sign["cert_id"]), trusted, str(raw.get("base_url", PRODUCTION)).rstrip("/"),
                                raw.get("front_url"), raw.get("back_url"), encrypt)

    @property
    def settings(self) -> UnionPaySettings:
        return self.ctx.settings

    def _common(self, txn_type: str, sub_type: str, order_id: str, at: datetime,
                biz_type: str = "000201") -> dict[str, str]:
        s = self.settings
        return {"version": "5.1.0", "encoding": "UTF-8", "txnType": txn_type, "txnSubType": sub_type,
                "bizType": biz_type, "accessType": "0", "channelType": "07", "merId": s.mer_id, "orderId": order_id,
                "txnTime": wire.bank_time(at)}

    def _time(self, reference: str) -> datetime:
        return order_time(reference) or self.ctx.clock.now()

    async def _post(self, path: str, fields: dict[str, str]) -> dict[str, str]:
        s = self.settings
        body = urlencode(wire.sign(fields, s.sign_key, s.cert_id))
        response = await self.ctx.http.post(s.base_url + path, content=body.encode(),
                                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        response.raise_for_status()
        answer = wire.parse_answer(response.text)
        wire.verify(answer, list(s.trusted), datetime.now(UTC))   # raises: an unverified answer decides nothing
        return answer

    # ---- payments ----

    async def create(self, request: CreatePayment) -> PaymentResult:
        s = self.settings
        fields = {**self._common("01", "01", request.out_trade_no, self._time(request.out_trade_no)),
                  "txnAmt": str(request.amount), "currencyCode": "156",
                  "frontUrl": s.front_url or f"{self.ctx.public_url.rstrip('/')}/",
                  "backUrl": s.back_url or self.ctx.notify_url, "reqReserved": request.out_trade_no}
        if request.expires_at:
            fields["payTimeout"] = wire.bank_time(request.expires_at)
        form = wire.sign(fields, s.sign_key, s.cert_id)
        return PaymentResult(Outcome.PENDING, action={"type": "form", "method": "POST",
                                                      "url": f"{s.base_url}/gateway/api/frontTransReq.do",
                                                      "fields": form})

    def _result(self, answer: Mapping[str, str]) -> PaymentResult:
        code = answer.get("origRespCode", answer.get("respCode"))
        if answer.get("respCode") == "34":          # no such order: the payer never posted the form
            return PaymentResult(Outcome.PENDING, error_code="34", error_message=answer.get("respMsg"))
        if answer.get("respCode") != "00":
            return PaymentResult(Outcome.UNKNOWN, error_code=answer.get("respCode"), error_message=answer.get("respMsg"))
        outcome = Outcome.SUCCEEDED if code == "00" else Outcome.PENDING if code in UNKNOWN_CODES else Outcome.FAILED
        return PaymentResult(outcome, channel_transaction_id=answer.get("queryId"), amount=int(answer["txnAmt"]),
                             currency="CNY" if answer.get("currencyCode", "156") == "156" else answer["currencyCode"],
                             error_code=None if outcome is not Outcome.FAILED else code)

    async def query(self, out_trade_no: str) -> PaymentResult:
        return self._result(await self._post("/gateway/api/queryTrans.do",
                                             self._common("00", "00", out_trade_no, self._time(out_trade_no))))

    # ---- refunds ----

    async def refund(self, request: RefundRequest) -> RefundResult:
        paid = await self.query(request.out_trade_no)
        if paid.outcome is not Outcome.SUCCEEDED or not paid.channel_transaction_id:
            return RefundResult(Outcome.FAILED if paid.outcome is Outcome.FAILED else Outcome.UNKNOWN,
                                error_code="original_not_paid", error_message="the consume is not known as paid")
        s = self.settings
        consumed = self._time(request.out_trade_no).astimezone(wire.BEIJING).date()
        same_day = request.amount == request.total_amount and consumed == self.ctx.clock.now().astimezone(
            wire.BEIJING).date()
        fields = {**self._common("31" if same_day else "04", "00", request.out_refund_no,
                                 self._time(request.out_refund_no)),
                  "txnAmt": str(request.amount), "origQryId": paid.channel_transaction_id,
                  "backUrl": s.back_url or self.ctx.notify_url, "reqReserved": request.out_trade_no}
        answer = await self._post("/gateway/api/backTransReq.do", fields)
        code = answer.get("respCode")
        if code == "00" or code in UNKNOWN_CODES:    # accepted: the notification (or a query) says when it is done
            return RefundResult(Outcome.PENDING, channel_refund_id=answer.get("queryId"))
        return RefundResult(Outcome.FAILED, error_code=code, error_message=answer.get("respMsg"))

    async def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundResult:
        result = self._result(await self._post("/gateway/api/queryTrans.do",
                                               self._common("00", "00", out_refund_no, self._time(out_refund_no))))
        return RefundResult(result.outcome if result.outcome is not Outcome.CLOSED else Outcome.FAILED,
                            channel_refund_id=result.channel_transaction_id, amount=result.amount,
                            error_code=result.error_code, error_message=result.error_message)

    # ---- payouts (代付) ----

    async def payout(self, request: PayoutRequest) -> PayoutResult:
        s = self.settings
        if s.encrypt_cert is None:
            return PayoutResult(Outcome.FAILED, error_code="encrypt_cert_missing",
                                error_message="payouts need UnionPay's encryption certificate (encrypt_cert)")
        fields = {**self._common("12", "00", request.out_payout_no, self._time(request.out_payout_no), "000401"),
                  "txnAmt": str(request.amount), "currencyCode": "156",
                  "accNo": wire.encrypt(request.account_no, s.encrypt_cert),
                  "encryptCertId": str(s.encrypt_cert.serial_number),
                  "customerInfo": wire.customer_info(customerNm=request.account_name),
                  "backUrl": s.back_url or self.ctx.notify_url}
        answer = await self._post("/gateway/api/backTransReq.do", fields)
        code = answer.get("respCode")
        if code == "00" or code in UNKNOWN_CODES:   # accepted: the notification (or a query) says how it ended
            return PayoutResult(Outcome.PENDING, channel_payout_id=answer.get("queryId"))
        return PayoutResult(Outcome.FAILED, error_code=code, error_message=answer.get("respMsg"))

    async def query_payout(self, out_payout_no: str) -> PayoutResult:
        fields = self._common("00", "00", out_payout_no, self._time(out_payout_no), "000401")
        answer = await self._post("/gateway/api/queryTrans.do", fields)
        if answer.get("respCode") == "34":          # no such order: it never reached UnionPay
            return PayoutResult(Outcome.UNKNOWN, error_code="34", error_message=answer.get("respMsg"), unheard=True)
        result = self._result(answer)
        return PayoutResult(result.outcome, channel_payout_id=result.channel_transaction_id,
                            error_code=result.error_code, error_message=result.error_message)

    # ---- notifications ----

    async def parse_notification(self, notification: InboundNotification) -> list[ChannelEvent]:
        try:
            fields = dict(parse_qsl(notification.body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            raise NotificationRejected("malformed_body", "the notification is not a form") from None
        try:
            wire.verify(fields, list(self.settings.trusted), datetime.now(UTC))
        except wire.WireError as exc:
            raise NotificationRejected(exc.reason, str(exc)) from None
        if fields.get("merId") != self.settings.mer_id:
            raise NotificationRejected("wrong_merchant", "the notification is for another merId")
        try:
            outcome = Outcome.SUCCEEDED if fields["respCode"] == "00" else Outcome.FAILED
            amount = int(fields["txnAmt"])
            if fields["txnType"] == "01":
                return [ChannelEvent("payment", fields["orderId"], outcome, amount=amount, currency="CNY",
                                     channel_transaction_id=fields.get("queryId"))]
            if fields["txnType"] == "12":
                return [ChannelEvent("payout", fields["orderId"], outcome, amount=amount,
                                     channel_transaction_id=fields.get("queryId"))]
            if fields["txnType"] in ("04", "31"):
                return [ChannelEvent("refund", fields["reqReserved"], outcome, amount=amount,
                                     out_refund_no=fields["orderId"], channel_refund_id=fields.get("queryId"))]
        except (KeyError, ValueError) as exc:
            raise NotificationRejected("malformed_body", f"the notification lacks {exc}") from None
        return []

    def acknowledge(self, accepted: bool, message: str = "") -> Acknowledgement:
        return Acknowledgement(200, b"ok") if accepted else Acknowledgement(400, message.encode()[:200])

    # ---- the daily statement ----

    async def download_statement(self, business_date: date) -> bytes:
        fields = {"version": "5.1.0", "encoding": "UTF-8", "txnType": "76", "txnSubType": "01", "bizType": "000000",
                  "accessType": "0", "merId": self.settings.mer_id, "settleDate": business_date.strftime("%m%d"),
                  "txnTime": wire.bank_time(self.ctx.clock.now()), "fileType": "00"}
        answer = await self._post("/gateway/api/fileTransRequest.do", fields)
        if answer.get("respCode") != "00":
            raise StatementUnavailable(f"{answer.get('respCode')}: {answer.get('respMsg')}")
        return base64.b64decode(answer["fileContent"])

    def parse_statement(self, content: bytes) -> ParsedStatement:
        return parse_file(content)

    @classmethod
    def standalone_simulator(cls, workdir: Any, url: str) -> tuple[Any, str]:
        """For `paymux simulate unionpay`: the simulator app and the account block to configure."""
        from plugins.unionpay.simulator import standalone

        return standalone(workdir, url)


def parse_file(content: bytes) -> ParsedStatement:
    """txnType|orderId|queryId|txnAmt|fee|time|origQryId|reqReserved per line, then TOTAL|n|paid|refunded
    (paid: consumes, refunded: refunds and cancels; n counts every line, payouts too)."""
    empty_check(content)
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            text = archive.read(archive.namelist()[0])
    except (zipfile.BadZipFile, IndexError, EOFError) as exc:
        raise StatementInvalid(f"the statement is not a readable zip ({exc})") from None
    lines = text.decode("utf-8", "replace").rstrip("\n").split("\n")
    total = lines[-1].split("|")
    if total[0] != "TOTAL" or len(total) != 4:
        raise StatementInvalid("truncated: the TOTAL line that ends the statement is missing", len(lines))
    cells = [line.split("|") for line in lines[:-1]]
    frame = pl.DataFrame({"line_no": list(range(1, len(cells) + 1)), "cells": cells},
                         schema={"line_no": pl.Int64, "cells": pl.List(pl.String)})
    first_failure(frame, frame["cells"].list.len() == 8, "line {line_no} does not have 8 fields")
    frame = frame.with_columns(pl.col("cells").list.to_struct(fields=[
        "txn_type", "order_id", "query_id", "amount", "fee", "time", "orig", "reserved"])).unnest("cells")
    for column in ("amount", "fee"):
        first_failure(frame, frame[column].str.contains(r"^\d{1,15}$"), f"{column} {{{column}!r}} is not in fen")
    # Payouts (12) are on the file too; they move the position, not the receivable: not matched here.
    payouts = frame.filter(pl.col("txn_type") == "12").height
    frame = frame.filter(pl.col("txn_type") != "12")
    refund = pl.col("txn_type").is_in(["04", "31"])
    frame = frame.with_columns(
        kind=pl.when(refund).then(pl.lit("refund")).otherwise(pl.lit("payment")),
        channel_transaction_id=pl.col("query_id"),
        out_trade_no=pl.when(refund).then(pl.col("reserved")).otherwise(pl.col("order_id")),
        out_refund_no=pl.when(refund).then(pl.col("order_id")).otherwise(None),
        amount=pl.col("amount").cast(pl.Int64),
        fee_millis=pl.col("fee").cast(pl.Int64) * pl.when(refund).then(-1000).otherwise(1000),
        status=pl.lit("succeeded"))
    return normalized(frame, {"rows": int(total[1]) - payouts, "payment_amount": int(total[2]),
                              "refund_amount": int(total[3])})
