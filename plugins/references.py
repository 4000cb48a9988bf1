"""What a channel can read back from the references paymux makes (out_trade_no, out_refund_no)."""
from __future__ import annotations

from datetime import UTC, datetime


def order_time(reference: str) -> datetime | None:
    """When paymux made an out_trade_no or out_refund_no: its first 12 hex digits are the creation time
    in milliseconds (UTC). For channels that want the order's time back on a query (UnionPay's txnTime,
    Alipay's close of an order it has not seen)."""
    try:
        return datetime.fromtimestamp(int(reference[:12], 16) / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return None
