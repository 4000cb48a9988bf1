"""Tables of the gateway. Timestamps are naive UTC; amounts are integers in minor units."""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, LargeBinary, Text, UniqueConstraint
from sqlalchemy import false as sa_false
from sqlalchemy import true as sa_true
from sqlmodel import Field, SQLModel

from ledger.models import ID   # 64-bit ids (INTEGER, the rowid, on SQLite)


class Merchant(SQLModel, table=True):
    __tablename__ = "merchants"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    secret_sealed: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="active", max_length=20)
    notify_url: Optional[str] = Field(default=None, max_length=2000)
    created_at: datetime


class RequestNonce(SQLModel, table=True):
    """Nonces seen within the signature window: a replayed request is refused."""

    __tablename__ = "request_nonces"

    merchant_id: str = Field(primary_key=True, max_length=40)
    nonce: str = Field(primary_key=True, max_length=128)
    created_at: datetime = Field(index=True)


class IdempotencyKey(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    merchant_id: str = Field(primary_key=True, max_length=40)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    status: str = Field(max_length=20)  # in_progress | completed
    resource_id: Optional[str] = Field(default=None, max_length=40)
    response_status: Optional[int] = None
    response_body: Optional[bytes] = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = Field(index=True)
    completed_at: Optional[datetime] = None


class Payment(SQLModel, table=True):
    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("merchant_id", "merchant_order_no", name="uq_payments_merchant_order"),
                      # an operator searches by order no alone (the console); newest-first lists and days
                      # use the primary key (ids are time-ordered), channel ids the attempts' index
                      Index("ix_payments_order_no", "merchant_order_no"))

    id: str = Field(primary_key=True, max_length=40)
    merchant_id: str = Field(foreign_key="merchants.id", max_length=40)
    merchant_order_no: str = Field(max_length=64)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    subject: str = Field(max_length=256)
    channel_account: str = Field(max_length=64)
    method: str = Field(max_length=32)
    status: str = Field(max_length=20, index=True)  # processing | succeeded | failed | closed
    refunded_amount: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    refund_pending_amount: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    # Passed on to receivers, or on its way (splits that have not failed), and given back from them.
    split_amount: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0,
                                                          server_default="0"))
    splittable: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})  # to be split
    # What the channel holds frozen of it for splitting (a payment made to be split at a channel that
    # freezes one): its share, less what splits and refunds took, until the splitting is finished.
    frozen_amount: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0,
                                                           server_default="0"))
    notify_url: Optional[str] = Field(default=None, max_length=2000)
    metadata_: dict = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False))
    channel_transaction_id: Optional[str] = Field(default=None, max_length=128)
    fee_amount: Optional[int] = Field(default=None, sa_column=Column(BigInteger, nullable=True))  # booked at success
    # At success, from the channel's verified answer: what it keeps of the order's coupons, and the
    # coupons themselves with what each campaign of the platform's paid back ({"lines": [...], "campaigns": {...}}).
    discount_amount: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0,
                                                             server_default="0"))
    discounts: Optional[dict] = Field(default=None, sa_column=Column(JSON, nullable=True))
    failure_code: Optional[str] = Field(default=None, max_length=64)
    failure_message: Optional[str] = Field(default=None, max_length=500)
    expires_at: Optional[datetime] = None
    paid_at: Optional[datetime] = None
    created_at: datetime
    updated_at: datetime


class Attempt(SQLModel, table=True):
    """One call to a channel, with its own out-trade-number; a retry is a new attempt."""

    __tablename__ = "attempts"
    __table_args__ = (Index("ix_attempts_account_created", "channel_account", "created_at"),
                      Index("ix_attempts_channel_transaction", "channel_transaction_id"))

    id: str = Field(primary_key=True, max_length=40)
    payment_id: str = Field(foreign_key="payments.id", index=True, max_length=40)
    # The payment's amount, kept on each attempt so reconciliation reads one table in bulk.
    amount: Optional[int] = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    out_trade_no: str = Field(unique=True, max_length=64)
    channel_account: str = Field(max_length=64)
    method: str = Field(max_length=32)
    # created (not yet answered) | pending | unknown | succeeded | failed | closed
    status: str = Field(max_length=20, index=True)
    action: Optional[dict] = Field(default=None, sa_column=Column(JSON, nullable=True))
    channel_transaction_id: Optional[str] = Field(default=None, max_length=128)
    error_code: Optional[str] = Field(default=None, max_length=64)
    error_message: Optional[str] = Field(default=None, max_length=500)
    # The janitor's schedule: when to ask the channel next, how often it has, and when it gave up.
    next_query_at: Optional[datetime] = Field(default=None, index=True)
    queries: int = 0
    exception_at: Optional[datetime] = None
    # Why the router sent this attempt here: the rule that chose it, the accounts it skipped and why,
    # and the attempt it failed over from.
    routing: Optional[dict] = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime
    updated_at: datetime


