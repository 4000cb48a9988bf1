"""What paymux saw of its channels: health per minute, circuits, and the exchanges kept."""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

from ledger.models import ID   # 64-bit ids (INTEGER, the rowid, on SQLite)


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


class ChannelDay(SQLModel, table=True):
    """One channel account's business day, as the creates that count its daily limits see it: each create
    on an account with daily limits updates this row first, which makes creates on that account wait for
    each other while they count what it took that day (gateway/routing.py, hold_daily_room)."""

    __tablename__ = "channel_days"

    channel_account: str = Field(primary_key=True, max_length=64)
    business_date: date = Field(primary_key=True)
    attempts: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))   # written on it that day


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
