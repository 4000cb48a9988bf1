"""A channel's statement files, as normalized lines for reconciliation."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    import polars


class StatementUnavailable(Exception):
    """The channel has no statement for that day (yet), or the one it served failed its check."""


class StatementInvalid(Exception):
    """A statement file that cannot be read as a whole: empty, truncated, wrongly encoded, malformed.
    `line` is the 1-based line of the file where it went wrong, when one line is to blame."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


# The columns of ParsedStatement.lines, one row per statement line (a payment, a refund or a payout):
STATEMENT_COLUMNS = {
    "line_no": "Int64",                 # 1-based line of the file
    "kind": "String",                   # payment | refund | payout
    "channel_transaction_id": "String",
    "out_trade_no": "String",           # our attempt's out-trade-no (a payout line: its out_payout_no)
    "out_refund_no": "String",          # our refund's out-refund-no (refund lines; null on payments)
    "amount": "Int64",                  # minor units, positive, what was paid or refunded (the order's figure)
    "settled_amount": "Int64",          # what the channel settles for the line: amount less the discount it
                                        # keeps out of what it pays (null: all of amount); fees are on this
    "fee_millis": "Int64",              # the channel's fee in 1/1000 minor unit: + charged, - given back
    "status": "String",                 # succeeded | failed | closed | pending (normalized); returned: a
                                        # payout line of the day the receiving bank sent it back (退票)
    "time": "String",                   # as the channel wrote it
}


@dataclass(frozen=True)
class ParsedStatement:
    """A statement as normalized lines (a polars DataFrame with STATEMENT_COLUMNS) plus the totals
    the channel declares in its own summary, kind -> (count, amount), to check the lines against."""

    lines: polars.DataFrame
    totals: Mapping[str, tuple[int, int]] | None = None
