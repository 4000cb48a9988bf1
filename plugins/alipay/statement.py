"""Alipay's trade bill into normalized statement lines.

A zip of GBK CSVs. Its member names are GBK too, without the zip's UTF-8 flag (Java integrations open
it with a GBK name encoding; Python's zipfile reads such names as cp437), so the detail file is chosen
by what it holds, not by its name: the one member whose header row starts 支付宝交易号 (the summary
file, 业务明细(汇总), has 门店编号,门店名称,… instead). Text is decoded as GB18030 (GBK's superset).

The detail file opens with `#` preface lines, then the header and one row per 交易 (payment) or 退款
(refund) whose id cells end in a tab; refund amounts are negative and 服务费 is negative as a charge;
`#` trailer lines give the totals: `#交易合计：N笔，商家实收共X元，商家优惠共Y元` and `#退款合计：M笔，
商家实收退款共-Z元，商家优惠退款共-W元`.

Amounts: a line's amount is 订单金额 (the order, or the refund asked for, as we know it); what Alipay
settles for it is 商家实收 (less 商家优惠, the merchant's own discounts, which Alipay does not pay); the
fee is on that. So the totals are checked as Alipay states them: Σ 商家实收 = X and Σ 商家优惠 = Y (per
kind), and a day with merchant discounts adds up.
"""
from __future__ import annotations

import io
import re
import zipfile

import polars as pl

from gateway.channel import ParsedStatement, StatementInvalid
from plugins.statements import Source, empty_check, first_failure, minor_units, normalized, read_table

COLUMNS = ["支付宝交易号", "商户订单号", "业务类型", "完成时间", "订单金额（元）", "商家实收（元）", "商家优惠（元）",
           "退款批次号/请求号", "服务费（元）"]
HEADER_START = "支付宝交易号,"
KINDS = {"交易": "payment", "退款": "refund"}
SALES = re.compile(r"#交易合计：(\d+)笔，商家实收共(-?\d+\.\d{2})元(?:，商家优惠共(-?\d+\.\d{2})元)?")
REFUNDS = re.compile(r"#退款合计：(\d+)笔，商家实收退款共(-?\d+\.\d{2})元(?:，商家优惠退款共?(-?\d+\.\d{2})元)?")


HEAD = 1 << 16      # of each member, read to find the detail file


def detail_text(source: Source) -> str:
    """The detail file of the bill archive (its file, or its bytes), decoded: the one member whose header
    row is the detail's. The archive is read member by member, and of each member only its head until
    one has the detail's header among its first lines: only the detail file is read whole."""
    if isinstance(source, bytes):
        empty_check(source)
    elif source.stat().st_size == 0:
        raise StatementInvalid("the file is empty")
    marker = HEADER_START.encode("gb18030")
    details = []
    try:
        with zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                with archive.open(info) as member:
                    head = member.read(HEAD)
                first_lines = head.split(b"\n", 50)[:50]
                if not any(line.startswith(marker) for line in first_lines) and marker not in head:
                    continue     # a GBK line starts after a \n byte, which is never part of a character
                raw = archive.read(info)
                try:
                    text = raw.decode("gb18030")
                except UnicodeDecodeError as exc:
                    raise StatementInvalid("the detail file is not GBK text",
                                           raw.count(b"\n", 0, exc.start) + 1) from None
                if any(line.startswith(HEADER_START) for line in text.split("\n", 50)[:50]):
                    details.append(text)
                del raw
    except (zipfile.BadZipFile, EOFError, KeyError, zipfile.LargeZipFile, NotImplementedError) as exc:
        raise StatementInvalid(f"the bill is not a readable zip archive ({exc})") from None
    if len(details) != 1:
        raise StatementInvalid(f"expected one detail file (a member whose header is {HEADER_START}…) in the "
                               f"bill archive, found {len(details)}")
    return details[0]


def parse_bill(source: Source) -> ParsedStatement:
    """The bill (its file, or its bytes): the archive read member by member, the detail file parsed."""
    lines = detail_text(source).split("\n")
    header = next(i for i, line in enumerate(lines) if line.startswith(HEADER_START))
    end = next((i for i in range(header + 1, len(lines)) if lines[i].startswith("#")), None)
    if end is None:
        raise StatementInvalid("truncated: the #-lines that close the detail list are missing", len(lines))
    trailer = "\n".join(lines[end:])
    frame = read_table("\n".join(lines[header:end]).encode("utf-8"), header + 1, COLUMNS, "detail")
    frame = frame.with_columns(pl.col(c).str.strip_chars() for c in COLUMNS)
    first_failure(frame, frame["业务类型"].is_in(list(KINDS)), "业务类型 {业务类型!r} is neither 交易 nor 退款")
    amount = minor_units(frame, "订单金额（元）", 2, 2).abs()
    settled = minor_units(frame, "商家实收（元）", 2, 2).abs()
    discount = minor_units(frame, "商家优惠（元）", 2, 2).abs()
    fee = -minor_units(frame, "服务费（元）", 2, 5)          # negative on the bill = charged to us
    is_refund = frame["业务类型"] == "退款"
    frame = frame.with_columns(
        kind=frame["业务类型"].replace_strict(KINDS), channel_transaction_id=pl.col("支付宝交易号"),
        out_trade_no=pl.col("商户订单号"),
        out_refund_no=pl.when(is_refund).then(pl.col("退款批次号/请求号")).otherwise(None),
        amount=amount, settled_amount=settled, fee_millis=fee, status=pl.lit("succeeded"), time=pl.col("完成时间"))
    first_failure(frame, frame["out_trade_no"].str.len_chars() > 0, "商户订单号 is empty")
    first_failure(frame, ~is_refund | (frame["out_refund_no"].str.len_chars() > 0),
                  "退款批次号/请求号 is empty on a refund")
    first_failure(frame, frame["settled_amount"] <= frame["amount"],
                  "商家实收 {商家实收（元）} is more than 订单金额 {订单金额（元）}")
    sales, refunds = SALES.search(trailer), REFUNDS.search(trailer)
    if not (sales and refunds):
        raise StatementInvalid("truncated: the totals (#交易合计, #退款合计) after the detail list are missing", end + 1)
    for kind, found, what in (("payment", sales, "商家优惠共"), ("refund", refunds, "商家优惠退款")):
        stated = abs(_fen(found[3])) if found[3] else None
        summed = int(discount.filter(frame["kind"] == kind).sum())
        if stated is not None and stated != summed:
            raise StatementInvalid(f"the bill's own totals disagree with its rows: {what} {stated} (the rows add up "
                                   f"to {summed})", end + 1)
    return normalized(frame, {"payment_count": int(sales[1]), "payment_settled_amount": abs(_fen(sales[2])),
                              "refund_count": int(refunds[1]), "refund_settled_amount": abs(_fen(refunds[2]))})


def _fen(yuan: str) -> int:
    sign = -1 if yuan.startswith("-") else 1
    whole, cents = yuan.lstrip("-").split(".")
    return sign * (int(whole) * 100 + int(cents))