class Refund(SQLModel, table=True):
    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("merchant_id", "merchant_refund_no", name="uq_refunds_merchant_refund"),)

    id: str = Field(primary_key=True, max_length=40)
    payment_id: str = Field(foreign_key="payments.id", index=True, max_length=40)
    attempt_id: str = Field(foreign_key="attempts.id", max_length=40)
    merchant_id: str = Field(foreign_key="merchants.id", max_length=40)
    merchant_refund_no: str = Field(max_length=64)
    out_refund_no: str = Field(unique=True, max_length=64)
    channel_account: str = Field(max_length=64)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    reason: Optional[str] = Field(default=None, max_length=256)
    status: str = Field(max_length=20, index=True)  # processing | succeeded | failed
    fee_refund: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))  # fee given back
    # Its share of the payment's discount: what the channel does not take back from us, and what goes
    # back to each campaign that paid the merchant ({campaign id: amount}).
    discount_refund: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0,
                                                             server_default="0"))
    campaign_refund: Optional[dict] = Field(default=None, sa_column=Column(JSON, nullable=True))
    # merchant: asked for by the merchant; duplicate: paymux returning a second payment of one order
    kind: str = Field(default="merchant", max_length=20, sa_column_kwargs={"server_default": "merchant"})
    submitted: bool = Field(default=True, sa_column_kwargs={"server_default": sa_true()})  # sent to the channel yet
    channel_refund_id: Optional[str] = Field(default=None, max_length=128)
    failure_code: Optional[str] = Field(default=None, max_length=64)
    failure_message: Optional[str] = Field(default=None, max_length=500)
    # The channel holds it and a person must act before it ends (WeChat Pay ABNORMAL): still reserved.
    attention_code: Optional[str] = Field(default=None, max_length=64)
    attention_message: Optional[str] = Field(default=None, max_length=500)
    attention_at: Optional[datetime] = None
    next_query_at: Optional[datetime] = Field(default=None, index=True)
    queries: int = 0
    exception_at: Optional[datetime] = None
    created_at: datetime
    updated_at: datetime


class ChannelCallback(SQLModel, table=True):
    """Every inbound channel callback, verified or not: the evidence behind a state change."""

    __tablename__ = "channel_callbacks"
    __table_args__ = (Index("ix_channel_callbacks_account_received", "channel_account", "received_at"),
                      Index("ix_channel_callbacks_reference", "reference"))

    id: Optional[int] = Field(default=None, sa_column=Column(ID, primary_key=True))
    channel_account: str = Field(max_length=64)
    received_at: datetime
    verified: bool
    outcome: str = Field(max_length=40)  # applied | duplicate | rejected | mismatch | unknown_reference
    detail: Optional[str] = Field(default=None, max_length=500)
    reference: Optional[str] = Field(default=None, max_length=64)
    # The body of a verified callback as operators see it, with the payer's and receiver's identities and
    # every secret redacted (gateway/redact.py), kept before the channel is told "success".
    body: Optional[bytes] = Field(default=None, sa_column=Column(LargeBinary, nullable=True))


