"""The daily close (gateway/close/): one row per (account, business day) a worker leases while it runs the
day's steps, one row per step with its state, times and counts; and each merchant's statement of a day."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, UniqueConstraint
from sqlmodel import Field, SQLModel

from ledger.models import ID   # 64-bit ids (INTEGER, the rowid, on SQLite)


class CloseDay(SQLModel, table=True):
    """An account's close of one business day. `lease_until`: the worker running it holds it until then
    (a killed worker's day is taken again after it); `next_at`: when to try again (a statement not yet
    published); `alerted_at`: when the missing-statement alert was raised (once)."""

    __tablename__ = "close_days"
    __table_args__ = (UniqueConstraint("account", "business_date", name="uq_close_days_account_date"),)

    id: Optional[int] = Field(default=None, sa_column=Column(ID, primary_key=True))
    account: str = Field(max_length=64)
    kind: str = Field(max_length=20)                      # channel | reserve
    business_date: date
    status: str = Field(max_length=20, index=True)        # waiting | running | done | held | failed
    next_at: datetime
    lease_until: Optional[datetime] = None
    leased_by: Optional[str] = Field(default=None, max_length=100)
    tries: int = 0
    alerted_at: Optional[datetime] = None
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    message: Optional[str] = Field(default=None, max_length=500)


class CloseStep(SQLModel, table=True):
    __tablename__ = "close_steps"
    __table_args__ = (UniqueConstraint("close_day_id", "step", name="uq_close_steps_day_step"),)

    id: Optional[int] = Field(default=None, sa_column=Column(ID, primary_key=True))
    close_day_id: int = Field(sa_column=Column(ID, ForeignKey("close_days.id"), nullable=False))
    step: str = Field(max_length=40)
    status: str = Field(max_length=20)                    # running | done | waiting | held | failed
    runs: int = 0
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    counts: Optional[dict[str, Any]] = Field(default=None, sa_column=Column(JSON, nullable=True))
    message: Optional[str] = Field(default=None, max_length=500)


class MerchantStatement(SQLModel, table=True):
    """A merchant's statement of a business day, as the close produced it: its lines are the ledger's
    postings to the merchant's accounts dated that day, up to `last_posting_id` (so a statement read
    again is the same); `balances`: {code: {currency: [opening, closing]}} as the merchant reads them."""

    __tablename__ = "merchant_statements"
    __table_args__ = (UniqueConstraint("merchant_id", "business_date", name="uq_merchant_statements_day"),)

    id: Optional[int] = Field(default=None, sa_column=Column(ID, primary_key=True))
    merchant_id: str = Field(max_length=40)
    business_date: date = Field(index=True)
    last_posting_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    lines: int = 0
    balances: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    produced_at: datetime
