"""Alipay's trade bill into normalized statement lines.

A zip of GBK CSVs: the detail file (业务明细) opens with `#` preface lines, then the header and one
row per 交易 (payment) or 退款 (refund) whose id cells end in a tab; refund amounts are negative and
服务费 is negative as a charge; `#` trailer lines give the totals (`#交易合计：N笔，商家实收共X元…`,
`#退款合计：M笔，商家实收退款共Y元…`). The summary file (业务明细(汇总)) is not needed for the lines.
"""
from __future__ import annotations

import io
import re
import zipfile

import polars as pl

from gateway.channel import ParsedStatement, StatementInvalid
from plugins.statements import empty_check, first_failure, minor_units, normalized, read_table

COLUMNS = ["支付宝交易号", "商户订单号", "业务类型", "完成时间", "订单金额（元）", "退款批次号/请求号", "服务费（元）"]
KINDS = {"交易": "payment", "退款": "refund"}
SALES = re.compile(r"#交易合计：(\d+)笔，商家实收共(-?\d+\.\d{2})元")
REFUNDS = re.compile(r"#退款合计：(\d+)笔，商家实收退款共(-?\d+\.\d{2})元")


def detail_file(content: bytes) -> bytes:
    empty_check(content)
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        names = [n for n in archive.namelist() if "汇总" not in n]
        if len(names) != 1:
            raise StatementInvalid(f"expected one detail file in the bill archive, found {len(names)}")
        return archive.read(names[0])
    except (zipfile.BadZipFile, EOFError, KeyError, zipfile.LargeZipFile) as exc:
        raise StatementInvalid(f"the bill is not a readable zip archive ({exc})") from None


def parse_bill(content: bytes) -> ParsedStatement:
    raw = detail_file(content)
    try:
        text = raw.decode("gbk")
    except UnicodeDecodeError as exc:
        raise StatementInvalid("the detail file is not GBK text", raw.count(b"\n", 0, exc.start) + 1) from None
    lines = text.split("\n")
    header = next((i for i, line in enumerate(lines) if line.startswith("支付宝交易号")), None)
    if header is None:
        raise StatementInvalid("the detail file has no header row (支付宝交易号,…)")
    end = next((i for i in range(header + 1, len(lines)) if lines[i].startswith("#")), None)
    if end is None:
        raise StatementInvalid("truncated: the #-lines that close the detail list are missing", len(lines))
    trailer = "\n".join(lines[end:])
    frame = read_table("\n".join(lines[header:end]).encode("utf-8"), header + 1, COLUMNS, "detail")
    frame = frame.with_columns(pl.col(c).str.strip_chars() for c in COLUMNS)
    first_failure(frame, frame["业务类型"].is_in(list(KINDS)), "业务类型 {业务类型!r} is neither 交易 nor 退款")
    amount = minor_units(frame, "订单金额（元）", 2, 2).abs()
    fee = -minor_units(frame, "服务费（元）", 2, 5)          # negative on the bill = charged to us
    is_refund = frame["业务类型"] == "退款"
    frame = frame.with_columns(
        kind=frame["业务类型"].replace_strict(KINDS), channel_transaction_id=pl.col("支付宝交易号"),
        out_trade_no=pl.col("商户订单号"),
        out_refund_no=pl.when(is_refund).then(pl.col("退款批次号/请求号")).otherwise(None),
        amount=amount, fee_millis=fee, status=pl.lit("succeeded"), time=pl.col("完成时间"))
    first_failure(frame, frame["out_trade_no"].str.len_chars() > 0, "商户订单号 is empty")
    first_failure(frame, ~is_refund | (frame["out_refund_no"].str.len_chars() > 0),
                  "退款批次号/请求号 is empty on a refund")
    sales, refunds = SALES.search(trailer), REFUNDS.search(trailer)
    if not (sales and refunds):
        raise StatementInvalid("truncated: the totals (#交易合计, #退款合计) after the detail list are missing", end + 1)
    return normalized(frame, {"payment_count": int(sales[1]), "payment_amount": _fen(sales[2]),
                              "refund_count": int(refunds[1]), "refund_amount": abs(_fen(refunds[2]))})


def _fen(yuan: str) -> int:
    sign = -1 if yuan.startswith("-") else 1
    whole, cents = yuan.lstrip("-").split(".")
    return sign * (int(whole) * 100 + int(cents))
