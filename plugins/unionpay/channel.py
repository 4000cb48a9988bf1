"""UnionPay ACP 5.1.0 (gateway payment): the channel plugin. What each answer means is in answers.py,
with its source in UnionPay's SDK demos; the statement is read by statement.py.

- create (method `web`): a form the payer's browser posts to frontTransReq.do, signed here; nothing
  is sent until the payer opens it, so it is a local create. It always carries payTimeout (the
  order's expiry, or `pay_timeout_minutes` after its creation), echoed back in reqReserved, so a
  query can tell an order the payer may still pay from one UnionPay will no longer take.
- query: queryTrans.do by orderId and txnTime (the order's time, read from our out_trade_no). Only
  00 and A6 are paid; anything else stays open until payTimeout has passed.
- refund: backTransReq.do against the consume's queryId (asked for first). A full refund within
  the consume's own settlement day (UnionPay's day turns at 23:00 Beijing) is a cancel (txnType 31,
  no fee, never on the card statement), anything else a refund (04); a cancel UnionPay refuses is
  sent at once as a refund under its own orderId (statement.fallback_order_id).
- payout (代付): backTransReq.do txnType 12, bizType 000401, accType 01, the card number (accNo)
  encrypted with UnionPay's encryption certificate, refreshed once a day with a txnType 95 query
  and checked against the root; the holder's name in customerInfo. Never sent twice by the plugin.
  A return (退汇) has no documented answer: a query or notification after one can only say failed,
  which the core does not apply to a paid payout; the ZM file's credited 代付 record returns it
  (statement.py, docs/channels.md).
- notifications: form posts to backUrl, verified by their signPubKeyCert against UnionPay's root.
- statement: fileTransRequest (txnType 76) posted to the file service (`file_url`), inflated.
"""
from __future__ import annotations

import base64
import secrets
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Mapping
from urllib.parse import parse_qsl, urlencode

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.channel import (Acknowledgement, Capability, Channel, ChannelContext, ChannelEvent, CreatePayment,
                             InboundNotification, NotificationRejected, Outcome, ParsedStatement, PaymentResult,
                             PayoutRequest, PayoutResult, RefundRequest, RefundResult, SettingsError,
                             StatementUnavailable)
from plugins.unionpay import wire
from plugins.unionpay.answers import OUTCOME, Meaning, meaning, query
from plugins.references import order_time
from plugins.unionpay.statement import fallback_order_id, parse_zm, refund_no

PRODUCTION = "https://gateway.95516.com"
PRODUCTION_FILES = "https://filedownload.95516.com/"
TEST = "https://gateway.test.95516.com"
TEST_FILES = "https://filedownload.test.95516.com/"
CLOCK_SKEW = timedelta(minutes=2)         # past payTimeout by this much before "not paid" is final
ENCRYPT_CERT_REFRESH = timedelta(days=1)  # the SDK's daily encryption-certificate query (txnType 95)
ENCRYPT_CERT_RETRY = timedelta(hours=1)   # after a refresh that got no usable answer


@dataclass(frozen=True)
class UnionPaySettings:
    mer_id: str
    sign_key: rsa.RSAPrivateKey
    cert_id: str
    trusted: tuple[x509.Certificate, ...]
    base_url: str
    front_url: str | None
    back_url: str | None
    encrypt_cert: x509.Certificate | None = None    # UnionPay's encryption certificate (else asked for)
    file_url: str = PRODUCTION_FILES
    test_environment: bool = False
    pay_timeout: timedelta = timedelta(minutes=15)


