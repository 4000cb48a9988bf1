"""The sandbox's daily statement: `#` title line, CSV header, one row per payment, refund or payout
(amounts in fen, fee_millis in 1/1000 fen; a payout's out_payout_no in out_trade_no, a second line
RETURNED on the day the receiving bank sent it back), `# total rows=…
payments=… payment_amount=… refunds=… refund_amount=…` as the last line (rows counts payouts too).

Read like the channels' bills (plugins.statements): the title, header and total line from the file's
ends, the rows piece by piece, so no more of the file is held than a piece. Each piece's rows are
checked as they are read (the first failing row of the first failing piece is named)."""
from __future__ import annotations

import re
from typing import Iterator

import polars as pl

from gateway.channel import ParsedStatement, StatementInvalid
from plugins.statements import (SCHEMA, Source, empty_check, ends, first_failure, line_pieces, lines_before,
                                normalized, opened, read_table)

COLUMNS = ["time", "transaction_id", "out_trade_no", "out_refund_no", "kind", "status", "amount", "fee_millis"]
TITLE = b"# paymux sandbox statement"
TOTAL = re.compile(r"^# total rows=(\d+) payments=(\d+) payment_amount=(\d+) refunds=(\d+) refund_amount=(\d+)\s*$")
STATUS = {"SUCCESS": "succeeded", "FAIL": "failed", "CLOSED": "closed", "RETURNED": "returned"}


def parse_sandbox_statement(content: Source) -> ParsedStatement:
    """The whole statement (its bytes, or its file) as one ParsedStatement: its pieces put together."""
    parts, totals = [], None
    for piece in sandbox_statement_pieces(content):
        parts.append(piece.lines)
        totals = piece.totals or totals
    return ParsedStatement(pl.concat(parts, rechunk=False) if parts else pl.DataFrame(schema=SCHEMA), totals)


def sandbox_statement_pieces(source: Source) -> Iterator[ParsedStatement]:
    """The statement read piece by piece (plugins.statements.line_pieces), each piece's rows checked
    and given as they are read; the last piece, without lines, carries the declared totals."""
    first, tail, tail_start = ends(source)
    if tail_start == 0:
        empty_check(tail)
    if not first.startswith(TITLE):
        raise StatementInvalid("not a sandbox statement (its first line is not '# paymux sandbox statement …')", 1)
    body = tail.rstrip(b"\n")
    total_start = tail_start + body.rfind(b"\n") + 1     # where the last line begins
    total = TOTAL.match(body[total_start - tail_start:].decode("utf-8", "replace"))
    with opened(source) as stream:
        stream.seek(len(first))
        header = stream.readline()
    rows_start = len(first) + len(header)
    if total is None or total_start < rows_start or not header.strip():
        raise StatementInvalid("truncated: the '# total …' line that ends a sandbox statement is missing",
                               lines_before(source, tail_start + len(body)))
    read_table(header, 2, COLUMNS, "statement")           # the header names every column, rows or none
    for piece, line in line_pieces(source, rows_start, total_start):
        yield normalized(_lines(read_table(header + piece, line - 1, COLUMNS, "statement")), None)
    rows, payments, paid, refunds, refunded = (int(g) for g in total.groups())
    yield ParsedStatement(pl.DataFrame(schema=SCHEMA), {
        "rows": rows, "payment_count": payments, "payment_amount": paid, "refund_count": refunds,
        "refund_amount": refunded})


def _lines(frame: pl.DataFrame) -> pl.DataFrame:
    for column in ("amount", "fee_millis"):
        first_failure(frame, frame[column].str.contains(r"^-?\d{1,15}$"), f"{column} {{{column}!r}} is not a whole number")
    first_failure(frame, frame["kind"].is_in(["payment", "refund", "payout"]),
                  "kind {kind!r} is not payment, refund or payout")
    return frame.with_columns(
        channel_transaction_id=pl.col("transaction_id"),
        out_refund_no=pl.when(pl.col("kind") == "refund").then(pl.col("out_refund_no")).otherwise(None),
        amount=pl.col("amount").cast(pl.Int64), fee_millis=pl.col("fee_millis").cast(pl.Int64),
        status=pl.col("status").replace_strict(STATUS, default="unknown"))
