"""A kind of money operation paymux does not have, defined only for the tests, as a third party would
add one: "gifts" (a merchant sends an amount through a channel), with their table (its own columns and
the ones every operation shares), their ledger templates, a tiny channel and the kind itself. The whole
of what a new kind needs besides its migration (tests/payments/test_operation_kind.py drives it)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Column, Connection, MetaData, Row, String, Table, insert, select

from gateway.channel import (Capability, Channel, ChannelEvent, InboundNotification, NotificationRejected, Outcome,
                             SplitResult)
from gateway.hookspecs import hookimpl
from gateway.ids import out_trade_no, public_id
from gateway.models import operation_columns
from gateway.operations import ResentOperation

# ---- the kind's table: its own columns, and the ones every operation shares ----

metadata = MetaData()
Table("merchants", metadata, Column("id", String(40), primary_key=True))   # what its foreign key names
gifts = Table("gifts", metadata, Column("id", String(40), primary_key=True),
              Column("out_gift_no", String(64), nullable=False, unique=True),
              Column("channel_gift_id", String(128)), *operation_columns())

# ---- its ledger templates: the merchant's money held while the gift is out, paid when it arrives ----

TEMPLATES = """
[chart.gifts_payable]
owner = "merchant"
normal = "credit"
description = "Gifts a merchant sent, not yet delivered"

[templates."gift.requested"]
postings = [
  { account = "suspense", owner = "platform", debit = "amount" },
  { account = "gifts_payable", owner = "merchant", credit = "amount" },
]

[templates."gift.succeeded"]
postings = [
  { account = "gifts_payable", owner = "merchant", debit = "amount" },
  { account = "reserve_bank", owner = "platform", credit = "amount" },
]

[templates."gift.failed"]
reverses = "gift.requested"
"""


# ---- a channel that takes gifts (the other side of the wire, in memory) ----

@dataclass(frozen=True)
class GiftRequest:
    out_gift_no: str
    amount: int
    currency: str


class GiftChannel(Channel):
    name = "giftbox"
    capabilities = frozenset({Capability.NOTIFY})

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.received: dict[str, int] = {}    # what it took, by number: it acts on a number once
        self.sends = self.queries = 0
        self.lose_answers = 0                 # the next sends act, and their answers never come back

    async def send_gift(self, request: GiftRequest) -> SplitResult:
        self.sends += 1
        self.received.setdefault(request.out_gift_no, request.amount)
        if self.lose_answers:
            self.lose_answers -= 1
            raise httpx.ReadTimeout("the answer was lost on its way back")
        return SplitResult(Outcome.PENDING, channel_split_id=f"g-{request.out_gift_no}")

    async def query_gift(self, request: GiftRequest) -> SplitResult:
        self.queries += 1
        if request.out_gift_no not in self.received:
            return SplitResult(Outcome.UNKNOWN, unheard=True)
        return SplitResult(Outcome.PENDING, channel_split_id=f"g-{request.out_gift_no}")

    async def parse_notification(self, notification: InboundNotification) -> list[ChannelEvent]:
        body = json.loads(notification.body)
        if notification.headers.get("x-gift-signature") != "genuine":
            raise NotificationRejected("bad_signature", "not signed by the gift channel")
        return [ChannelEvent("gift", body["out_gift_no"], Outcome(body["status"]), amount=body["amount"],
                             channel_transaction_id=body["id"])]


class GiftPlugin:
    @hookimpl
    def register_channels(self, register: Any) -> None:
        register(GiftChannel)


# ---- the kind ----

class GiftKind(ResentOperation):
    name = "gift"
    table = gifts
    reference = "out_gift_no"
    templates = ("gift.requested", "gift.succeeded", "gift.failed")
    event_kind = "gift"
    send_operation, query_operation = "gift", "query_gift"
    what = log_prefix = "gift"
    channel_id_column = "channel_gift_id"
    resend_event = "gift.resend"

    async def create(self, merchant_id: str, channel_account: str, amount: int, currency: str = "CNY") -> Row:
        """Write the gift and hold its money in one transaction, then send it."""
        now = self.clock.now()
        row = dict(id=public_id("gft"), out_gift_no=out_trade_no(), merchant_id=merchant_id, amount=amount,
                   currency=currency, channel_account=channel_account, status="processing", submitted=False,
                   next_query_at=now + self.core.schedule.first(channel_account), queries=0, created_at=now,
                   updated_at=now)

        def tx(conn: Connection) -> Row:
            conn.execute(insert(gifts).values(row))
            self.booker.book(conn, "gift.requested", f"gift:{row['id']}", merchant_id=merchant_id,
                             channel_account=channel_account, currency=currency, variables={"amount": amount},
                             now=now)
            return conn.execute(select(gifts).where(gifts.c.id == row["id"])).one()

        made = await self.db.tx(tx)
        await self.submit(made)
        return made

    def request(self, conn: Connection, row: Row) -> GiftRequest:
        return GiftRequest(row.out_gift_no, row.amount, row.currency)

    def send(self, channel: Channel, request: GiftRequest) -> Any:
        return channel.send_gift(request)   # type: ignore[attr-defined]

    def query(self, channel: Channel, request: GiftRequest) -> Any:
        return channel.query_gift(request)  # type: ignore[attr-defined]

    def ended(self, conn: Connection, row: Row, result: SplitResult, source: str, now: Any) -> None:
        self.booker.book(conn, f"gift.{result.outcome.value}", f"gift:{row.id}", merchant_id=row.merchant_id,
                         channel_account=row.channel_account, currency=row.currency,
                         variables={"amount": row.amount}, now=now)

    def render(self, row: Row) -> dict[str, Any]:
        return {"id": row.id, "object": "gift", "status": row.status, "amount": row.amount}
