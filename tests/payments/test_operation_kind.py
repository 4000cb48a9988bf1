"""A new kind of money operation is one module: tests/support/gifts.py is it. "Gifts" (a merchant sends
an amount through a channel) exist nowhere in paymux; defined there with their table, their ledger
templates and a tiny channel, they go through the same lifecycle as refunds, payouts and splits: created
and sent, the answer lost, found by the janitor's query, ended by a verified callback, booked once."""
from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Row, select

from gateway.channel import InboundNotification
from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.janitor import exceptions
from gateway.logs import get_logger
from gateway.models import ChannelCallback
from gateway.service import Gateway, make_ledger
from tests.conftest import make_settings
from tests.support.gifts import GiftChannel, GiftKind, GiftPlugin, gifts


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