class MerchantEvent(SQLModel, table=True):
    """An outbox row: written in the transaction of the state change it announces, delivered later."""

    __tablename__ = "merchant_events"
    __table_args__ = (Index("ix_merchant_events_due", "status", "next_attempt_at"),
                      Index("ix_merchant_events_merchant", "merchant_id", "seq"),
                      Index("ix_merchant_events_resource", "resource_id"))

    seq: Optional[int] = Field(default=None, sa_column=Column(ID, primary_key=True))
    id: str = Field(unique=True, max_length=40)          # evt_…, stable across redeliveries
    merchant_id: str = Field(foreign_key="merchants.id", max_length=40)
    type: str = Field(max_length=40)                     # payment.succeeded, refund.failed, …
    resource_id: str = Field(max_length=40)
    payload: dict = Field(sa_column=Column(JSON, nullable=False))
    notify_url: Optional[str] = Field(default=None, max_length=2000)
    status: str = Field(max_length=20)                   # pending | delivered | dead | no_endpoint
    # The request (or janitor pass) that made the change: the same id is on its log lines and is
    # sent as Paymux-Request-Id with each delivery, so one payment can be followed end to end.
    request_id: Optional[str] = Field(default=None, max_length=64)
    attempts: int = 0
    next_attempt_at: Optional[datetime] = None
    lease_until: Optional[datetime] = None
    last_error: Optional[str] = Field(default=None, max_length=500)
    created_at: datetime
    delivered_at: Optional[datetime] = None


class ChannelHealth(SQLModel, table=True):
    """Channel calls per account and minute, summed over every process (see gateway/health.py)."""

    __tablename__ = "channel_health"

    channel_account: str = Field(primary_key=True, max_length=64)
    minute: datetime = Field(primary_key=True)
    calls: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    errors: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    timeouts: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    latency_ms: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class ChannelCircuit(SQLModel, table=True):
    """The last circuit change any process saw for an account."""

    __tablename__ = "channel_circuits"

    channel_account: str = Field(primary_key=True, max_length=64)
    state: str = Field(max_length=20)   # closed | open | half_open
    changed_at: datetime
    error_rate: float


class ReconRun(SQLModel, table=True):
    """One reconciliation of one channel account's statement for one business date."""

    __tablename__ = "recon_runs"
    __table_args__ = (Index("ix_recon_runs_account_date", "channel_account", "business_date"),)

    id: str = Field(primary_key=True, max_length=40)
    channel_account: str = Field(max_length=64)
    business_date: date
    sha256: str = Field(max_length=64)
    file_path: str = Field(max_length=1000)
    status: str = Field(max_length=20)          # running | completed | failed | superseded
    message: Optional[str] = Field(default=None, max_length=1000)
    statement_rows: int = 0
    counts: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    summary: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    payment_amount: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))  # succeeded lines
    refund_amount: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    fee_amount: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))      # the channel's fees
    fees_booked: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))     # by this run
    currency: str = Field(default="CNY", max_length=3)
    auto_resolved: int = 0
    open: int = 0
    started_at: datetime
    finished_at: Optional[datetime] = None


class ReconItem(SQLModel, table=True):
    """A statement line or local record reconciliation could not match: open until a rule or two people
    resolve it."""

    __tablename__ = "recon_items"
    __table_args__ = (Index("ix_recon_items_open", "channel_account", "status", "class"),
                      Index("ix_recon_items_reference", "reference"))

    id: Optional[int] = Field(default=None, sa_column=Column(ID, primary_key=True))
    run_id: str = Field(foreign_key="recon_runs.id", max_length=40, index=True)
    channel_account: str = Field(max_length=64)
    business_date: date
    class_: str = Field(sa_column=Column("class", Text, nullable=False))
    kind: str = Field(max_length=10)                       # payment | refund
    reference: str = Field(max_length=64)                  # out_trade_no or out_refund_no
    out_trade_no: Optional[str] = Field(default=None, max_length=64)
    line_no: Optional[int] = None
    channel_transaction_id: Optional[str] = Field(default=None, max_length=128)
    channel_status: Optional[str] = Field(default=None, max_length=20)
    local_status: Optional[str] = Field(default=None, max_length=20)
    channel_amount: Optional[int] = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    local_amount: Optional[int] = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # What each side did to the money in channel clearing: + received, - paid out (refunds), 0 nothing.
    channel_effect: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    local_effect: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    channel_fee_millis: Optional[int] = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    expected_fee_millis: Optional[int] = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    attempt_id: Optional[str] = Field(default=None, max_length=40)
    refund_id: Optional[str] = Field(default=None, max_length=40)
    payment_id: Optional[str] = Field(default=None, max_length=40)
    merchant_id: Optional[str] = Field(default=None, max_length=40)
    status: str = Field(max_length=20)                     # open | resolved | superseded
    resolution: Optional[str] = Field(default=None, max_length=60)   # the rule's name, or the action
    resolved_by: Optional[str] = Field(default=None, max_length=100)
    resolved_at: Optional[datetime] = None
    note: Optional[str] = Field(default=None, max_length=500)
    created_at: datetime