class UnionPayChannel(Channel):
    name = "unionpay"
    methods = ("web",)
    local_create_methods = ("web",)
    currencies = frozenset({"CNY"})
    capabilities = frozenset({Capability.PAY, Capability.QUERY, Capability.REFUND, Capability.REFUND_QUERY,
                              Capability.NOTIFY, Capability.STATEMENT, Capability.PAYOUT})
    KEYS: ClassVar[set[str]] = {"mer_id", "sign_cert", "verify_cert", "encrypt_cert", "front_url", "back_url",
                                "base_url", "file_url", "test_environment", "pay_timeout_minutes"}

    def __init__(self, ctx: ChannelContext) -> None:
        super().__init__(ctx)
        self._encrypt: tuple[x509.Certificate | None, datetime | None] = (ctx.settings.encrypt_cert, None)

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
        if not any(c.subject == c.issuer for c in trusted):
            raise SettingsError("verify_cert must hold UnionPay's root certificate (and its intermediate)")
        encrypt = None
        if raw.get("encrypt_cert"):
            try:
                encrypt = wire.load_certs(str(raw["encrypt_cert"]))[0]
            except (ValueError, IndexError) as exc:
                raise SettingsError(f"encrypt_cert: UnionPay's encryption certificate (PEM): {exc}") from None
        test = raw.get("test_environment", False)
        if not isinstance(test, bool):
            raise SettingsError("test_environment must be true or false")
        minutes = raw.get("pay_timeout_minutes", 15)
        if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= 7 * 24 * 60:
            raise SettingsError("pay_timeout_minutes must be a whole number of minutes, 1 to 10080")
        return UnionPaySettings(
            mer_id, key, str(sign["cert_id"]), trusted, str(raw.get("base_url", TEST if test else PRODUCTION)).rstrip("/"),
            raw.get("front_url"), raw.get("back_url"), encrypt, str(raw.get("file_url", TEST_FILES if test else PRODUCTION_FILES)),
            test, timedelta(minutes=minutes))

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
        """An order's txnTime: when paymux made the number, which it sends at once. A number is never sent
        later than that: a send after a delay is a new number made then (the current time)."""
        return order_time(reference) or self.ctx.clock.now()

    async def _post(self, url: str, fields: dict[str, str]) -> dict[str, str]:
        s = self.settings
        body = urlencode(wire.sign(fields, s.sign_key, s.cert_id))
        response = await self.ctx.http.post(url, content=body.encode(),
                                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        response.raise_for_status()
        answer = wire.parse_answer(response.text)
        # raises: an unverified answer decides nothing
        wire.verify(answer, list(s.trusted), self.ctx.clock.now(), test_environment=s.test_environment)
        return answer

    async def _back(self, fields: dict[str, str]) -> dict[str, str]:
        return await self._post(f"{self.settings.base_url}/gateway/api/backTransReq.do", fields)

    async def _query(self, order_id: str, at: datetime, biz_type: str = "000201") -> dict[str, str]:
        return await self._post(f"{self.settings.base_url}/gateway/api/queryTrans.do",
                                self._common("00", "00", order_id, at, biz_type))

    # ---- payments ----

    async def create(self, request: CreatePayment) -> PaymentResult:
        s = self.settings
        timeout = request.expires_at or self._time(request.out_trade_no) + s.pay_timeout
        fields = {**self._common("01", "01", request.out_trade_no, self._time(request.out_trade_no)),
                  "txnAmt": str(request.amount), "currencyCode": "156",
                  "frontUrl": s.front_url or f"{self.ctx.public_url.rstrip('/')}/",
                  "backUrl": s.back_url or self.ctx.notify_url,
                  "payTimeout": wire.bank_time(timeout), "reqReserved": wire.bank_time(timeout)}
        form = wire.sign(fields, s.sign_key, s.cert_id)
        return PaymentResult(Outcome.PENDING, action={"type": "form", "method": "POST",
                                                      "url": f"{s.base_url}/gateway/api/frontTransReq.do",
                                                      "fields": form})

    def _consume(self, answer: Mapping[str, str]) -> PaymentResult:
        found = query("consume_query", dict(answer))
        code = answer.get("origRespCode") if answer.get("respCode") == "00" else answer.get("respCode")
        if found is Meaning.OPEN_UNTIL_TIMEOUT:
            # Not paid: UnionPay takes no payment after payTimeout (echoed in reqReserved), so only then is it final.
            deadline = wire.read_bank_time(answer.get("reqReserved"))
            found = Meaning.FAILED if deadline and self.ctx.clock.now() > deadline + CLOCK_SKEW else Meaning.ASK_AGAIN
        outcome = OUTCOME[found]
        if answer.get("respCode") != "00" or outcome is Outcome.PENDING:
            return PaymentResult(outcome, error_code=code, error_message=answer.get("origRespMsg") or answer.get("respMsg"))
        return PaymentResult(outcome, channel_transaction_id=answer.get("queryId"), amount=int(answer["txnAmt"]),
                             currency="CNY" if answer.get("currencyCode", "156") == "156" else answer["currencyCode"],
                             error_code=None if outcome is Outcome.SUCCEEDED else code,
                             error_message=None if outcome is Outcome.SUCCEEDED else answer.get("origRespMsg"))

    async def query(self, out_trade_no: str) -> PaymentResult:
        return self._consume(await self._query(out_trade_no, self._time(out_trade_no)))

    # ---- refunds and cancels ----

    def _settlement_mmdd(self, answer: Mapping[str, str], reference: str) -> str:
        """The consume's settlement day as UnionPay says it (settleDate), or as its day-cut makes it."""
        if (answer.get("settleDate") or "").isdigit():
            return answer["settleDate"]
        return wire.settlement_day(self._time(reference)).strftime("%m%d")

    async def refund(self, request: RefundRequest) -> RefundResult:
        consume = await self._query(request.out_trade_no, self._time(request.out_trade_no))
        paid = self._consume(consume)
        if paid.outcome is not Outcome.SUCCEEDED or not paid.channel_transaction_id:
            return RefundResult(Outcome.FAILED if paid.outcome is Outcome.FAILED else Outcome.UNKNOWN,
                                error_code="original_not_paid", error_message="the consume is not known as paid")
        s = self.settings
        today = wire.settlement_day(self.ctx.clock.now()).strftime("%m%d")
        whole = request.amount == request.total_amount
        at = self._time(request.out_refund_no)

        def back(txn_type: str, order_id: str) -> dict[str, str]:
            return {**self._common(txn_type, "00", order_id, at), "txnAmt": str(request.amount),
                    "currencyCode": "156", "origQryId": paid.channel_transaction_id,
                    "backUrl": s.back_url or self.ctx.notify_url, "reqReserved": request.out_trade_no}

        if whole and self._settlement_mmdd(consume, request.out_trade_no) == today:
            answer = await self._back(back("31", request.out_refund_no))
            if meaning("refund_request", "respCode", answer.get("respCode")) is not Meaning.FAILED:
                return self._refund_answer(answer)
            # A refused cancel did nothing; the same money goes back as a refund, under its own orderId.
            return self._refund_answer(await self._back(back("04", fallback_order_id(request.out_refund_no))))
        return self._refund_answer(await self._back(back("04", request.out_refund_no)))

    @staticmethod
    def _refund_answer(answer: Mapping[str, str]) -> RefundResult:
        found = meaning("refund_request", "respCode", answer.get("respCode"))
        if found is Meaning.FAILED:
            return RefundResult(Outcome.FAILED, error_code=answer.get("respCode"), error_message=answer.get("respMsg"))
        return RefundResult(Outcome.PENDING, channel_refund_id=answer.get("queryId"))   # the notification says when

    def _refund_state(self, answer: Mapping[str, str]) -> RefundResult:
        outcome = OUTCOME[query("refund_query", dict(answer))]
        code = answer.get("origRespCode") if answer.get("respCode") == "00" else answer.get("respCode")
        return RefundResult(outcome, channel_refund_id=answer.get("queryId"),
                            amount=int(answer["txnAmt"]) if outcome is Outcome.SUCCEEDED else None,
                            error_code=None if outcome is Outcome.SUCCEEDED else code,
                            error_message=answer.get("origRespMsg") or answer.get("respMsg"))

    async def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundResult:
        at = self._time(out_refund_no)
        first = await self._query(out_refund_no, at)
        state = self._refund_state(first)
        cancel_failed = first.get("txnType") == "31" and state.outcome is Outcome.FAILED
        if not (cancel_failed or first.get("respCode") == "34"):
            return state
        # A cancel UnionPay refused (or never took) may have gone again as a refund under its fallback orderId.
        fallback = await self._query(fallback_order_id(out_refund_no), at)
        if fallback.get("respCode") != "34":
            return self._refund_state(fallback)
        # Not known as a refund (yet): a lost answer may still be on its way, so this is not a failure.
        return RefundResult(Outcome.PENDING if state.outcome is not Outcome.UNKNOWN else Outcome.UNKNOWN,
                            error_code=state.error_code, error_message=state.error_message)

    # ---- payouts (代付) ----

    async def _encryption_cert(self) -> x509.Certificate | None:
        """UnionPay's encryption certificate, asked for again once a day (txnType 95, as the SDK's
        EncryptCerUpdateQuery and updateEncryptCert do) and used only if it chains to the root."""
        cert, checked = self._encrypt
        now = self.ctx.clock.now()
        if checked is not None and now - checked < ENCRYPT_CERT_REFRESH:
            return cert
        s = self.settings
        fields = {"version": "5.1.0", "encoding": "UTF-8", "txnType": "95", "txnSubType": "00", "bizType": "000000",
                  "channelType": "07", "certType": "01", "accessType": "0", "merId": s.mer_id,
                  "orderId": f"{int(now.timestamp() * 1000):012x}{secrets.token_hex(10)}", "txnTime": wire.bank_time(now)}
        try:
            answer = await self._back(fields)
            fresh = wire.load_certs(answer.get("encryptPubKeyCert", ""))[0] \
                if answer.get("respCode") == "00" and answer.get("certType") == "01" else None
            if fresh is not None:
                wire.check_chain(fresh, list(s.trusted), now, purpose="encrypt")
                cert = fresh
            self._encrypt = (cert, now if fresh is not None else now - ENCRYPT_CERT_REFRESH + ENCRYPT_CERT_RETRY)
        except Exception as exc:  # noqa: BLE001  the certificate we have still serves; ask again later
            self.ctx.log.warning("unionpay.encrypt_cert_refresh_failed", channel_account=self.ctx.account_id,
                                 error=type(exc).__name__, detail=str(exc)[:200])
            self._encrypt = (cert, now - ENCRYPT_CERT_REFRESH + ENCRYPT_CERT_RETRY)
        return cert

    async def payout(self, request: PayoutRequest) -> PayoutResult:
        cert = await self._encryption_cert()
        if cert is None:
            return PayoutResult(Outcome.UNKNOWN, error_code="encrypt_cert_missing", not_sent=True,
                                error_message="UnionPay's encryption certificate is neither configured nor answered")
        s = self.settings
        fields = {**self._common("12", "00", request.out_payout_no, self._time(request.out_payout_no), "000401"),
                  "txnAmt": str(request.amount), "currencyCode": "156", "accType": "01",
                  "accNo": wire.encrypt(request.account_no, cert), "encryptCertId": str(cert.serial_number),
                  "customerInfo": wire.customer_info(customerNm=request.account_name),
                  "backUrl": s.back_url or self.ctx.notify_url}
        answer = await self._back(fields)
        code = answer.get("respCode")
        if meaning("payout_request", "respCode", code) is Meaning.FAILED:
            return PayoutResult(Outcome.FAILED, error_code=code, error_message=answer.get("respMsg"))
        return PayoutResult(Outcome.PENDING, channel_payout_id=answer.get("queryId"), error_code=code)

    async def query_payout(self, out_payout_no: str) -> PayoutResult:
        answer = await self._query(out_payout_no, self._time(out_payout_no), "000401")
        found = query("payout_query", answer)
        code = answer.get("origRespCode") if answer.get("respCode") == "00" else answer.get("respCode")
        return PayoutResult(OUTCOME[found], channel_payout_id=answer.get("queryId"),
                            error_code=None if found is Meaning.SUCCEEDED else code,
                            error_message=answer.get("origRespMsg") or answer.get("respMsg"),
                            unheard=answer.get("respCode") == "34")

    # ---- notifications ----

    async def parse_notification(self, notification: InboundNotification) -> list[ChannelEvent]:
        try:
            fields = dict(parse_qsl(notification.body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            raise NotificationRejected("malformed_body", "the notification is not a form") from None
        try:
            wire.verify(fields, list(self.settings.trusted), self.ctx.clock.now(),
                        test_environment=self.settings.test_environment)
        except wire.WireError as exc:
            raise NotificationRejected(exc.reason, str(exc)) from None
        if fields.get("merId") != self.settings.mer_id:
            raise NotificationRejected("wrong_merchant", "the notification is for another merId")
        try:
            txn_type, code, amount = fields["txnType"], fields["respCode"], int(fields["txnAmt"])
            if txn_type == "01":
                if meaning("consume_notification", "respCode", code) is not Meaning.SUCCEEDED:
                    return []   # not paid yet: the query and payTimeout decide
                return [ChannelEvent("payment", fields["orderId"], Outcome.SUCCEEDED, amount=amount, currency="CNY",
                                     channel_transaction_id=fields.get("queryId"))]
            if txn_type == "12":
                found = meaning("payout_notification", "respCode", code)
                if found is Meaning.ASK_AGAIN:
                    return []
                return [ChannelEvent("payout", fields["orderId"], OUTCOME[found], amount=amount,
                                     channel_transaction_id=fields.get("queryId"))]
            if txn_type in ("04", "31"):
                found = meaning("refund_notification", "respCode", code)
                if found is Meaning.ASK_AGAIN or (txn_type == "31" and found is Meaning.FAILED):
                    return []   # a failed cancel may have gone again as a refund: the query decides
                return [ChannelEvent("refund", fields["reqReserved"], OUTCOME[found], amount=amount,
                                     out_refund_no=refund_no(fields["orderId"]), channel_refund_id=fields.get("queryId"))]
        except (KeyError, ValueError) as exc:
            raise NotificationRejected("malformed_body", f"the notification lacks {exc}") from None
        return []

    def acknowledge(self, accepted: bool, message: str = "") -> Acknowledgement:
        return Acknowledgement(200, b"ok") if accepted else Acknowledgement(400, message.encode()[:200])

    # ---- the daily statement ----

    async def download_statement(self, business_date: date) -> bytes:
        s = self.settings
        fields = {"version": "5.1.0", "encoding": "UTF-8", "txnType": "76", "txnSubType": "01", "bizType": "000000",
                  "accessType": "0", "merId": s.mer_id, "settleDate": business_date.strftime("%m%d"),
                  "txnTime": wire.bank_time(self.ctx.clock.now()), "fileType": "00"}
        answer = await self._post(s.file_url, fields)
        if answer.get("respCode") != "00":
            raise StatementUnavailable(f"{answer.get('respCode')}: {answer.get('respMsg')}")
        try:   # AcpService.deCodeFileContent: Base64, then inflate (zlib), gives the zip
            return zlib.decompress(base64.b64decode(answer.get("fileContent", ""), validate=True))
        except (ValueError, zlib.error) as exc:
            raise StatementUnavailable(f"fileContent is not Base64 of zlib data ({exc})") from None

    def parse_statement(self, content: bytes) -> ParsedStatement:
        return parse_zm(content, self.settings.mer_id)

    def read_statement(self, path: Path) -> ParsedStatement:
        return parse_zm(path, self.settings.mer_id)

    @classmethod
    def standalone_simulator(cls, workdir: Any, url: str) -> tuple[Any, str]:
        """For `paymux simulate unionpay`: the simulator app and the account block to configure."""
        from plugins.unionpay.simulator import standalone

        return standalone(workdir, url)
