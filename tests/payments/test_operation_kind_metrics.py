"""/metrics reads the gateway's registry of operation kinds: a kind defined only in the tests (the gifts
of tests/support/gifts.py) is counted in the janitor's gauges under its name, with no line of
gateway/metrics.py naming it."""
from __future__ import annotations

import asyncio


from gateway.config import Settings
from gateway.logs import get_logger
from gateway.merchants import create_merchant
from gateway.service import Gateway
from tests.support.gifts import GiftKind, GiftPlugin, gifts




def test_the_janitor_gauges_count_every_kind_of_the_registry(gift_settings: Settings) -> None:
    async def run() -> None:
        gw = Gateway.build(gift_settings, get_logger(), extra_plugins=[GiftPlugin()], extra_kinds=[GiftKind])
        try:
            with gw.db.transaction() as conn:
                merchant = create_merchant(conn, gw.box, gw.clock, "shop")
            kind = gw.operations["gift"]
            assert isinstance(kind, GiftKind)
            await kind.create(merchant.merchant_id, "giftbox", 100)
            given_up = await kind.create(merchant.merchant_id, "giftbox", 200)
            with gw.db.transaction() as conn:
                conn.execute(gifts.update().where(gifts.c.id == given_up.id).values(exception_at=gw.clock.now()))
            await gw.db.tx(lambda conn: gw.metrics.refresh(conn, gw.operations))   # as GET /metrics does

            def gauge(name: str, kind: str) -> float | None:
                return gw.metrics.registry.get_sample_value(name, {"kind": kind})

            assert (gauge("paymux_janitor_open", "gift"), gauge("paymux_janitor_exceptions", "gift")) == (1, 1)
            # the kinds paymux has are counted the same way, each under its own name, beside the attempts
            for name in ("attempt", "refund", "payout", "split", "split_return", "split_release"):
                assert (gauge("paymux_janitor_open", name), gauge("paymux_janitor_exceptions", name)) == (0, 0)
        finally:
            await gw.aclose()

    asyncio.run(run())
