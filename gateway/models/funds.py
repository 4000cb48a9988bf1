"""The reserve bank account's statements and their lines, as imported (never edited: a later file for
the same day marks the earlier one superseded)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from ledger.models import ID


class BankStatement(SQLModel, table=True):
    """One bank file of a reserve account, known by its SHA-256; its reconciliation is run `run_id`."""

    __tablename__ = "bank_statements"
    __table_args__ = (UniqueConstraint("reserve_account", "sha256", name="uq_bank_statements_file"),
                      Index("ix_bank_statements_day", "reserve_account", "statement_date"))

    id: str = Field(primary_key=True, max_length=40)
    reserve_account: str = Field(max_length=64)
    statement_date: date
    sha256: str = Field(max_length=64)
    format: str = Field(max_length=10)               # mt940 | camt053 | csv
    file_path: str = Field(max_length=1000)
    status: str = Field(max_length=20)               # current | superseded
    line_count: int = 0
    currency: str = Field(max_length=3)
    opening_balance: Optional[int] = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    closing_balance: Optional[int] = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    run_id: str = Field(max_length=40)
    imported_at: datetime


class BankLine(SQLModel, table=True):
    """One movement on the reserve account, as the bank's file says it: credit positive, minor units."""

    __tablename__ = "bank_lines"
    __table_args__ = (Index("ix_bank_lines_day", "reserve_account", "booking_date"),)

    id: Optional[int] = Field(default=None, sa_column=Column(ID, primary_key=True))
    statement_id: str = Field(sa_column=Column(String(40), ForeignKey("bank_statements.id"), nullable=False,
                                               index=True))
    reserve_account: str = Field(max_length=64)
    line_no: int
    booking_date: date
    value_date: Optional[date] = None
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    reference: str = Field(max_length=200)
    details: str = Field(max_length=500)
    bank_reference: str = Field(max_length=100)
