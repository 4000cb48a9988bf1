"""WeChat Pay's trade bill (tradebill, bill_type ALL) into normalized statement lines.

UTF-8 text: a header row (names split on ","), one row per payment (交易状态 SUCCESS, REVOKED, …) or
refund (交易状态 REFUND, with the refund columns filled), then the summary header `总交易单数,应结订单总金额,
退款总金额,…` and one summary row. WeChat Pay writes a backtick before every cell and never quotes one,
so a comma inside a cell (a description `咖啡, 大杯`, an attach of JSON) stays a bare comma: rows are
split on ",`" (a cell starting with a backtick), as WeChat Pay's own samples and real parsers do, not
read as CSV. Columns are found by name (some merchants get extra ones). Amounts are yuan with two
decimals, the fee (手续费) with five.

Amounts: a payment line's amount is 订单金额 (the order, as we know it) and what WeChat Pay settles
for it is 应结订单金额 (the order less its NOCASH coupons); a refund line's amount is 申请退款金额 (the
refund asked for) and what is settled 退款金额 (less the NOCASH coupons' share). Refund rows carry
0.00 as their 订单金额 and 应结订单金额. So the totals agree column by column: 订单总金额 = Σ 订单金额,
应结订单总金额 = Σ 应结订单金额, 退款总金额 = Σ 退款金额, 申请退款总金额 = Σ 申请退款金额, and a day with
coupons adds up.
"""
from __future__ import annotations

import polars as pl

from gateway.channel import ParsedStatement, StatementInvalid
from plugins.statements import empty_check, first_failure, line_of, minor_units, normalized

SUMMARY_MARK = "总交易单数".encode()
CELL = ",`"
COLUMNS = ["交易时间", "微信订单号", "商户订单号", "交易状态", "应结订单金额", "微信退款单号", "商户退款单号", "退款金额",
           "退款状态", "手续费", "订单金额", "申请退款金额"]
PAYMENT_STATUS = {"SUCCESS": "succeeded", "REVOKED": "closed", "PAYERROR": "failed", "CLOSED": "closed"}
# 退款状态 in a bill: SUCCESS, PROCESSING, and the money waiting for a person (ABNORMAL / v2's CHANGE) is
# not a failure; REFUNDCLOSE / CLOSED / FAIL are.
REFUND_STATUS = {"SUCCESS": "succeeded", "PROCESSING": "pending", "ABNORMAL": "pending", "CHANGE": "pending",
                 "FAIL": "failed", "REFUNDCLOSE": "failed", "CLOSED": "failed"}


def parse_tradebill(content: bytes) -> ParsedStatement:
    empty_check(content)
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    at = content.rfind(b"\n" + SUMMARY_MARK)
    if at < 0:
        raise StatementInvalid("truncated: the summary (总交易单数) that ends a WeChat Pay bill is missing",
                               line_of(content, len(content.rstrip())))
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StatementInvalid("the bill is not UTF-8", line_of(content, exc.start)) from None
    header_end = text.find("\n")
    header = [name.strip().lstrip("`") for name in text[:header_end].rstrip("\r").split(",")]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise StatementInvalid(f"the bill header lacks {', '.join(missing)}", 1)
    summary_at = text.rfind("\n总交易单数") + 1
    frame = _rows(content[content.find(b"\n") + 1:at + 1], header)
    first_failure(frame, frame["交易时间"].str.len_chars() > 0, "a row without 交易时间 (a cell not after a backtick?)")
    is_refund = frame["交易状态"] == "REFUND"
    ordered = minor_units(frame, "订单金额", 2, 2)
    settled = minor_units(frame, "应结订单金额", 2, 2)
    asked = minor_units(frame, "申请退款金额", 2, 2)
    refunded = minor_units(frame, "退款金额", 2, 2)
    fee = minor_units(frame, "手续费", 5, 5)
    status = pl.when(is_refund).then(frame["退款状态"].replace_strict(REFUND_STATUS, default="unknown")) \
        .otherwise(frame["交易状态"].replace_strict(PAYMENT_STATUS, default="unknown"))
    frame = frame.with_columns(
        kind=pl.when(is_refund).then(pl.lit("refund")).otherwise(pl.lit("payment")),
        channel_transaction_id=pl.col("微信订单号"), out_trade_no=pl.col("商户订单号"),
        out_refund_no=pl.when(is_refund).then(pl.col("商户退款单号")).otherwise(None),
        amount=pl.when(is_refund).then(asked).otherwise(ordered),
        settled_amount=pl.when(is_refund).then(refunded).otherwise(settled),
        fee_millis=fee, status=status, time=pl.col("交易时间"))
    first_failure(frame, frame["out_trade_no"].str.len_chars() > 0, "商户订单号 is empty")
    first_failure(frame, ~is_refund | (frame["out_refund_no"].str.len_chars() > 0), "商户退款单号 is empty on a refund")
    first_failure(frame, frame["settled_amount"] <= frame["amount"],
                  "the settled amount is more than the order's ({订单金额} / {申请退款金额})")
    totals = _totals(text[summary_at:], line_of(content, at + 1))
    sums = {"应结订单总金额": int(settled.sum()), "退款总金额": int(refunded.sum())}
    wrong = [f"{name} {totals[name]} (the rows add up to {sums[name]})" for name in sums if totals[name] != sums[name]]
    if wrong:
        raise StatementInvalid("the bill's own totals disagree with its rows: " + ", ".join(wrong))
    return normalized(frame, {"rows": totals["总交易单数"], "payment_amount": totals["订单总金额"],
                              "payment_settled_amount": totals["应结订单总金额"],
                              "refund_amount": totals["申请退款总金额"], "refund_settled_amount": totals["退款总金额"]})


