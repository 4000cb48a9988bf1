"""UnionPay's merchant statement (全渠道商户对账文件) as fileTransRequest.do serves it, read column-wise.

The answer's fileContent is Base64 of zlib-compressed bytes (AcpService.deCodeFileContent inflates
after decoding), which are a zip holding `INN{yymmdd}88ZM_{merId}` (the ZM file read here) beside the
ZME file (errors) and others. The ZM file is GBK text, one fixed-width record per line ending CRLF,
no header and no total line: 42 fields of fixed byte widths, each followed by one separator byte
(the widths of 《全渠道平台接入接口规范 第3部分 文件接口》 6.1, as the SDK demo's DemoBase.parseZMFile
slices them). Amounts are fen, zero-padded; 商户手续费 and 结算金额 are `D` or `C` (debit or credit
to the merchant) and 12 digits; 结算金额 is 清算金额 less 商户手续费.

A line is classed by 交易类型 (txnType): 01 consume, 04 refund, 31 cancel, 12 代付. The 交易代码 of the
first field is not used: UnionPay's sample file carries S56 on its consumes, other descriptions
give other codes. A refund or cancel is tied to its consume by 原交易查询流水号 (the consume's
queryId): its out_trade_no is that consume's 商户订单号 when the consume is on the same file.

A 代付 record whose 结算金额 is a credit (C) to the merchant is that 代付 come back from the receiving
bank (退汇): status `returned`, its number the 原始交易订单号 (else its 商户订单号). A 代付 debits the
merchant, so money credited under 交易类型 12 can only be one coming back; the file specification's
D/C signs are documented, a return's record is not (docs/channels.md: UnionPay may instead list it
on the ZME file of errors, whose fields only their widths are known of).
"""
from __future__ import annotations

import io
import itertools
import re
import zipfile

import polars as pl

from gateway.channel import ParsedStatement, StatementInvalid
from plugins.statements import Source, empty_check, first_failure, normalized

# (name, byte width) in file order
FIELDS = (
    ("交易代码", 3), ("代理机构标识码", 11), ("发送机构标识码", 11), ("系统跟踪号", 6), ("交易传输时间", 10),
    ("帐号", 19), ("交易金额", 12), ("商户类别", 4), ("终端类型", 2), ("查询流水号", 21), ("支付方式（旧）", 2),
    ("商户订单号", 32), ("支付卡类型", 2), ("原始交易的系统跟踪号", 6), ("原始交易日期时间", 10), ("商户手续费", 13),
    ("结算金额", 13), ("支付方式", 4), ("集团商户代码", 15), ("交易类型", 2), ("交易子类", 2), ("业务类型", 6),
    ("帐号类型", 2), ("账单类型", 4), ("账单号码", 32), ("交互方式", 1), ("原交易查询流水号", 21), ("商户代码", 15),
    ("分账入账方式", 1), ("二级商户代码", 15), ("二级商户简称", 32), ("二级商户分账入账金额", 13), ("清算净额", 13),
    ("终端号", 8), ("商户自定义域", 32), ("优惠金额", 13), ("发票金额", 13), ("分期付款附加手续费", 12),
    ("分期付款期数", 2), ("交易介质", 1), ("原始交易订单号", 32), ("保留使用", 98),
)
RECORD = sum(width + 1 for _, width in FIELDS)          # 608 bytes, CRLF not counted
OFFSETS = dict(zip((name for name, _ in FIELDS),
                   itertools.accumulate((width + 1 for _, width in FIELDS), initial=0)))
WIDTHS = dict(FIELDS)
ZM_NAME = re.compile(r"^INN\d{6}\d{2}ZM_(\d+)$")
KINDS = {"01": "payment", "04": "refund", "31": "refund", "12": "payout"}
USED = {"time": "交易传输时间", "amount": "交易金额", "query_id": "查询流水号", "order_id": "商户订单号",
        "fee": "商户手续费", "settled": "结算金额", "txn_type": "交易类型", "orig": "原交易查询流水号",
        "mer_id": "商户代码", "discount": "优惠金额", "orig_order": "原始交易订单号"}


def zm_file(source: Source) -> tuple[str, bytes]:
    """The ZM file of the statement zip (its file, or its bytes): (its name, its bytes). Of a file, only
    the zip's directory and the ZM member are read, not the whole archive into memory."""
    if isinstance(source, bytes):
        empty_check(source)
    elif source.stat().st_size == 0:
        raise StatementInvalid("the file is empty")
    try:
        with zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source) as archive:
            names = [n for n in archive.namelist() if ZM_NAME.match(n.rsplit("/", 1)[-1])]
            if len(names) != 1:
                raise StatementInvalid(f"the statement zip holds {len(names)} ZM files (INN…ZM_{{merId}}), not one: "
                                       f"{', '.join(archive.namelist())[:300]}")
            return names[0], archive.read(names[0])
    except (zipfile.BadZipFile, EOFError) as exc:
        raise StatementInvalid(f"the statement is not a readable zip ({exc})") from None


def fallback_order_id(out_refund_no: str) -> str:
    """The orderId of the refund (04) sent when UnionPay refuses a same-day cancel (31) under the
    refund's own number: paymux's references start with a 12-hex-digit millisecond time whose first
    digit is 0 until the year 2527, so an `R` there makes a distinct orderId of the same 32 characters
    (the width of the statement's 商户订单号)."""
    return "R" + out_refund_no[1:]


