"""Ledger tables. Entries and postings are append-only, enforced by the database (see migration 0002)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

# Ids and cursors are 64-bit (migration 0013). On SQLite an autoincrementing key must stay exactly
# INTEGER, the rowid (which is 64-bit there anyway); BIGINT would lose that.
ID = BigInteger().with_variant(Integer(), "sqlite")


class LedgerAccount(SQLModel, table=True):
    __tablename__ = "ledger_accounts"
    __table_args__ = (UniqueConstraint("code", "owner_type", "owner_id", "currency", name="uq_ledger_account"),)

    id: Optional[int] = Field(default=None, sa_column=Column(ID, primary_key=True))
    code: str = Field(max_length=64)               # from the chart of accounts, e.g. merchant_in_transit
    owner_type: str = Field(max_length=20)         # platform | merchant | channel_account
    owner_id: str = Field(max_length=64)           # "" for the platform
    currency: str = Field(max_length=3)
    normal_side: str = Field(max_length=6)         # debit | credit
    no_negative: bool = False                      # its normal balance must never go below zero
    # Net balance, debits positive; the normal balance is -balance for a credit-normal account.
    balance: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    created_at: datetime


class LedgerEntry(SQLModel, table=True):
    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_reference", "reference"),)

    id: Optional[int] = Field(default=None, sa_column=Column(ID, primary_key=True))
    key: str = Field(unique=True, max_length=200)  # idempotency key, e.g. payment:pay_1:succeeded
    event_type: str = Field(max_length=64)
    business_date: date = Field(index=True)
    reference: Optional[str] = Field(default=None, max_length=120)   # what caused it, e.g. payment:pay_1
    memo: Optional[str] = Field(default=None, max_length=500)
    postings_hash: str = Field(max_length=64)
    reverses: Optional[int] = Field(default=None, sa_column=Column(ID, ForeignKey("ledger_entries.id"), unique=True,
                                                                   nullable=True))
    created_at: datetime


class LedgerPosting(SQLModel, table=True):
    __tablename__ = "ledger_postings"
    __table_args__ = (Index("ix_ledger_postings_account", "account_id", "id"),)

    id: Optional[int] = Field(default=None, sa_column=Column(ID, primary_key=True))
    entry_id: int = Field(sa_column=Column(ID, ForeignKey("ledger_entries.id"), nullable=False, index=True))
    account_id: int = Field(sa_column=Column(ID, ForeignKey("ledger_accounts.id"), nullable=False))
    currency: str = Field(max_length=3)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))          # debit positive, credit negative
    # The account's net balance after it; for an account kept in slots, its slot's balance after it.
    balance_after: int = Field(sa_column=Column(BigInteger, nullable=False))
    slot: Optional[int] = Field(default=None, sa_column=Column(Integer, nullable=True))   # None: the account row


class LedgerBalanceSlot(SQLModel, table=True):
    """Part of the balance of an account without a no-negative rule (ledger/slots.py): the
    account's balance is its row's plus its slots', and each slot's is the sum of the postings naming it."""
    __tablename__ = "ledger_balance_slots"

    account_id: int = Field(sa_column=Column(ID, ForeignKey("ledger_accounts.id"), primary_key=True))
    slot: int = Field(sa_column=Column(ID, primary_key=True, autoincrement=False))
    balance: int = Field(sa_column=Column(BigInteger, nullable=False))