def _rows(body: bytes, header: list[str]) -> pl.DataFrame:
    """The data rows as string columns named by the header. Each ",`" (where a cell begins) becomes one
    unit separator, so polars reads the rows column-wise, only the columns needed; a row that does not
    split into the header's cells is named by its line."""
    if b"\x1f" in body:
        raise StatementInvalid("the bill holds a control character (0x1f) no bill has", line_of(body, body.find(b"\x1f")) + 1)
    wanted = sorted(header.index(c) for c in COLUMNS)   # polars gives them in the file's order
    try:
        frame = pl.read_csv(body.replace(CELL.encode(), b"\x1f"), has_header=False, separator="\x1f", quote_char=None,
                            infer_schema=False, columns=wanted, truncate_ragged_lines=False, eol_char="\n")
        frame = frame.rename(dict(zip(frame.columns, [header[i] for i in wanted])))
    except pl.exceptions.PolarsError:
        frame = None
    rows = body.count(b"\n")
    if frame is None or frame.height != rows or body.count(CELL.encode()) != rows * (len(header) - 1):
        lines = body.decode("utf-8", "replace").split("\n")
        for offset, line in enumerate(lines, start=2):
            if line.strip("\r") and (not line.startswith("`") or len(line.split(CELL)) != len(header)):
                raise StatementInvalid(f"the bill rows cannot be read: not {len(header)} cells, each after a "
                                       f"backtick", offset)
        raise StatementInvalid("the bill rows cannot be read")
    first, last = header[wanted[0]], header[wanted[-1]]
    frame = frame.with_row_index("line_no", offset=2).with_columns(pl.col("line_no").cast(pl.Int64))
    if wanted[0] == 0:                   # the row's first backtick is not a separator's
        frame = frame.with_columns(pl.col(first).str.strip_prefix("`"))
    if wanted[-1] == len(header) - 1:    # a CRLF file's last cell
        frame = frame.with_columns(pl.col(last).str.strip_suffix("\r"))
    return frame


def _totals(summary: str, first_line: int) -> dict[str, int]:
    lines = [line.rstrip("\r") for line in summary.splitlines() if line.strip()]
    if len(lines) < 2:
        raise StatementInvalid("truncated: the summary row after 总交易单数 is missing", first_line + 1)
    names = [c.strip() for c in lines[0].split(",")]
    cells = [c.strip() for c in lines[1].lstrip("`").split(CELL)]
    row = dict(zip(names, cells))
    try:
        return {"总交易单数": int(row["总交易单数"]),
                **{name: _fen(row[name]) for name in ("应结订单总金额", "退款总金额", "订单总金额", "申请退款总金额")}}
    except (KeyError, ValueError) as exc:
        raise StatementInvalid(f"the summary row cannot be read ({exc})", first_line + 1) from None


def _fen(yuan: str) -> int:
    whole, _, cents = yuan.partition(".")
    if len(cents) != 2 or not (yuan.isascii() and whole.lstrip("-").isdigit() and cents.isdigit()):
        raise ValueError(f"{yuan!r} is not an amount")
    sign = -1 if whole.startswith("-") else 1
    return sign * (abs(int(whole)) * 100 + int(cents))
