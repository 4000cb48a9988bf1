"""The money operations a channel serves, each a request and the channel's normalized answer:
payments (with their discounts), refunds, payouts, splits, their returns and their finish."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from gateway.channel.context import Outcome


@dataclass(frozen=True)
class CreatePayment:
    # Made by paymux, unique per attempt; its first 12 hex digits are its creation time in UTC
    # milliseconds (plugins/references.py reads it back), and so are an out_refund_no's.
    out_trade_no: str
    amount: int
    currency: str
    subject: str
    method: str
    expires_at: datetime | None
    metadata: Mapping[str, str] = field(default_factory=dict)
    # The merchant will split it among receivers: channels that must know at creation are told here
    # (WeChat Pay's settle_info.profit_sharing freezes the money for splitting).
    split: bool = False


@dataclass(frozen=True)
class Discount:
    """A discount on a paid order, as the channel's verified answer reports it: how much of the order
    the payer did not pay, who funded it, and how much of it the channel keeps out of what it pays
    us. The ledger books it by funder; no merchant request can make one (a platform-funded one must
    also be a campaign the platform configured, named by `campaign`)."""

    amount: int                 # minor units the payer did not pay
    merchant_funded: int = 0    # WeChat Pay merchant_contribute, Alipay merchant_contribute
    channel_funded: int = 0     # WeChat Pay wechatpay_contribute: the channel's own
    other_funded: int = 0       # other_contribute: a bank, a brand, a platform's campaign
    unsettled: int = 0          # the part the channel does not pay us (WeChat Pay NOCASH, Alipay's merchant part)
    campaign: str | None = None  # the channel's id of what it came from (WeChat stock_id, Alipay template_id)
    name: str = ""

    def problem(self) -> str | None:
        """Why these figures cannot be true, or None."""
        parts = (self.amount, self.merchant_funded, self.channel_funded, self.other_funded, self.unsettled)
        if any(not isinstance(x, int) or isinstance(x, bool) or x < 0 for x in parts):
            return "discount figures must be non-negative integers"
        if self.merchant_funded + self.channel_funded + self.other_funded != self.amount:
            return f"discount of {self.amount} funded {self.merchant_funded}+{self.channel_funded}+{self.other_funded}"
        if self.unsettled > self.amount:
            return f"discount of {self.amount} cannot keep {self.unsettled} from the settlement"
        return None


@dataclass(frozen=True)
class PaymentResult:
    """The channel's answer about one attempt (create, query or close)."""

    outcome: Outcome
    action: Mapping[str, Any] | None = None          # e.g. {"type": "redirect", "url": ...}
    channel_transaction_id: str | None = None
    amount: int | None = None                        # what the channel says was paid
    currency: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    # FAILED on create, and another channel account may well take the payment (this account is
    # suspended, over its quota, …): the router fails over. UNKNOWN on create fails over too, as long
    # as no action (link, QR code) came back, since then nobody can pay the first attempt.
    retryable: bool = False
    # On a success, as the channel reported them (empty: none). payer_amount: what the payer paid;
    # settled_amount: what the channel will pay us for the order. Either may be None when unsaid.
    discounts: tuple[Discount, ...] = ()
    payer_amount: int | None = None
    settled_amount: int | None = None


@dataclass(frozen=True)
class RefundRequest:
    out_trade_no: str
    out_refund_no: str
    amount: int
    total_amount: int
    currency: str
    reason: str | None


@dataclass(frozen=True)
class RefundResult:
    """The channel's answer about one refund. `unheard`: a query's "no such refund": the request never
    took effect there, so it may be sent again under the same out_refund_no (and a refusal of it stands).
    `attention`: PENDING, and the channel says a person must act before it can end (WeChat Pay ABNORMAL:
    the money left the merchant and the payer's bank refused it): the refund stays reserved and shown."""

    outcome: Outcome
    channel_refund_id: str | None = None
    amount: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    unheard: bool = False
    attention: str | None = None


@dataclass(frozen=True)
class PayoutRequest:
    """Pay `amount` from the channel account's position to a bank account, under out_payout_no: made
    by paymux just before the send (so its time is the send's), and never sent again once it may have
    left. Should it ever reach the channel twice, the channel must still pay it once."""

    out_payout_no: str
    amount: int
    currency: str
    account_name: str
    account_no: str
    bank_code: str | None
    remark: str | None


@dataclass(frozen=True)
class PayoutResult:
    """The channel's answer about one payout. A payout may be paid twice only if it is sent twice, so:
    `unheard`: the channel says it has no record of the number (now): never a failure, and no reason
    to send it again (its request may still be on its way; only a settled statement proves it absent).
    `not_sent`: the plugin did not send the payout at all (nothing left this process), so the core may
    send it afresh. FAILED with `retryable`: nothing was paid and another account may pay it."""

    outcome: Outcome
    channel_payout_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    unheard: bool = False
    retryable: bool = False
    not_sent: bool = False


@dataclass(frozen=True)
class SplitRequest:
    """Pass `amount` of a paid order on to a receiver (WeChat Pay profit sharing, Alipay order
    settle). receiver_account is the receiver's binding for this channel account, or its account."""

    out_split_no: str
    out_trade_no: str
    channel_transaction_id: str | None
    amount: int
    currency: str
    receiver_type: str
    receiver_account: str
    receiver_name: str
    description: str


@dataclass(frozen=True)
class SplitReturn:
    """Take `amount` of a split back from its receiver (WeChat Pay's profit-sharing return)."""

    out_return_no: str
    out_split_no: str
    out_trade_no: str
    channel_transaction_id: str | None
    channel_split_id: str | None
    amount: int
    currency: str
    receiver_type: str
    receiver_account: str
    description: str


@dataclass(frozen=True)
class SplitFinish:
    """The splitting of a paid order is over: the channel releases to the merchant what it still holds
    frozen of it (WeChat Pay /v3/profitsharing/orders/unfreeze, Alipay order.settle with royalty_finish).
    amount: what paymux believes is left (the channel's word decides)."""

    out_finish_no: str
    out_trade_no: str
    channel_transaction_id: str | None
    amount: int
    currency: str
    description: str


@dataclass(frozen=True)
class SplitLimits:
    """How a channel lets a payment be split: at most max_share_bps of the order in all (None: up to the
    order less its fee), and not before not_before_seconds after it was paid. frozen_days: a channel that
    holds a payment frozen for splitting (Capability.SPLIT_FINISH) lets go of what is left itself this
    many days after the payment, as it documents (None: it never does, or holds nothing)."""

    max_share_bps: int | None = None
    not_before_seconds: float = 0
    frozen_days: int | None = None


@dataclass(frozen=True)
class SplitResult:
    """A split's, a return's or a finish's answer. `unheard`: a query's "no such order": send it again
    under the same number; a refusal of the first send stands."""

    outcome: Outcome
    channel_split_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    unheard: bool = False
