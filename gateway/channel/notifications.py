"""Channel callbacks: what arrived, the verified events read from it, and the answer the channel expects."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from gateway.channel.context import Outcome
from gateway.channel.operations import Discount, PaymentResult, PayoutResult, RefundResult, SplitResult


@dataclass(frozen=True)
class InboundNotification:
    """A channel callback exactly as it arrived: the raw body bytes, never re-encoded."""

    method: str
    path: str
    headers: Mapping[str, str]   # lower-case names
    query: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class ChannelEvent:
    """One verified fact from a callback. kind is "payment", "refund", "payout" (out_trade_no then
    carries the out_payout_no) or "split" (out_split_no; channel_transaction_id: the channel's split id)."""

    kind: str
    out_trade_no: str
    outcome: Outcome
    amount: int | None = None
    currency: str | None = None
    channel_transaction_id: str | None = None
    out_refund_no: str | None = None
    channel_refund_id: str | None = None
    out_split_no: str | None = None
    discounts: tuple[Discount, ...] = ()     # a payment's, as in PaymentResult
    payer_amount: int | None = None
    settled_amount: int | None = None
    attention: str | None = None             # a refund's, as in RefundResult
    error_code: str | None = None            # the channel's word for the state (e.g. ABNORMAL, CLOSED)


def unstorable(answer: PaymentResult | RefundResult | PayoutResult | SplitResult | ChannelEvent) -> bool:
    """Does a normalized answer (a result or an event) hold text no record can keep: a NUL or a lone
    surrogate, in any of its own text fields or its discounts'? The core then treats it as no answer."""
    texts = [v for v in vars(answer).values() if isinstance(v, str)]
    texts += [t for d in getattr(answer, "discounts", ()) for t in (d.name, d.campaign) if t]
    return any(_UNSTORABLE.search(t) for t in texts)


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class Acknowledgement:
    """The exact HTTP answer the channel expects to a callback."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain"


class NotificationRejected(Exception):
    """The callback failed verification (signature, timestamp, format). Nothing is applied."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
