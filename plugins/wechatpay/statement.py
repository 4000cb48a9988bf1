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

from typing import Iterator

import polars as pl

from gateway.channel import ParsedStatement, StatementInvalid
from plugins.statements import SCHEMA, Source, empty_check, ends, line_pieces, lines_before, normalized

SUMMARY_MARK = "总交易单数".encode()
CELL = ",`"
BOM = b"\xef\xbb\xbf"
COLUMNS = ["交易时间", "微信订单号", "商户订单号", "交易状态", "应结订单金额", "微信退款单号", "商户退款单号", "退款金额",
           "退款状态", "手续费", "订单金额", "申请退款金额"]
PAYMENT_STATUS = {"SUCCESS": "succeeded", "REVOKED": "closed", "PAYERROR": "failed", "CLOSED": "closed"}
# 退款状态 in a bill: SUCCESS, PROCESSING, and the money waiting for a person (ABNORMAL / v2's CHANGE) is
# not a failure; REFUNDCLOSE / CLOSED / FAIL are.
REFUND_STATUS = {"SUCCESS": "succeeded", "PROCESSING": "pending", "ABNORMAL": "pending", "CHANGE": "pending",
                 "FAIL": "failed", "REFUNDCLOSE": "failed", "CLOSED": "failed"}
AMOUNTS = (("订单金额", 2), ("应结订单金额", 2), ("申请退款金额", 2), ("退款金额", 2), ("手续费", 5))


def parse_tradebill(source: Source) -> ParsedStatement:
    """The whole bill (its file, or its bytes) as one ParsedStatement: its pieces put together."""
    parts, totals = [], None
    for piece in tradebill_pieces(source):
        parts.append(piece.lines)
        totals = piece.totals or totals
    lines = pl.concat(parts, rechunk=False) if parts else pl.DataFrame(schema=SCHEMA)
    return ParsedStatement(lines, totals)


def tradebill_pieces(source: Source) -> Iterator[ParsedStatement]:
    """The bill (its file, or its bytes) read piece by piece (plugins.statements.line_pieces), each piece
    by polars into the normalized columns and given as it is read: the header and the summary are read
    from the file's ends, and no more of the rows is ever held than one piece. Every row is checked; the
    first check any row fails is raised at its first row, as if the checks ran in order over the whole
    bill (so after the pieces, like a disagreement of the bill's own totals). The last piece, without
    lines, carries the totals the bill declares."""
    first, tail, tail_start = ends(source)
    if tail_start == 0:
        empty_check(tail)
    at = tail.rfind(b"\n" + SUMMARY_MARK)
    if at < 0:
        raise StatementInvalid("truncated: the summary (总交易单数) that ends a WeChat Pay bill is missing",
                               lines_before(source, tail_start + len(tail.rstrip())))
    try:
        header = [name.strip().lstrip("`") for name in first.removeprefix(BOM).decode("utf-8").rstrip("\r\n")
                  .split(",")]
    except UnicodeDecodeError:
        raise StatementInvalid("the bill is not UTF-8", 1) from None
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise StatementInvalid(f"the bill header lacks {', '.join(missing)}", 1)
    checks = _checks(len(header))
    sums = {"应结订单总金额": 0, "退款总金额": 0}
    failure: tuple[int, StatementInvalid] | None = None    # the first check any row fails, at its first row
    summary_line = 2
    for piece, line in line_pieces(source, len(first), tail_start + at + 1):
        summary_line = line + piece.count(b"\n")
        try:
            if not piece.isascii():         # ASCII is UTF-8: only other text need be decoded to be checked
                piece.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StatementInvalid("the bill is not UTF-8", line + piece.count(b"\n", 0, exc.start)) from None
        rows = _rows(piece, header, line)      # a row that is not the header's cells fails the bill here
        frame = rows.select(*_normalized(), _settled=_yuan("应结订单金额"), _refunded=_yuan("退款金额"),
                            _failed=pl.min_horizontal(pl.when(~ok.fill_null(False)).then(pl.lit(i, pl.Int32))
                                                      for i, (ok, _) in enumerate(checks))).collect()
        failed = frame["_failed"].min()
        if failed is not None and (failure is None or failed < failure[0]):
            bad = int(frame.filter(pl.col("_failed") == failed)["line_no"][0])
            row = rows.filter(pl.col("line_no") == bad).collect().row(0, named=True)
            failure = (int(failed), StatementInvalid(checks[int(failed)][1].format(**row), bad))
        sums["应结订单总金额"] += int(frame["_settled"].sum())
        sums["退款总金额"] += int(frame["_refunded"].sum())
        if failure is None:
            yield normalized(frame.drop("_settled", "_refunded", "_failed"), None)
    if failure is not None:
        raise failure[1]
    try:
        totals = _totals(tail[at + 1:].decode("utf-8"), summary_line)
    except UnicodeDecodeError:
        raise StatementInvalid("the bill is not UTF-8", summary_line) from None
    wrong = [f"{name} {totals[name]} (the rows add up to {sums[name]})" for name in sums if totals[name] != sums[name]]
    if wrong:
        raise StatementInvalid("the bill's own totals disagree with its rows: " + ", ".join(wrong))
    yield ParsedStatement(pl.DataFrame(schema=SCHEMA), {"rows": totals["总交易单数"], "payment_amount": totals["订单总金额"],
                              "payment_settled_amount": totals["应结订单总金额"],
                              "refund_amount": totals["申请退款总金额"], "refund_settled_amount": totals["退款总金额"]})


