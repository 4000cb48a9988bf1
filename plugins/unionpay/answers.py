"""What UnionPay's answers mean, operation by operation: succeeded, failed (final), ask again, or
unknown. Pure data and lookups, no HTTP; every row names where it comes from.

The sources are UnionPay's own SDK demos (`com.unionpay.acp.demo`, 2015-09, as published with the
ACP SDK), read for how UnionPay tells merchants to treat each code:

- DF:  ACPSample_DaiFu Form10_6_2_DF.java, the 代付 request: respCode 00 is "accepted, not yet
       paid"; 03, 04, 05, 01, 12, 60 "query later to know"; any other code a failure.
- DFQ: ACPSample_DaiFu Form10_6_3_Query.java, the 代付 query: origRespCode 00 or A6 ("A6 代付交易返回，
       参与清算，商户应该算成功交易") is success; 03, 04, 05, 01, 12, 34, 60 "in progress or unknown,
       query again; if still unsure the statement decides"; any other origRespCode a failure;
       respCode 34 "no such order: the state is unknown, query later or go by the statement"; any
       other respCode means the query itself failed (10, 11: check the query message).
- Q:   ACPSample_B2C Form_6_5_Query.java, the consume/refund query: origRespCode 00 success, 03, 04,
       05 in progress, other origRespCodes failures; respCode 34 unknown; other respCodes: the query
       failed.
- PT:  ACPSample_B2C Form_6_2_FrontConsume.java on payTimeout: "超过超时时间调查询接口应答origRespCode
       不是A6或者00的就可以判断为失败" (past payTimeout, anything but 00 or A6 is a failure; until then
       the payer may still pay).
- R:   ACPSample_B2C Form_6_4_Refund.java and Form_6_3_ConsumeUndo.java: respCode 00 accepted, 03, 04,
       05 query later, any other code a failure.
- N:   ACPSample_DaiFu BackRcvResponse.java: front transactions notify successes only, background
       transactions (refund, cancel, 代付) notify when they end, success or failure; respCode 00 and
       A6 are successes.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from gateway.channel import Outcome


class Meaning(str, enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"              # final: the channel documents the code as a failure
    ASK_AGAIN = "ask_again"        # the channel has (or may have) it and has not finished: query later
    UNKNOWN = "unknown"            # the answer says nothing about the transaction (the query itself failed)
    OPEN_UNTIL_TIMEOUT = "open_until_timeout"   # a consume that is not paid: failed only past its payTimeout


# What paymux makes of each meaning (OPEN_UNTIL_TIMEOUT is decided against payTimeout first where it can be).
OUTCOME = {Meaning.SUCCEEDED: Outcome.SUCCEEDED, Meaning.FAILED: Outcome.FAILED, Meaning.ASK_AGAIN: Outcome.PENDING,
           Meaning.UNKNOWN: Outcome.UNKNOWN, Meaning.OPEN_UNTIL_TIMEOUT: Outcome.PENDING}


@dataclass(frozen=True)
class Row:
    operation: str
    field: str                     # respCode or origRespCode
    codes: tuple[str, ...]         # () for every other code
    meaning: Meaning
    source: str


S, F, A, U, T = Meaning.SUCCEEDED, Meaning.FAILED, Meaning.ASK_AGAIN, Meaning.UNKNOWN, Meaning.OPEN_UNTIL_TIMEOUT
ANY: tuple[str, ...] = ()

TABLE: tuple[Row, ...] = (
    # consume (txnType 01) by queryTrans.do
    Row("consume_query", "origRespCode", ("00", "A6"), S, "Q, DFQ (A6), PT"),
    Row("consume_query", "origRespCode", ANY, T, "PT (03, 04, 05 in progress: Q)"),
    Row("consume_query", "respCode", ("34",), A, "Q"),
    Row("consume_query", "respCode", ANY, U, "Q"),
    # refund (04) and same-day cancel (31) requests to backTransReq.do
    Row("refund_request", "respCode", ("00",), A, "R"),
    Row("refund_request", "respCode", ("03", "04", "05"), A, "R"),
    Row("refund_request", "respCode", ("12",), A, "DF: 12 (duplicate) in a background request: UnionPay has the order"),
    Row("refund_request", "respCode", ANY, F, "R"),
    # a refund's or cancel's state by queryTrans.do
    Row("refund_query", "origRespCode", ("00", "A6"), S, "Q, DFQ (A6)"),
    Row("refund_query", "origRespCode", ("03", "04", "05"), A, "Q"),
    Row("refund_query", "origRespCode", ANY, F, "Q"),
    Row("refund_query", "respCode", ("34",), A, "Q"),
    Row("refund_query", "respCode", ANY, U, "Q"),
    # 代付 (txnType 12, bizType 000401) request to backTransReq.do
    Row("payout_request", "respCode", ("00",), A, "DF"),
    Row("payout_request", "respCode", ("03", "04", "05", "01", "12", "60"), A, "DF"),
    Row("payout_request", "respCode", ("A6",), A, "DFQ: A6 is a success; the query says so"),
    Row("payout_request", "respCode", ANY, F, "DF"),
    # a 代付's state by queryTrans.do
    Row("payout_query", "origRespCode", ("00", "A6"), S, "DFQ"),
    Row("payout_query", "origRespCode", ("03", "04", "05", "01", "12", "34", "60"), A, "DFQ"),
    Row("payout_query", "origRespCode", ANY, F, "DFQ"),
    Row("payout_query", "respCode", ("34",), A, "DFQ"),
    Row("payout_query", "respCode", ANY, U, "DFQ"),
    # background notifications (respCode is the transaction's)
    Row("consume_notification", "respCode", ("00", "A6"), S, "N"),
    Row("consume_notification", "respCode", ANY, T, "N: a front consume is notified only when it succeeds"),
    Row("refund_notification", "respCode", ("00", "A6"), S, "N"),
    Row("refund_notification", "respCode", ("03", "04", "05"), A, "N, Q"),
    Row("refund_notification", "respCode", ANY, F, "N"),
    Row("payout_notification", "respCode", ("00", "A6"), S, "N, DFQ"),
    Row("payout_notification", "respCode", ("03", "04", "05", "01", "12", "34", "60"), A, "N, DFQ"),
    Row("payout_notification", "respCode", ANY, F, "N"),
)


def meaning(operation: str, field: str, code: str | None) -> Meaning:
    """The row for `code` of `field` in `operation`'s answers (its catch-all row if none names it)."""
    rows = [r for r in TABLE if r.operation == operation and r.field == field]
    for row in rows:
        if code in row.codes:
            return row.meaning
    return next(r.meaning for r in rows if r.codes == ANY)


def query(operation: str, answer: dict[str, str]) -> Meaning:
    """A queryTrans.do answer: the query's own respCode first, then the queried transaction's origRespCode."""
    code = answer.get("respCode")
    if code != "00":
        return meaning(operation, "respCode", code)
    return meaning(operation, "origRespCode", answer.get("origRespCode"))
