"""What every channel works with: the outcomes it may claim, the capabilities it may declare, and
the context the core hands it (its account, settings, one HTTP client, the clock, a logger)."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx
from structlog.typing import FilteringBoundLogger


class Outcome(str, enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PENDING = "pending"   # the channel has it and has not finished (e.g. waiting for the payer)
    UNKNOWN = "unknown"   # no trustworthy answer: timeout, 5xx, garbage. Never a failure.
    CLOSED = "closed"     # the channel closed it unpaid
    RETURNED = "returned"  # a payout it paid came back from the receiving bank (退票): only after SUCCEEDED


class Capability(str, enum.Enum):
    PAY = "pay"
    QUERY = "query"
    CLOSE = "close"
    REFUND = "refund"
    REFUND_QUERY = "refund_query"
    NOTIFY = "notify"
    HOSTED_PAGES = "hosted_pages"
    STATEMENT = "statement"
    PAYOUT = "payout"          # payout() and query_payout(): pay a bank account from the account's position
    SPLIT = "split"            # split() and query_split(): pass part of a paid order on to a receiver
    SPLIT_RETURN = "split_return"   # return_split() and query_split_return(): take a split back from its receiver
    # finish_split() and query_split_finish(): the channel holds a payment made to be split frozen until
    # told the splitting is over (WeChat Pay unfreeze, Alipay royalty_finish), and then releases what is left
    SPLIT_FINISH = "split_finish"


class Clock(Protocol):
    """The core's one clock (tests move it): a channel reads the time from it, never from the system."""

    def now(self) -> datetime: ...

    def timestamp(self) -> int: ...


@dataclass(frozen=True)
class ChannelContext:
    """What the core hands a channel: its account, settings, one HTTP client, a clock and a logger."""

    account_id: str
    settings: Any            # whatever the channel's parse_settings returned
    http: httpx.AsyncClient
    clock: Clock
    log: FilteringBoundLogger
    public_url: str

    @property
    def notify_url(self) -> str:
        return f"{self.public_url.rstrip('/')}/v1/notify/{self.account_id}"
