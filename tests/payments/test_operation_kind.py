"""A new kind of money operation is one module: this file is it. "Gifts" (a merchant sends an amount
through a channel) exist nowhere in paymux; defined here with their table, their ledger templates and a
tiny channel, they go through the same lifecycle as refunds, payouts and splits: created and sent, the
answer lost, found by the janitor's query, ended by a verified callback, booked once."""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from sqlalchemy import Column, Connection, MetaData, Row, String, Table, insert, select

from gateway.channel import (Capability, Channel, ChannelEvent, InboundNotification, NotificationRejected, Outcome,
                             SplitResult)
from gateway.config import ChannelAccountConfig, Settings
from gateway.errors import ConfigError
from gateway.hookspecs import hookimpl
from gateway.ids import out_trade_no, public_id
from gateway.janitor import exceptions
from gateway.logs import get_logger
from gateway.models import ChannelCallback, operation_columns
from gateway.operations import ResentOperation
from gateway.service import Gateway, make_ledger
from tests.conftest import make_settings

REPO = Path(__file__).resolve().parents[1]

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


# ---- the proof ----

@pytest.fixture
def gift_settings(db_url: str, tmp_path: Path) -> Iterator[Settings]:
    chart = tmp_path / "ledger.toml"
    chart.write_text((REPO / "conf" / "ledger.toml").read_text() + TEMPLATES)
    base = make_settings(db_url, 8000)
    settings = base.with_changes(
        channel_accounts=(*base.channel_accounts, ChannelAccountConfig("giftbox", "giftbox", True, {})),
        ledger_config=str(chart), query_schedule_seconds=(0.05, 0.05), query_give_up_seconds=3600)
    from sqlalchemy import create_engine

    from gateway.db import normalize_url
    engine = create_engine(normalize_url(db_url))
    with engine.begin() as conn:
        gifts.create(conn)
    yield settings
    with engine.begin() as conn:   # the gateway's own schema is checked against its migrations elsewhere
        gifts.drop(conn)
    engine.dispose()


def test_a_kind_defined_outside_paymux_goes_through_the_whole_lifecycle(gift_settings: Settings) -> None:
    asyncio.run(_lifecycle(gift_settings))


async def _lifecycle(settings: Settings) -> None:
    gw = Gateway.build(settings, get_logger(), extra_plugins=[GiftPlugin()], extra_kinds=[GiftKind])
    try:
        kind = gw.operations["gift"]
        assert isinstance(kind, GiftKind)
        account = gw.host.account("giftbox")
        channel = account.channel
        assert isinstance(channel, GiftChannel)
        from gateway.merchants import create_merchant
        with gw.db.transaction() as conn:
            merchant = create_merchant(conn, gw.box, gw.clock, "shop")

        def row(gift_id: str) -> Row:
            with gw.db.transaction() as conn:
                return conn.execute(select(gifts).where(gifts.c.id == gift_id)).one()

        def entry(gift_id: str, event: str) -> Any:
            with gw.db.transaction() as conn:
                return gw.ledger.entry(conn, f"gift:{gift_id}:{event}")

        # Created and sent; the channel acts, and its answer is lost: the gift is open, known to be sent.
        channel.lose_answers = 1
        made = await kind.create(merchant.merchant_id, "giftbox", 1200)
        gift = row(made.id)
        assert (gift.status, gift.submitted, channel.sends, channel.received) == \
               ("processing", True, 1, {gift.out_gift_no: 1200})
        assert entry(gift.id, "gift.requested") is not None and entry(gift.id, "gift.succeeded") is None

        # The janitor asks (the channel has it, still working on it): nothing is sent again.
        await asyncio.sleep(0.1)
        assert await gw.janitor.sweep() == 1
        gift = row(made.id)
        assert (gift.status, gift.queries, gift.channel_gift_id) == ("processing", 1, f"g-{gift.out_gift_no}")
        assert (channel.sends, channel.queries) == (1, 1)

        # The verified callback ends it, booked once; the same callback again changes nothing.
        body = json.dumps({"out_gift_no": gift.out_gift_no, "status": "succeeded", "amount": 1200,
                           "id": f"g-{gift.out_gift_no}"}).encode()
        inbound = InboundNotification("POST", "/v1/notify/giftbox", {"x-gift-signature": "genuine"}, {}, body)
        assert (await gw.handle_notification(account, inbound)).status == 200
        assert row(made.id).status == "succeeded"
        assert entry(gift.id, "gift.succeeded") is not None
        assert (await gw.handle_notification(account, inbound)).status == 200
        with gw.db.transaction() as conn:
            outcomes = [c.outcome for c in conn.execute(select(ChannelCallback.__table__).where(
                ChannelCallback.__table__.c.reference == gift.out_gift_no).order_by(ChannelCallback.__table__.c.id))]
            assert outcomes == ["applied", "duplicate"]
            balances = {(b.account.code, b.account.owner_id): b.normal for b in gw.ledger.balances(conn)}
        assert balances[("gifts_payable", merchant.merchant_id)] == 0

        # A callback that names an amount other than the gift's is kept for people, not applied.
        other = await kind.create(merchant.merchant_id, "giftbox", 500)
        wrong = json.dumps({"out_gift_no": other.out_gift_no, "status": "succeeded", "amount": 600,
                            "id": "g-x"}).encode()
        assert (await gw.handle_notification(account, InboundNotification(
            "POST", "/v1/notify/giftbox", {"x-gift-signature": "genuine"}, {}, wrong))).status == 400
        assert row(other.id).status == "processing" and entry(other.id, "gift.succeeded") is None

        # Once the janitor gives up, the kind is listed with the others for people to look at.
        with gw.db.transaction() as conn:
            conn.execute(gifts.update().where(gifts.c.id == other.id).values(exception_at=gw.clock.now()))
            stuck = exceptions(conn, [*gw.operations])
        assert [(s["kind"], s["id"], s["out_trade_no"]) for s in stuck] == [("gift", other.id, other.out_gift_no)]
    finally:
        await gw.aclose()


