"""Payouts, receivers, splits, their returns and releases: money paymux sends on for merchants."""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import JSON, BigInteger, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from gateway.models.operation import OperationColumns


class Payout(OperationColumns, table=True):
    """A payout (代付) from a merchant's available balance to a bank account, paid by one channel
    account from its position, sent once under out_payout_no (a new number only for a request that
    provably never left: gateway/payouts.py)."""

    __tablename__ = "payouts"
    __table_args__ = (UniqueConstraint("merchant_id", "merchant_payout_no", name="uq_payouts_merchant_payout"),)

    id: str = Field(primary_key=True, max_length=40)
    merchant_payout_no: str = Field(max_length=64)
    request_hash: str = Field(max_length=64)   # keyed digest of the request: a retry or a different payout
    fee: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    fee_rule: Optional[str] = Field(default=None, max_length=64)   # the payout fee rule (gateway/fees.py)
    # The holder's name and the bank account number sealed (AES-GCM, bound to the payout id), and as
    # shown back: 张*, 6216****0018.
    account_name_sealed: str = Field(sa_column=Column(Text, nullable=False))
    account_name_masked: str = Field(max_length=100)
    account_no_sealed: str = Field(sa_column=Column(Text, nullable=False))
    account_no_masked: str = Field(max_length=40)
    bank_code: Optional[str] = Field(default=None, max_length=20)
    remark: Optional[str] = Field(default=None, max_length=100)
    notify_url: Optional[str] = Field(default=None, max_length=2000)
    out_payout_no: str = Field(unique=True, max_length=64)
    channel_payout_id: Optional[str] = Field(default=None, max_length=128)
    routing: Optional[dict] = Field(default=None, sa_column=Column(JSON, nullable=True))
    finished_at: Optional[datetime] = None
    # When the receiving bank's return (退票) of a succeeded payout was applied (status returned).
    returned_at: Optional[datetime] = None
    # A payout of a receiver whose money paymux holds (from its available balance), not the merchant's.
    receiver_id: Optional[str] = Field(default=None, index=True, max_length=40)


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
    # Who pays the receiver its splits: "channel" (the payment's channel, itself) or "paymux" (paymux
    # holds its money: settled on its own T+settlement_days working days and paid out like a merchant).
    held_by: str = Field(default="channel", max_length=10, sa_column_kwargs={"server_default": "channel"})
    settlement_days: int = Field(default=1, sa_column_kwargs={"server_default": "1"})


class Split(OperationColumns, table=True):
    """Part of a paid payment passed on to a receiver (分账), at the payment's channel. status: scheduled
    (declared at creation, waiting for the payment) | processing | succeeded | failed | cancelled."""

    __tablename__ = "splits"
    __table_args__ = (UniqueConstraint("merchant_id", "merchant_split_no", name="uq_splits_merchant_split"),)

    id: str = Field(primary_key=True, max_length=40)
    payment_id: str = Field(foreign_key="payments.id", index=True, max_length=40)
    merchant_split_no: str = Field(max_length=64)
    receiver_id: str = Field(foreign_key="receivers.id", max_length=40)
    description: str = Field(default="", max_length=80)
    out_split_no: str = Field(unique=True, max_length=64)
    # Taken back from the receiver, or being taken back (returns that have not failed).
    returned_amount: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0,
                                                             server_default="0"))
    channel_split_id: Optional[str] = Field(default=None, max_length=128)
    # What the channel's statement of splits says it paid the receiver itself (split.channel_paid booked),
    # and the statement day it did (gateway/split_recon.py); 0 and null until then.
    channel_paid_amount: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0,
                                                                 server_default="0"))
    channel_paid_on: Optional[date] = None
    # "paymux": no channel pays this split (its receiver is held by paymux, or the payment's channel
    # cannot split): it succeeds in the books at once, owed to the receiver until its settlement.
    held_by: str = Field(default="channel", max_length=10, sa_column_kwargs={"server_default": "channel"})


class SplitReturn(OperationColumns, table=True):
    """Part of a split taken back from its receiver, so a refund can take it ([splits] refund_policy
    = "return"). for_refund_no: the merchant_refund_no of the refund that needed it."""

    __tablename__ = "split_returns"

    id: str = Field(primary_key=True, max_length=40)
    split_id: str = Field(foreign_key="splits.id", index=True, max_length=40)
    payment_id: str = Field(foreign_key="payments.id", index=True, max_length=40)
    for_refund_no: str = Field(max_length=64)
    out_return_no: str = Field(unique=True, max_length=64)
    channel_return_id: Optional[str] = Field(default=None, max_length=128)


class SplitRelease(OperationColumns, table=True):
    """The end of a payment's splitting: the channel releases to the merchant what it still holds frozen
    of it (WeChat Pay unfreeze, Alipay royalty_finish). status: waiting (asked for while splits are in
    flight) | processing | succeeded | failed; amount: what was released (booked at success)."""

    __tablename__ = "split_releases"

    id: str = Field(primary_key=True, max_length=40)
    payment_id: str = Field(foreign_key="payments.id", unique=True, max_length=40)
    out_release_no: str = Field(unique=True, max_length=64)
    channel_release_id: Optional[str] = Field(default=None, max_length=128)
