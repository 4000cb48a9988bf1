"""/metrics reads the gateway's registry of operation kinds: a kind defined only in the tests (the gifts
of test_operation_kind.py) is counted in the janitor's gauges under its name, with no line of
gateway/metrics.py naming it."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine

from gateway.config import ChannelAccountConfig, Settings
from gateway.db import normalize_url
from gateway.logs import get_logger
from gateway.merchants import create_merchant
from gateway.service import Gateway
from tests.conftest import make_settings
from tests.payments.test_operation_kind import TEMPLATES, GiftKind, GiftPlugin, gifts
from tests.support import REPO


@pytest.fixture
def gift_settings(db_url: str, tmp_path: Path) -> Iterator[Settings]:
    """A gateway that takes gifts: the giftbox account, the gift templates in its chart, the gifts table."""
    chart = tmp_path / "ledger.toml"
    chart.write_text((REPO / "conf" / "ledger.toml").read_text() + TEMPLATES)
    base = make_settings(db_url, 8000)
    settings = base.with_changes(
        channel_accounts=(*base.channel_accounts, ChannelAccountConfig("giftbox", "giftbox", True, {})),
        ledger_config=str(chart))
    engine = create_engine(normalize_url(db_url))
    with engine.begin() as conn:
        gifts.create(conn)
    yield settings
    with engine.begin() as conn:
        gifts.drop(conn)
    engine.dispose()


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
