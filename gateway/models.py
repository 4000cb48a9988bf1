"""Tables of the gateway. Timestamps are naive UTC; amounts are integers in minor units."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, BigInteger, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlalchemy import true as sa_true
from sqlmodel import Field, SQLModel


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
    __table_args__ = (UniqueConstraint("merchant_id", "merchant_order_no", name="uq_payments_merchant_order"),)

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
    notify_url: Optional[str] = Field(default=None, max_length=2000)
    metadata_: dict = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False))
    channel_transaction_id: Optional[str] = Field(default=None, max_length=128)
    fee_amount: Optional[int] = Field(default=None, sa_column=Column(BigInteger, nullable=True))  # booked at success
    failure_code: Optional[str] = Field(default=None, max_length=64)
    failure_message: Optional[str] = Field(default=None, max_length=500)
    expires_at: Optional[datetime] = None
    paid_at: Optional[datetime] = None
    created_at: datetime
    updated_at: datetime


class Attempt(SQLModel, table=True):
    """One call to a channel, with its own out-trade-number; a retry is a new attempt."""

    __tablename__ = "attempts"
    __table_args__ = (Index("ix_attempts_account_created", "channel_account", "created_at"),)

    id: str = Field(primary_key=True, max_length=40)
    payment_id: str = Field(foreign_key="payments.id", index=True, max_length=40)
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
    # merchant: asked for by the merchant; duplicate: paymux returning a second payment of one order
    kind: str = Field(default="merchant", max_length=20, sa_column_kwargs={"server_default": "merchant"})
    submitted: bool = Field(default=True, sa_column_kwargs={"server_default": sa_true()})  # sent to the channel yet
    channel_refund_id: Optional[str] = Field(default=None, max_length=128)
    failure_code: Optional[str] = Field(default=None, max_length=64)
    failure_message: Optional[str] = Field(default=None, max_length=500)
    next_query_at: Optional[datetime] = Field(default=None, index=True)
    queries: int = 0
    exception_at: Optional[datetime] = None
    created_at: datetime
    updated_at: datetime


class ChannelCallback(SQLModel, table=True):
    """Every inbound channel callback, verified or not: the evidence behind a state change."""

    __tablename__ = "channel_callbacks"
    __table_args__ = (Index("ix_channel_callbacks_account_received", "channel_account", "received_at"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    channel_account: str = Field(max_length=64)
    received_at: datetime
    verified: bool
    outcome: str = Field(max_length=40)  # applied | duplicate | rejected | mismatch | unknown_reference
    detail: Optional[str] = Field(default=None, max_length=500)
    reference: Optional[str] = Field(default=None, max_length=64)
    # The raw body of a verified callback, kept for audit before the channel is told "success".
    body: Optional[bytes] = Field(default=None, sa_column=Column(LargeBinary, nullable=True))


class MerchantEvent(SQLModel, table=True):
    """An outbox row: written in the transaction of the state change it announces, delivered later."""

    __tablename__ = "merchant_events"
    __table_args__ = (Index("ix_merchant_events_due", "status", "next_attempt_at"),
                      Index("ix_merchant_events_merchant", "merchant_id", "seq"))

    seq: Optional[int] = Field(default=None, primary_key=True)
    id: str = Field(unique=True, max_length=40)          # evt_…, stable across redeliveries
    merchant_id: str = Field(foreign_key="merchants.id", max_length=40)
    type: str = Field(max_length=40)                     # payment.succeeded, refund.failed, …
    resource_id: str = Field(max_length=40)
    payload: dict = Field(sa_column=Column(JSON, nullable=False))
    notify_url: Optional[str] = Field(default=None, max_length=2000)
    status: str = Field(max_length=20)                   # pending | delivered | dead | no_endpoint
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
