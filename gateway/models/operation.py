"""The columns every money operation paymux sends to a channel shares (refunds, payouts, splits, split
returns, split releases, and any kind added later): declared once here, so each table says only what
is its own. gateway/operations.py is the lifecycle that reads and writes them."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel
from sqlmodel.main import get_column_from_field


class OperationColumns(SQLModel):
    """processing until the channel's own word ends it (succeeded | failed); the janitor asks about it on
    a schedule (next_query_at, queries) and hands it to people when it gives up (exception_at)."""

    merchant_id: str = Field(foreign_key="merchants.id", max_length=40)
    amount: int = Field(sa_type=BigInteger, nullable=False)
    currency: str = Field(max_length=3)
    channel_account: str = Field(max_length=64)
    status: str = Field(max_length=20, index=True)
    submitted: bool = False                          # its request may have reached the channel
    failure_code: Optional[str] = Field(default=None, max_length=64)
    failure_message: Optional[str] = Field(default=None, max_length=500)
    next_query_at: Optional[datetime] = Field(default=None, index=True)
    queries: int = 0
    exception_at: Optional[datetime] = None
    created_at: datetime
    updated_at: datetime


def operation_columns() -> list[Column]:
    """The same columns, new Column objects each call, for a table declared with SQLAlchemy Core rather
    than as a SQLModel class (a kind kept out of the gateway's metadata, such as the tests' own)."""
    columns = []
    for name, field in OperationColumns.model_fields.items():
        column = get_column_from_field(field)
        column.name = column.key = name
        columns.append(column)
    return columns
