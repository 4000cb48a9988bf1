"""The Channel base class and the normalized types a channel plugin returns.

A plugin maps between these types and its channel's wire protocol. It never touches the
database, the ledger or the merchant API; it claims SUCCEEDED or FAILED only when the channel
said so from a verified source, and everything it cannot be sure of is PENDING or UNKNOWN.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Protocol

import httpx

if TYPE_CHECKING:
    import polars


class Outcome(str, enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PENDING = "pending"   # the channel has it and has not finished (e.g. waiting for the payer)
    UNKNOWN = "unknown"   # no trustworthy answer: timeout, 5xx, garbage. Never a failure.
    CLOSED = "closed"     # the channel closed it unpaid


class Capability(str, enum.Enum):
    PAY = "pay"
    QUERY = "query"
    CLOSE = "close"
    REFUND = "refund"
    REFUND_QUERY = "refund_query"
    NOTIFY = "notify"
    HOSTED_PAGES = "hosted_pages"
    STATEMENT = "statement"
    PAYOUT = "payout"          # payout() and query_payout(): pay a bank account from the account's position
    SPLIT = "split"            # split() and query_split(): pass part of a paid order on to a receiver
    SPLIT_RETURN = "split_return"   # return_split() and query_split_return(): take a split back from its receiver
    # finish_split() and query_split_finish(): the channel holds a payment made to be split frozen until
    # told the splitting is over (WeChat Pay unfreeze, Alipay royalty_finish), and then releases what is left
    SPLIT_FINISH = "split_finish"


class Clock(Protocol):
    """The core's one clock (tests move it): a channel reads the time from it, never from the system."""

    def now(self) -> datetime: ...

    def timestamp(self) -> int: ...


@dataclass(frozen=True)
class ChannelContext:
    """What the core hands a channel: its account, settings, one HTTP client, a clock and a logger."""

    account_id: str
    settings: Any            # whatever the channel's parse_settings returned
    http: httpx.AsyncClient
    clock: Clock
    log: Any
    public_url: str

    @property
    def notify_url(self) -> str:
        return f"{self.public_url.rstrip('/')}/v1/notify/{self.account_id}"


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
    order less its fee), and not before not_before_seconds after it was paid."""

    max_share_bps: int | None = None
    not_before_seconds: float = 0


@dataclass(frozen=True)
class SplitResult:
    """A split's, a return's or a finish's answer. `unheard`: a query's "no such order": send it again
    under the same number; a refusal of the first send stands."""

    outcome: Outcome
    channel_split_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    unheard: bool = False


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
    "status": "String",                 # succeeded | failed | closed | pending (normalized)
    "time": "String",                   # as the channel wrote it
}


@dataclass(frozen=True)
class ParsedStatement:
    """A statement as normalized lines (a polars DataFrame with STATEMENT_COLUMNS) plus the totals
    the channel declares in its own summary, kind -> (count, amount), to check the lines against."""

    lines: polars.DataFrame
    totals: Mapping[str, tuple[int, int]] | None = None


class FlowNotSupported(NotImplementedError):
    """A channel was asked for a flow it does not offer (the core checks capabilities first)."""

    def __init__(self, channel: Channel, capability: Capability) -> None:
        super().__init__(f"channel type {type(channel).__qualname__} does not support {capability.value}")
        self.capability = capability


class SettingsError(ValueError):
    """A channel account's settings are unusable; raised at start-up with the key that is wrong."""


