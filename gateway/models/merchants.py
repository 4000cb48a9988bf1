"""Merchants, the requests they sign, and the events they are sent (the outbox)."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, Column, Index, LargeBinary, Text
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
