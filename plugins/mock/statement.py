"""The sandbox's daily statements. Its statement of splits: `# paymux sandbox splits DAY`, a CSV header
`time,kind,channel_id,out_no,amount`, one row per split or return (fen), and `# total splits=…
split_amount=… returns=… return_amount=…` last.

The sandbox's daily statement: `#` title line, CSV header, one row per payment, refund or payout
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

from gateway.channel import ParsedStatement, SplitLine, StatementInvalid
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


SPLIT_TOTAL = re.compile(r"^# total splits=(\d+) split_amount=(\d+) returns=(\d+) return_amount=(\d+)\s*$")


def _framed(content: bytes, title: str, total_line: re.Pattern[str]) -> tuple[list[bytes], re.Match[str]]:
    """The lines of a sandbox file that opens with `# {title}` and ends with its `# total …` line."""
    empty_check(content)
    lines = content.rstrip(b"\n").split(b"\n")
    if not lines[0].startswith(f"# {title}".encode()):
        raise StatementInvalid(f"not a sandbox statement (its first line is not '# {title} …')", 1)
    total = total_line.match(lines[-1].decode("utf-8", "replace"))
    if total is None or len(lines) < 3:
        raise StatementInvalid("truncated: the '# total …' line that ends a sandbox statement is missing", len(lines))
    return lines, total


def parse_sandbox_splits(content: bytes) -> list[SplitLine]:
    lines, total = _framed(content, "paymux sandbox splits", SPLIT_TOTAL)
    if len(lines) == 3:   # a day without splits
        return _totalled([], total, len(lines))
    frame = read_table(b"\n".join(lines[1:-1]), 2, ["time", "kind", "channel_id", "out_no", "amount"], "statement")
    first_failure(frame, frame["amount"].str.contains(r"^\d{1,15}$"), "amount {amount!r} is not a whole number")
    first_failure(frame, frame["kind"].is_in(["split", "return"]), "kind {kind!r} is not split or return")
    parsed = [SplitLine(int(r["line_no"]), r["kind"], r["out_no"] or None, r["channel_id"] or None, int(r["amount"]),
                        r["time"] or "") for r in frame.iter_rows(named=True)]
    return _totalled(parsed, total, len(lines))


def _totalled(parsed: list[SplitLine], total: re.Match, last_line: int) -> list[SplitLine]:
    splits, split_amount, returns, return_amount = (int(g) for g in total.groups())
    declared = (splits, split_amount, returns, return_amount)
    found = (sum(x.kind == "split" for x in parsed), sum(x.amount for x in parsed if x.kind == "split"),
             sum(x.kind == "return" for x in parsed), sum(x.amount for x in parsed if x.kind == "return"))
    if declared != found:
        raise StatementInvalid(f"its lines add up to {found}, its total line says {declared}", last_line)
    return parsed