def _rows(piece: bytes, header: list[str], first_line: int) -> pl.LazyFrame:
    """A piece's rows: line_no and the needed cells named by the header. Each ",`" (where a cell begins)
    becomes one unit separator in the piece, so polars reads the rows column-wise, only the columns
    needed; a row that does not split into the header's cells is named by its line."""
    if b"\x1f" in piece:
        raise StatementInvalid("the bill holds a control character (0x1f) no bill has",
                               first_line + piece.count(b"\n", 0, piece.find(b"\x1f")))
    wanted = sorted(header.index(c) for c in COLUMNS)   # polars gives them in the file's order
    try:
        frame = pl.read_csv(piece.replace(CELL.encode(), b"\x1f"), has_header=False, separator="\x1f",
                            quote_char=None, infer_schema=False, columns=wanted, truncate_ragged_lines=False,
                            eol_char="\n", raise_if_empty=False)
        frame = frame.rename(dict(zip(frame.columns, [header[i] for i in wanted])))
    except pl.exceptions.PolarsError:
        frame = None
    rows = piece.count(b"\n")
    if frame is None or frame.height != rows or piece.count(CELL.encode()) != rows * (len(header) - 1):
        raise _unreadable(piece, header, first_line)
    first, last = header[wanted[0]], header[wanted[-1]]
    if wanted[0] == 0:                   # the row's first backtick is not a separator's
        frame = frame.with_columns(pl.col(first).str.strip_prefix("`"))
    if wanted[-1] == len(header) - 1:    # a CRLF file's last cell
        frame = frame.with_columns(pl.col(last).str.strip_suffix("\r"))
    return frame.lazy().with_row_index("line_no", offset=first_line).with_columns(pl.col("line_no").cast(pl.Int64))


def _yuan(column: str) -> pl.Expr:
    """An amount cell as integer minor units (fen for two decimals, 1/1000 fen for five); null if it is
    not one (the checks name it)."""
    return pl.col(column).str.replace(".", "", literal=True).cast(pl.Int64, strict=False)


def _is_amount(column: str, decimals: int) -> pl.Expr:
    return pl.col(column).str.contains(rf"^-?\d{{1,15}}\.\d{{{decimals}}}$")


def _checks(width: int) -> list[tuple[pl.Expr, str]]:
    """What every row must be, in the order the first failure is reported: (ok, message of the row)."""
    refund = pl.col("交易状态") == "REFUND"
    return [(pl.col("交易时间").str.len_chars() > 0, "a row without 交易时间 (a cell not after a backtick?)"),
            *((_is_amount(c, d), f"{c} {{{c}!r}} is not an amount with {d} decimals") for c, d in AMOUNTS),
            (pl.col("商户订单号").str.len_chars() > 0, "商户订单号 is empty"),
            (~refund | (pl.col("商户退款单号").str.len_chars() > 0), "商户退款单号 is empty on a refund"),
            (pl.when(refund).then(_yuan("退款金额") <= _yuan("申请退款金额"))
             .otherwise(_yuan("应结订单金额") <= _yuan("订单金额")),
             "the settled amount is more than the order's ({订单金额} / {申请退款金额})")]


def _normalized() -> list[pl.Expr]:
    refund = pl.col("交易状态") == "REFUND"
    status = pl.when(refund).then(pl.col("退款状态").replace_strict(REFUND_STATUS, default="unknown")) \
        .otherwise(pl.col("交易状态").replace_strict(PAYMENT_STATUS, default="unknown"))
    return [pl.col("line_no"), pl.when(refund).then(pl.lit("refund")).otherwise(pl.lit("payment")).alias("kind"),
            pl.col("微信订单号").alias("channel_transaction_id"), pl.col("商户订单号").alias("out_trade_no"),
            pl.when(refund).then(pl.col("商户退款单号")).otherwise(None).alias("out_refund_no"),
            pl.when(refund).then(_yuan("申请退款金额")).otherwise(_yuan("订单金额")).alias("amount"),
            pl.when(refund).then(_yuan("退款金额")).otherwise(_yuan("应结订单金额")).alias("settled_amount"),
            _yuan("手续费").alias("fee_millis"), status.alias("status"), pl.col("交易时间").alias("time")]


def _unreadable(piece: bytes, header: list[str], first_line: int) -> StatementInvalid:
    """The first row of a piece that does not split into the header's cells, each after a backtick."""
    for number, line in enumerate(piece.decode("utf-8").split("\n"), start=first_line):
        line = line.rstrip("\r")
        if line and (not line.startswith("`") or len(line.split(CELL)) != len(header)):
            return StatementInvalid(f"the bill rows cannot be read: not {len(header)} cells, each after a "
                                    f"backtick", number)
    return StatementInvalid("the bill rows cannot be read")


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