class ReconProposal(SQLModel, table=True):
    """Maker-checker: one person proposes how to resolve an item, another approves it."""

    __tablename__ = "recon_proposals"

    id: Optional[int] = Field(default=None, sa_column=Column(ID, primary_key=True))
    item_id: int = Field(sa_column=Column(ID, ForeignKey("recon_items.id"), nullable=False, index=True))
    action: str = Field(max_length=20)                     # adjust | dismiss
    reason: str = Field(max_length=500)
    proposed_by: str = Field(max_length=100)
    # Who proposed and who decided, by operator id (names are for people to read; ids are compared).
    # A proposal is never edited: a change is a new proposal, so its id names exactly what an
    # approver saw. Proposals made before operators signed in to propose have no proposer id.
    proposed_by_id: Optional[str] = Field(default=None, max_length=40)
    proposed_at: datetime
    status: str = Field(max_length=20)                     # proposed | approved | withdrawn
    decided_by: Optional[str] = Field(default=None, max_length=100)
    decided_by_id: Optional[str] = Field(default=None, max_length=40)
    decided_at: Optional[datetime] = None
    entry_key: Optional[str] = Field(default=None, max_length=200)


class Settlement(SQLModel, table=True):
    """One booked settlement: a channel paying a day's net into the reserve bank, a merchant's day
    becoming available, an advance to a merchant before the channel paid, or its repayment."""

    __tablename__ = "settlements"
    __table_args__ = (UniqueConstraint("kind", "owner", "business_date", name="uq_settlements_kind_owner_day"),)

    id: Optional[int] = Field(default=None, sa_column=Column(ID, primary_key=True))
    kind: str = Field(max_length=20)                 # channel | merchant | advance | advance_repaid
    owner: str = Field(max_length=120)               # channel account, merchant, or "merchant@account"
    channel_account: Optional[str] = Field(default=None, max_length=64)
    merchant_id: Optional[str] = Field(default=None, max_length=40)
    business_date: date                              # the day whose money moves
    settle_date: date                                # the day it was settled on
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    entry_key: Optional[str] = Field(default=None, max_length=200)
    forced_by: Optional[str] = Field(default=None, max_length=100)
    created_at: datetime


class Payout(SQLModel, table=True):
    """A payout (代付) from a merchant's available balance to a bank account, paid by one channel
    account from its position, sent once under out_payout_no (a new number only for a request that
    provably never left: gateway/payouts.py)."""

    __tablename__ = "payouts"
    __table_args__ = (UniqueConstraint("merchant_id", "merchant_payout_no", name="uq_payouts_merchant_payout"),)

    id: str = Field(primary_key=True, max_length=40)
    merchant_id: str = Field(foreign_key="merchants.id", max_length=40)
    merchant_payout_no: str = Field(max_length=64)
    request_hash: str = Field(max_length=64)   # keyed digest of the request: a retry or a different payout
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    fee: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    currency: str = Field(max_length=3)
    # The holder's name and the bank account number sealed (AES-GCM, bound to the payout id), and as
    # shown back: 张*, 6216****0018.
    account_name_sealed: str = Field(sa_column=Column(Text, nullable=False))
    account_name_masked: str = Field(max_length=100)
    account_no_sealed: str = Field(sa_column=Column(Text, nullable=False))
    account_no_masked: str = Field(max_length=40)
    bank_code: Optional[str] = Field(default=None, max_length=20)
    remark: Optional[str] = Field(default=None, max_length=100)
    notify_url: Optional[str] = Field(default=None, max_length=2000)
    channel_account: str = Field(max_length=64)
    out_payout_no: str = Field(unique=True, max_length=64)
    status: str = Field(max_length=20, index=True)   # processing | succeeded | failed
    submitted: bool = False                           # its request may have reached the channel (0016)
    channel_payout_id: Optional[str] = Field(default=None, max_length=128)
    failure_code: Optional[str] = Field(default=None, max_length=64)
    failure_message: Optional[str] = Field(default=None, max_length=500)
    routing: Optional[dict] = Field(default=None, sa_column=Column(JSON, nullable=True))
    next_query_at: Optional[datetime] = Field(default=None, index=True)
    queries: int = 0
    exception_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    created_at: datetime
    updated_at: datetime


