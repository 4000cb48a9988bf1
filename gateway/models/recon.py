"""Reconciliation runs, the differences they find, the proposals that resolve them, and settlements."""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from ledger.models import ID   # 64-bit ids (INTEGER, the rowid, on SQLite)


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
    kind: str = Field(max_length=20)                 # channel | merchant | advance | advance_repaid | receiver
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
