"""Who signs in to the console (and the CLI), their sessions, sign-in tries, and the audit log."""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

from ledger.models import ID   # 64-bit ids (INTEGER, the rowid, on SQLite)


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
    locale: Optional[str] = Field(default=None, max_length=16)   # the console's language; None: the browser's


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


class ChannelAccountOverride(SQLModel, table=True):
    """What operators changed of a channel account at runtime (approved by a second operator): read by
    the router of every process within seconds, over what the configuration says. A field left None
    keeps the configuration's value; `limits` holds only the limits changed (a key set to null lifts
    that limit)."""

    __tablename__ = "channel_account_overrides"

    channel_account: str = Field(primary_key=True, max_length=64)
    enabled: Optional[bool] = None
    weight: Optional[int] = None
    limits: Optional[dict] = Field(default=None, sa_column=Column(JSON, nullable=True))
    version: int = 1                      # one more with every approved change
    change_id: Optional[int] = Field(default=None, sa_column=Column(ID, nullable=True))   # the last one applied
    updated_at: datetime


class ChannelAccountChange(SQLModel, table=True):
    """Maker-checker for a runtime change of a channel account: proposed by one operator, approved (or
    rejected) by another; kept afterwards as the account's history."""

    __tablename__ = "channel_account_changes"

    id: Optional[int] = Field(default=None, sa_column=Column(ID, primary_key=True))
    channel_account: str = Field(max_length=64, index=True)
    change: dict = Field(sa_column=Column(JSON, nullable=False))   # {"enabled"?, "weight"?, "limits"?}
    reason: str = Field(max_length=500)
    status: str = Field(max_length=20, index=True)                 # proposed | approved | rejected
    proposed_by: str = Field(max_length=100)
    proposed_by_id: str = Field(max_length=40)
    proposed_at: datetime
    decided_by: Optional[str] = Field(default=None, max_length=100)
    decided_by_id: Optional[str] = Field(default=None, max_length=40)
    decided_at: Optional[datetime] = None


class ReconRequest(SQLModel, table=True):
    """A reconciliation run asked for from the console: queued here, claimed and run by a `paymux
    worker` process (never the web process), its outcome written back for the console to show."""

    __tablename__ = "recon_requests"

    id: Optional[int] = Field(default=None, sa_column=Column(ID, primary_key=True))
    channel_account: str = Field(max_length=64)
    business_date: date
    status: str = Field(max_length=20, index=True)        # queued | running | done | failed
    requested_by: str = Field(max_length=100)
    requested_by_id: str = Field(max_length=40)
    requested_at: datetime
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    executed_by: Optional[str] = Field(default=None, max_length=100)   # host:pid of the worker
    run_id: Optional[str] = Field(default=None, max_length=40)
    message: Optional[str] = Field(default=None, max_length=500)
