"""WeChat Pay's trade bill (tradebill, bill_type ALL) into normalized statement lines.

UTF-8 CSV: a header row, one row per payment (交易状态 SUCCESS, REVOKED, …) or refund (交易状态
REFUND, with the refund columns filled), every cell prefixed by a backtick, then the summary
header `总交易单数,应结订单总金额,退款总金额,…` and one summary row. Columns are found by name
(some merchants get extra ones). Amounts are yuan with two decimals, the fee (手续费) with five.
"""
from __future__ import annotations

import polars as pl

from gateway.channel import ParsedStatement, StatementInvalid
from plugins.statements import empty_check, first_failure, line_of, minor_units, normalized, read_table

SUMMARY_MARK = "总交易单数".encode()
COLUMNS = ["交易时间", "微信订单号", "商户订单号", "交易状态", "应结订单金额", "微信退款单号", "商户退款单号", "退款金额",
           "退款状态", "手续费"]
PAYMENT_STATUS = {"SUCCESS": "succeeded", "REVOKED": "closed", "PAYERROR": "failed", "CLOSED": "closed"}
REFUND_STATUS = {"SUCCESS": "succeeded", "PROCESSING": "pending", "FAIL": "failed", "CHANGE": "failed",
                 "REFUNDCLOSE": "failed"}


def parse_tradebill(content: bytes) -> ParsedStatement:
    empty_check(content)
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    at = content.rfind(b"\n" + SUMMARY_MARK)
    if at < 0:
        raise StatementInvalid("truncated: the summary (总交易单数) that ends a WeChat Pay bill is missing",
                               line_of(content, len(content.rstrip())))
    summary = content[at + 1:]
    frame = read_table(content, 1, COLUMNS, "bill", n_rows=content.count(b"\n", 0, at))
    frame = frame.with_columns(pl.col(c).str.strip_prefix("`") for c in COLUMNS)
    is_refund = frame["交易状态"] == "REFUND"
    paid = minor_units(frame, "应结订单金额", 2, 2)
    refunded = minor_units(frame, "退款金额", 2, 2)
    fee = minor_units(frame, "手续费", 5, 5)
    status = pl.when(is_refund).then(frame["退款状态"].replace_strict(REFUND_STATUS, default="unknown")) \
        .otherwise(frame["交易状态"].replace_strict(PAYMENT_STATUS, default="unknown"))
    frame = frame.with_columns(
        kind=pl.when(is_refund).then(pl.lit("refund")).otherwise(pl.lit("payment")),
        channel_transaction_id=pl.col("微信订单号"), out_trade_no=pl.col("商户订单号"),
        out_refund_no=pl.when(is_refund).then(pl.col("商户退款单号")).otherwise(None),
        amount=pl.when(is_refund).then(refunded).otherwise(paid), fee_millis=fee, status=status,
        time=pl.col("交易时间"))
    first_failure(frame, frame["out_trade_no"].str.len_chars() > 0, "商户订单号 is empty")
    first_failure(frame, ~is_refund | (frame["out_refund_no"].str.len_chars() > 0), "商户退款单号 is empty on a refund")
    return normalized(frame, _totals(summary, line_of(content, at + 1)))


def _totals(summary: bytes, first_line: int) -> dict[str, int]:
    lines = [line for line in summary.decode("utf-8", "replace").splitlines() if line.strip()]
    if len(lines) < 2:
        raise StatementInvalid("truncated: the summary row after 总交易单数 is missing", first_line + 1)
    names = [c.strip() for c in lines[0].split(",")]
    cells = [c.strip().lstrip("`") for c in lines[1].split(",")]
    row = dict(zip(names, cells))
    try:
        return {"rows": int(row["总交易单数"]), "payment_amount": _fen(row["应结订单总金额"]),
                "refund_amount": _fen(row["退款总金额"])}
    except (KeyError, ValueError) as exc:
        raise StatementInvalid(f"the summary row cannot be read ({exc})", first_line + 1) from None


def _fen(yuan: str) -> int:
    whole, _, cents = yuan.partition(".")
    if len(cents) != 2 or not (whole.lstrip("-").isdigit() and cents.isdigit()):
        raise ValueError(f"{yuan!r} is not an amount")
    sign = -1 if whole.startswith("-") else 1
    return sign * (abs(int(whole)) * 100 + int(cents))
