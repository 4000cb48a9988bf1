"""Payments, their attempts at channels, their refunds, and the channel callbacks that move them."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, BigInteger, Column, Index, LargeBinary, UniqueConstraint
from sqlalchemy import false as sa_false
from sqlalchemy import true as sa_true
from sqlmodel import Field, SQLModel

from gateway.models.operation import OperationColumns
from ledger.models import ID   # 64-bit ids (INTEGER, the rowid, on SQLite)


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
    fee_rule: Optional[str] = Field(default=None, max_length=64)   # the fee rule that produced it (gateway/fees.py)
    # At success, from the channel's verified answer: what it keeps of the order's coupons, and the
    # coupons themselves with what each campaign of the platform's paid back ({"lines": [...], "campaigns": {...}}).
    discount_amount: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0,
                                                             server_default="0"))
    discounts: Optional[dict] = Field(default=None, sa_column=Column(JSON, nullable=True))
    failure_code: Optional[str] = Field(default=None, max_length=64)
    failure_message: Optional[str] = Field(default=None, max_length=500)
    expires_at: Optional[datetime] = None
    # The janitor's claim on closing it once expired (a lease, as its queries' next_query_at): one
    # process asks the channel; if that process dies, another asks once the lease has passed.
    expiry_lease_until: Optional[datetime] = None
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


class Refund(OperationColumns, table=True):
    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("merchant_id", "merchant_refund_no", name="uq_refunds_merchant_refund"),)

    id: str = Field(primary_key=True, max_length=40)
    payment_id: str = Field(foreign_key="payments.id", index=True, max_length=40)
    attempt_id: str = Field(foreign_key="attempts.id", max_length=40)
    merchant_refund_no: str = Field(max_length=64)
    out_refund_no: str = Field(unique=True, max_length=64)
    reason: Optional[str] = Field(default=None, max_length=256)
    fee_refund: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))  # fee given back
    # Its share of the payment's discount: what the channel does not take back from us, and what goes
    # back to each campaign that paid the merchant ({campaign id: amount}).
    discount_refund: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0,
                                                             server_default="0"))
    campaign_refund: Optional[dict] = Field(default=None, sa_column=Column(JSON, nullable=True))
    # merchant: asked for by the merchant; duplicate: paymux returning a second payment of one order
    kind: str = Field(default="merchant", max_length=20, sa_column_kwargs={"server_default": "merchant"})
    # A merchant's refund is sent as it is made; a duplicate payment's is written first, sent by the janitor.
    submitted: bool = Field(default=True, sa_column_kwargs={"server_default": sa_true()})
    channel_refund_id: Optional[str] = Field(default=None, max_length=128)
    # The channel holds it and a person must act before it ends (WeChat Pay ABNORMAL): still reserved.
    attention_code: Optional[str] = Field(default=None, max_length=64)
    attention_message: Optional[str] = Field(default=None, max_length=500)
    attention_at: Optional[datetime] = None


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