class Channel:
    """Subclass this in a plugin. One instance serves one channel account.

    Declare in `capabilities` exactly the capabilities whose methods (CAPABILITY_METHODS, below) the
    subclass overrides: a plugin whose declarations and methods disagree is refused at start-up. A
    flow the channel does not offer keeps the base method, which raises FlowNotSupported."""

    name: ClassVar[str]                              # what `plugin = "..."` in the config names
    methods: ClassVar[tuple[str, ...]] = ()          # pay methods the channel offers, first is the default
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    currencies: ClassVar[frozenset[str] | None] = None   # None: any currency
    # Methods whose create() makes no call to the channel (it only signs a link or parameters, like
    # Alipay's page and wap pay). The core may then call create() before writing anything and store
    # the attempt in the request's one transaction. Leave empty when unsure: the default is safe.
    local_create_methods: ClassVar[tuple[str, ...]] = ()
    statement_currency: ClassVar[str] = "CNY"   # the currency of the amounts on its statements

    def __init__(self, ctx: ChannelContext) -> None:
        self.ctx = ctx

    @classmethod
    def parse_settings(cls, raw: Mapping[str, Any]) -> Any:
        """Validate the account's settings; raise SettingsError naming the bad key."""
        return dict(raw)

    async def create(self, request: CreatePayment) -> PaymentResult:
        raise FlowNotSupported(self, Capability.PAY)

    async def query(self, out_trade_no: str) -> PaymentResult:
        raise FlowNotSupported(self, Capability.QUERY)

    async def close(self, out_trade_no: str) -> PaymentResult:
        raise FlowNotSupported(self, Capability.CLOSE)

    async def refund(self, request: RefundRequest) -> RefundResult:
        raise FlowNotSupported(self, Capability.REFUND)

    async def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundResult:
        raise FlowNotSupported(self, Capability.REFUND_QUERY)

    async def parse_notification(self, notification: InboundNotification) -> list[ChannelEvent]:
        """Verify and decode a callback; raise NotificationRejected when it is not genuine."""
        raise FlowNotSupported(self, Capability.NOTIFY)

    async def download_statement(self, business_date: date) -> bytes:
        """The channel's statement file for one day, exactly as the channel serves it (checked against
        the hash the channel gives, where it gives one). Raise StatementUnavailable if there is none."""
        raise FlowNotSupported(self, Capability.STATEMENT)

    def parse_statement(self, content: bytes) -> ParsedStatement:
        """Read a statement file (as download_statement returned it) into normalized lines. Pure CPU,
        no I/O; raise StatementInvalid naming the line for a file that cannot be read as a whole.
        A statement of millions of lines should be parsed column-wise (plugins/statements.py helps)."""
        raise FlowNotSupported(self, Capability.STATEMENT)

    async def payout(self, request: PayoutRequest) -> PayoutResult:
        """Send a payout (Capability.PAYOUT) once. The same out_payout_no sent twice must be one payout;
        PENDING or UNKNOWN unless the channel's answer is documented as final."""
        raise FlowNotSupported(self, Capability.PAYOUT)

    async def query_payout(self, out_payout_no: str) -> PayoutResult:
        raise FlowNotSupported(self, Capability.PAYOUT)

    async def split(self, request: SplitRequest) -> SplitResult:
        """Pass part of a paid order to a receiver (Capability.SPLIT); the same out_split_no twice is one split."""
        raise FlowNotSupported(self, Capability.SPLIT)

    async def query_split(self, request: SplitRequest) -> SplitResult:
        raise FlowNotSupported(self, Capability.SPLIT)

    async def return_split(self, request: SplitReturn) -> SplitResult:
        """Take a split (part of it) back (Capability.SPLIT_RETURN); the same out_return_no twice is one return."""
        raise FlowNotSupported(self, Capability.SPLIT_RETURN)

    async def query_split_return(self, request: SplitReturn) -> SplitResult:
        raise FlowNotSupported(self, Capability.SPLIT_RETURN)

    async def finish_split(self, request: SplitFinish) -> SplitResult:
        """Release what the channel holds frozen of a payment made to be split (Capability.SPLIT_FINISH);
        the same out_finish_no twice is one release."""
        raise FlowNotSupported(self, Capability.SPLIT_FINISH)

    async def query_split_finish(self, request: SplitFinish) -> SplitResult:
        raise FlowNotSupported(self, Capability.SPLIT_FINISH)

    def split_limits(self) -> SplitLimits:
        """How much of a payment this account lets be split, and how soon after it was paid."""
        return SplitLimits()

    def acknowledge(self, accepted: bool, message: str = "") -> Acknowledgement:
        """What to answer the channel: accepted means "stop retrying"."""
        return Acknowledgement(200 if accepted else 400, b"" if accepted else message.encode())

    @classmethod
    def standalone_simulator(cls, workdir: Any, url: str) -> tuple[Any, str] | None:
        """Optional, for `paymux simulate NAME`: an ASGI app speaking the channel's side of the wire
        (keys kept in workdir), and the TOML [[channel_accounts]] block that points a gateway at url."""
        return None

    def hosted_app(self) -> Any | None:
        """An optional ASGI app the gateway mounts at /hosted/{account_id} (e.g. a checkout page)."""
        return None


# The methods that serve each capability. A channel type declares a capability exactly when it
# overrides these methods: checked when its plugin is discovered (gateway/plugins.py).
CAPABILITY_METHODS: Mapping[Capability, tuple[str, ...]] = {
    Capability.PAY: ("create",),
    Capability.QUERY: ("query",),
    Capability.CLOSE: ("close",),
    Capability.REFUND: ("refund",),
    Capability.REFUND_QUERY: ("query_refund",),
    Capability.NOTIFY: ("parse_notification",),
    Capability.HOSTED_PAGES: ("hosted_app",),
    Capability.STATEMENT: ("download_statement", "parse_statement"),
    Capability.PAYOUT: ("payout", "query_payout"),
    Capability.SPLIT: ("split", "query_split"),
    Capability.SPLIT_RETURN: ("return_split", "query_split_return"),
    Capability.SPLIT_FINISH: ("finish_split", "query_split_finish"),
}


def capability_mismatches(channel_type: type[Channel]) -> list[str]:
    """Where a channel type's declared capabilities and the methods it overrides disagree, one line
    each naming the capability and the method; empty when they agree."""
    problems = []
    for capability, methods in CAPABILITY_METHODS.items():
        declared = capability in channel_type.capabilities
        for method in methods:
            overridden = getattr(channel_type, method) is not getattr(Channel, method)
            if declared and not overridden:
                problems.append(f"declares capability {capability.value!r} but does not override {method}()")
            elif overridden and not declared:
                problems.append(f"overrides {method}() but does not declare capability {capability.value!r}")
    return problems
