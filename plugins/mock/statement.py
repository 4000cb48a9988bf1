"""The sandbox's daily statement: `#` title line, CSV header, one row per payment, refund or payout
(amounts in fen, fee_millis in 1/1000 fen; a payout's out_payout_no in out_trade_no, a second line
RETURNED on the day the receiving bank sent it back), `# total rows=…
payments=… payment_amount=… refunds=… refund_amount=…` as the last line (rows counts payouts too)."""
from __future__ import annotations

import re

import polars as pl

from gateway.channel import ParsedStatement, StatementInvalid
from plugins.statements import empty_check, first_failure, normalized, read_table

COLUMNS = ["time", "transaction_id", "out_trade_no", "out_refund_no", "kind", "status", "amount", "fee_millis"]
TOTAL = re.compile(r"^# total rows=(\d+) payments=(\d+) payment_amount=(\d+) refunds=(\d+) refund_amount=(\d+)\s*$")
STATUS = {"SUCCESS": "succeeded", "FAIL": "failed", "CLOSED": "closed", "RETURNED": "returned"}


def parse_sandbox_statement(content: bytes) -> ParsedStatement:
    empty_check(content)
    lines = content.rstrip(b"\n").split(b"\n")
    if not lines[0].startswith(b"# paymux sandbox statement"):
        raise StatementInvalid("not a sandbox statement (its first line is not '# paymux sandbox statement …')", 1)
    total = TOTAL.match(lines[-1].decode("utf-8", "replace"))
    if total is None or len(lines) < 3:
        raise StatementInvalid("truncated: the '# total …' line that ends a sandbox statement is missing", len(lines))
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