def refund_no(order_id: str) -> str:
    return "0" + order_id[1:] if order_id.startswith("R") else order_id


def parse_zm(source: Source, mer_id: str) -> ParsedStatement:
    """The ZM file's records (of the zip's file, or its bytes) as normalized statement lines."""
    name, content = zm_file(source)
    if not content:
        return normalized(pl.DataFrame(schema={"line_no": pl.Int64}).with_columns(
            [pl.lit(None, pl.String).alias(c) for c in ("kind", "channel_transaction_id", "out_trade_no",
                                                         "out_refund_no", "status", "time")]
            + [pl.lit(None, pl.Int64).alias(c) for c in ("amount", "fee_millis")]), None)
    records = content[:-2] if content.endswith(b"\r\n") else content
    try:
        content.decode("gbk")
    except UnicodeDecodeError as exc:
        raise StatementInvalid(f"{name} is not GBK text", content.count(b"\r\n", 0, exc.start) + 1) from None
    # Latin-1 keeps one character per byte, so character offsets are the spec's byte offsets (the SDK
    # demo slices ISO-8859-1 bytes the same way); the fields read here are ASCII in any case.
    frame = pl.DataFrame({"raw": records.decode("latin-1").split("\r\n")}).with_row_index("line_no", offset=1)
    frame = frame.with_columns(pl.col("line_no").cast(pl.Int64), size=pl.col("raw").str.len_chars())
    first_failure(frame, frame["size"] == RECORD, f"the record is {{size}} bytes, not the ZM file's {RECORD}")
    frame = frame.with_columns(**{key: pl.col("raw").str.slice(OFFSETS[field], WIDTHS[field]).str.strip_chars(" ")
                                  for key, field in USED.items()}).drop("raw")
    checks = (("amount", r"^\d{12}$", "交易金额 {amount!r} is not 12 digits of fen"),
              ("fee", r"^[CD]\d{12}$", "商户手续费 {fee!r} is not D or C and 12 digits"),
              ("settled", r"^[CD]\d{12}$", "结算金额 {settled!r} is not D or C and 12 digits"),
              ("txn_type", r"^\d{2}$", "交易类型 {txn_type!r} is not two digits"),
              ("query_id", r"^[0-9A-Za-z]{1,21}$", "查询流水号 {query_id!r} is not a queryId"),
              ("order_id", r"^[0-9A-Za-z]{1,32}$", "商户订单号 {order_id!r} is not an orderId"),
              ("discount", r"^([CD]\d{12})?$", "优惠金额 {discount!r} is not D or C and 12 digits"))
    for column, pattern, message in checks:
        first_failure(frame, frame[column].str.contains(pattern), message)
    first_failure(frame, frame["mer_id"] == mer_id, f"商户代码 {{mer_id!r}} is not this account's merId {mer_id}")
    signed = lambda column: (pl.col(column).str.slice(1).cast(pl.Int64)  # noqa: E731  merchant credit +, debit -
                             * pl.when(pl.col(column).str.starts_with("C")).then(1).otherwise(-1))
    kind = pl.col("txn_type").replace_strict(KINDS, default=None)
    kind = pl.when(kind.is_not_null()).then(kind).when(pl.col("settled").str.starts_with("C")) \
        .then(pl.lit("payment")).otherwise(pl.lit("refund"))
    frame = frame.with_columns(kind=kind, amount=pl.col("amount").cast(pl.Int64), fee_signed=signed("fee"),
                               settled_signed=signed("settled"))
    # a 代付 credited back to the merchant: the receiving bank returned it
    returned = (pl.col("kind") == "payout") & pl.col("settled").str.starts_with("C")
    clearing = pl.when((pl.col("kind") == "payment") | returned).then(pl.col("amount")).otherwise(-pl.col("amount"))
    no_discount = pl.col("discount").str.contains(r"^([CD]0{12})?$")
    first_failure(frame, frame.select((~no_discount) | (pl.col("settled_signed") == clearing + pl.col("fee_signed")))
                  .to_series(), "结算金额 {settled} is not 交易金额 {amount} with 商户手续费 {fee} taken")
    consumes = frame.filter(pl.col("kind") == "payment").select(orig="query_id", consume_order="order_id") \
        .unique("orig", keep="first")
    frame = frame.join(consumes, on="orig", how="left").sort("line_no")
    refund = pl.col("kind") == "refund"
    order = pl.col("order_id")
    out_refund_no = pl.when(order.str.starts_with("R")).then(pl.lit("0") + order.str.slice(1)).otherwise(order)
    frame = frame.with_columns(
        channel_transaction_id=pl.col("query_id"),
        out_trade_no=pl.when(refund).then(pl.col("consume_order"))
        .when(returned & (pl.col("orig_order") != "")).then(pl.col("orig_order")).otherwise(pl.col("order_id")),
        out_refund_no=pl.when(refund).then(out_refund_no).otherwise(None),
        fee_millis=-pl.col("fee_signed") * 1000,
        status=pl.when(returned).then(pl.lit("returned")).otherwise(pl.lit("succeeded")))
    return normalized(frame, None)
