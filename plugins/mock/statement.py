"""The sandbox's daily statements. Its statement of splits: `# paymux sandbox splits DAY`, a CSV header
`time,kind,channel_id,out_no,amount`, one row per split or return (fen), and `# total splits=…
split_amount=… returns=… return_amount=…` last.

The sandbox's daily statement: `#` title line, CSV header, one row per payment, refund or payout
(amounts in fen, fee_millis in 1/1000 fen; a payout's out_payout_no in out_trade_no, a second line
RETURNED on the day the receiving bank sent it back), `# total rows=…
payments=… payment_amount=… refunds=… refund_amount=…` as the last line (rows counts payouts too)."""
from __future__ import annotations

import re

import polars as pl

from gateway.channel import ParsedStatement, SplitLine, StatementInvalid
from plugins.statements import empty_check, first_failure, normalized, read_table

COLUMNS = ["time", "transaction_id", "out_trade_no", "out_refund_no", "kind", "status", "amount", "fee_millis"]
TOTAL = re.compile(r"^# total rows=(\d+) payments=(\d+) payment_amount=(\d+) refunds=(\d+) refund_amount=(\d+)\s*$")
STATUS = {"SUCCESS": "succeeded", "FAIL": "failed", "CLOSED": "closed", "RETURNED": "returned"}


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


def parse_sandbox_statement(content: bytes) -> ParsedStatement:
    lines, total = _framed(content, "paymux sandbox statement", TOTAL)
    frame = read_table(b"\n".join(lines[1:-1]), 2, COLUMNS, "statement")
    for column in ("amount", "fee_millis"):
        first_failure(frame, frame[column].str.contains(r"^-?\d{1,15}$"), f"{column} {{{column}!r}} is not a whole number")
    first_failure(frame, frame["kind"].is_in(["payment", "refund", "payout"]),
                  "kind {kind!r} is not payment, refund or payout")
    frame = frame.with_columns(
        channel_transaction_id=pl.col("transaction_id"),
        out_refund_no=pl.when(pl.col("kind") == "refund").then(pl.col("out_refund_no")).otherwise(None),
        amount=pl.col("amount").cast(pl.Int64), fee_millis=pl.col("fee_millis").cast(pl.Int64),
        status=pl.col("status").replace_strict(STATUS, default="unknown"))
    rows, payments, paid, refunds, refunded = (int(g) for g in total.groups())
    return normalized(frame, {"rows": rows, "payment_count": payments, "payment_amount": paid,
                              "refund_count": refunds, "refund_amount": refunded})


SPLIT_TOTAL = re.compile(r"^# total splits=(\d+) split_amount=(\d+) returns=(\d+) return_amount=(\d+)\s*$")


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