class Receiver(SQLModel, table=True):
    """Someone a merchant passes part of its payments on to (分账接收方)."""

    __tablename__ = "receivers"
    __table_args__ = (UniqueConstraint("merchant_id", "account_digest", name="uq_receivers_merchant_account"),)

    id: str = Field(primary_key=True, max_length=40)
    merchant_id: str = Field(foreign_key="merchants.id", max_length=40)
    type: str = Field(max_length=20)                  # merchant | personal
    # Who they are is sealed (AES-GCM, bound to the receiver id and the field) and shown masked: the
    # name, the account reference, and per channel account the receiver's identity there where the
    # channel needs its own (an openid). A receiver's account is found again by its keyed digest.
    name_sealed: str = Field(sa_column=Column(Text, nullable=False))
    name_masked: str = Field(max_length=100)
    account_sealed: str = Field(sa_column=Column(Text, nullable=False))
    account_masked: str = Field(max_length=64)
    account_digest: str = Field(max_length=64)
    bindings_sealed: str = Field(sa_column=Column(Text, nullable=False))
    bindings: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))   # masked
    status: str = Field(default="active", max_length=20)
    created_at: datetime


class Split(SQLModel, table=True):
    """Part of a paid payment passed on to a receiver (分账), at the payment's channel."""

    __tablename__ = "splits"
    __table_args__ = (UniqueConstraint("merchant_id", "merchant_split_no", name="uq_splits_merchant_split"),)

    id: str = Field(primary_key=True, max_length=40)
    payment_id: str = Field(foreign_key="payments.id", index=True, max_length=40)
    merchant_id: str = Field(foreign_key="merchants.id", max_length=40)
    merchant_split_no: str = Field(max_length=64)
    receiver_id: str = Field(foreign_key="receivers.id", max_length=40)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    description: str = Field(default="", max_length=80)
    channel_account: str = Field(max_length=64)
    out_split_no: str = Field(unique=True, max_length=64)
    # scheduled (declared at creation, waiting for the payment) | processing | succeeded | failed | cancelled
    status: str = Field(max_length=20, index=True)
    # Taken back from the receiver, or being taken back (returns that have not failed).
    returned_amount: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0,
                                                             server_default="0"))
    submitted: bool = False
    channel_split_id: Optional[str] = Field(default=None, max_length=128)
    failure_code: Optional[str] = Field(default=None, max_length=64)
    failure_message: Optional[str] = Field(default=None, max_length=500)
    next_query_at: Optional[datetime] = Field(default=None, index=True)
    queries: int = 0
    exception_at: Optional[datetime] = None
    created_at: datetime
    updated_at: datetime


class SplitReturn(SQLModel, table=True):
    """Part of a split taken back from its receiver, so a refund can take it ([splits] refund_policy
    = "return"). for_refund_no: the merchant_refund_no of the refund that needed it."""

    __tablename__ = "split_returns"

    id: str = Field(primary_key=True, max_length=40)
    split_id: str = Field(foreign_key="splits.id", index=True, max_length=40)
    payment_id: str = Field(foreign_key="payments.id", index=True, max_length=40)
    merchant_id: str = Field(foreign_key="merchants.id", max_length=40)
    for_refund_no: str = Field(max_length=64)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    channel_account: str = Field(max_length=64)
    out_return_no: str = Field(unique=True, max_length=64)
    status: str = Field(max_length=20, index=True)   # processing | succeeded | failed
    submitted: bool = False
    channel_return_id: Optional[str] = Field(default=None, max_length=128)
    failure_code: Optional[str] = Field(default=None, max_length=64)
    failure_message: Optional[str] = Field(default=None, max_length=500)
    next_query_at: Optional[datetime] = Field(default=None, index=True)
    queries: int = 0
    exception_at: Optional[datetime] = None
    created_at: datetime
    updated_at: datetime