def test_a_chart_that_cannot_book_a_kind_stops_start_up(db_url: str) -> None:
    with pytest.raises(ConfigError, match="gift.requested"):
        make_ledger(make_settings(db_url, 8000), [GiftKind])


def test_a_kind_answering_too_late_is_asked_again_on_its_schedule(gift_settings: Settings) -> None:
    """The janitor plans the next question from the row's start, like a refund's."""
    async def run() -> None:
        gw = Gateway.build(gift_settings, get_logger(), extra_plugins=[GiftPlugin()], extra_kinds=[GiftKind])
        try:
            from gateway.merchants import create_merchant
            with gw.db.transaction() as conn:
                merchant = create_merchant(conn, gw.box, gw.clock, "shop")
            made = await gw.operations["gift"].create(merchant.merchant_id, "giftbox", 100)
            await asyncio.sleep(0.1)
            assert await gw.janitor.sweep() == 1
            with gw.db.transaction() as conn:
                gift = conn.execute(select(gifts).where(gifts.c.id == made.id)).one()
            assert gift.queries == 1
            assert gift.next_query_at.replace(tzinfo=None) == (made.created_at + timedelta(seconds=0.1)).replace(
                tzinfo=None)
        finally:
            await gw.aclose()

    asyncio.run(run())


def test_every_kind_paymux_has_is_in_the_registry_with_the_shared_columns_and_its_templates() -> None:
    from gateway.kinds import BUILTIN_KINDS
    from gateway.models import OperationColumns
    from gateway.service import REQUIRED_TEMPLATES

    assert [k.name for k in BUILTIN_KINDS] == ["refund", "payout", "split", "split_return", "split_release"]
    shared = set(OperationColumns.model_fields)
    for kind in BUILTIN_KINDS:
        assert shared <= set(kind.table.c.keys()), kind.name
        assert kind.reference in kind.table.c and kind.table.c[kind.reference].unique, kind.name
        assert set(kind.templates) <= set(REQUIRED_TEMPLATES), kind.name
    # a callback's ChannelEvent.kind reaches the kind it ends; payments are the rest
    assert {k.event_kind for k in BUILTIN_KINDS if k.event_kind} == {"refund", "payout", "split"}