class SplitRelease(SQLModel, table=True):
    """The end of a payment's splitting: the channel releases to the merchant what it still holds frozen
    of it (WeChat Pay unfreeze, Alipay royalty_finish). waiting: asked for while splits are in flight."""

    __tablename__ = "split_releases"

    id: str = Field(primary_key=True, max_length=40)
    payment_id: str = Field(foreign_key="payments.id", unique=True, max_length=40)
    merchant_id: str = Field(foreign_key="merchants.id", max_length=40)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))   # released (booked at success)
    currency: str = Field(max_length=3)
    channel_account: str = Field(max_length=64)
    out_release_no: str = Field(unique=True, max_length=64)
    status: str = Field(max_length=20, index=True)   # waiting | processing | succeeded | failed
    submitted: bool = False
    channel_release_id: Optional[str] = Field(default=None, max_length=128)
    failure_code: Optional[str] = Field(default=None, max_length=64)
    failure_message: Optional[str] = Field(default=None, max_length=500)
    next_query_at: Optional[datetime] = Field(default=None, index=True)
    queries: int = 0
    exception_at: Optional[datetime] = None
    created_at: datetime
    updated_at: datetime


class Operator(SQLModel, table=True):
    """Someone who signs in to the console. viewer: reads; operator: also acts and proposes;
    approver: also approves what someone else proposed."""

    __tablename__ = "operators"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(unique=True, max_length=100)
    role: str = Field(max_length=20)
    password_hash: str = Field(sa_column=Column(Text, nullable=False))   # scrypt$n$r$p$salt$hash
    disabled: bool = False
    created_at: datetime
    last_sign_in_at: Optional[datetime] = None


class AuditEntry(SQLModel, table=True):
    """One action taken in the console: who, what, when, and the state before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_operator_at", "operator", "at"),)

    id: Optional[int] = Field(default=None, sa_column=Column(ID, primary_key=True))
    at: datetime = Field(index=True)
    operator: str = Field(max_length=100)
    role: str = Field(max_length=20)
    action: str = Field(max_length=60)
    target: str = Field(max_length=120)
    before: Optional[dict] = Field(default=None, sa_column=Column(JSON, nullable=True))
    after: Optional[dict] = Field(default=None, sa_column=Column(JSON, nullable=True))
    client_ip: Optional[str] = Field(default=None, max_length=64)
    operator_id: Optional[str] = Field(default=None, max_length=40)   # None: no such operator (a failed sign-in)
    source: Optional[str] = Field(default=None, max_length=20)        # console | cli


class ConsoleSession(SQLModel, table=True):
    """A signed-in console session. The browser's cookie carries a random token; only its SHA-256 is
    kept, and the row is checked on every request, so ending it here ends it everywhere."""

    __tablename__ = "console_sessions"

    token_hash: str = Field(primary_key=True, max_length=64)
    operator_id: str = Field(foreign_key="operators.id", max_length=40, index=True)
    created_at: datetime
    expires_at: datetime = Field(index=True)
    last_seen_at: datetime
    revoked_at: Optional[datetime] = None
    client_ip: Optional[str] = Field(default=None, max_length=64)


class SignInGuard(SQLModel, table=True):
    """Password tries for one name (console or CLI) in the current lockout window. A try takes a slot
    here, in one statement, before its password is checked; a success gives its slot back."""

    __tablename__ = "sign_in_guards"

    name: str = Field(primary_key=True, max_length=100)
    window_started_at: datetime = Field(index=True)
    tries: int = 0


class ChannelExchange(SQLModel, table=True):
    """One request paymux sent a channel and its answer, secrets redacted (gateway/exchanges.py)."""

    __tablename__ = "channel_exchanges"
    __table_args__ = (Index("ix_channel_exchanges_reference", "reference"),)

    id: Optional[int] = Field(default=None, sa_column=Column(ID, primary_key=True))
    at: datetime = Field(index=True)
    channel_account: str = Field(max_length=64)
    operation: str = Field(max_length=40)
    reference: Optional[str] = Field(default=None, max_length=64)     # out-trade-no, out-refund-no, …
    request_id: Optional[str] = Field(default=None, max_length=64)
    method: Optional[str] = Field(default=None, max_length=10)
    url: Optional[str] = Field(default=None, max_length=500)
    status_code: Optional[int] = None
    duration_ms: int = 0
    request_body: str = Field(default="", sa_column=Column(Text, nullable=False))
    response_body: str = Field(default="", sa_column=Column(Text, nullable=False))
    error: Optional[str] = Field(default=None, max_length=200)
