"""What the tests of operation kinds share: a gateway configured to take the gifts of tests/support/gifts.py."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine

from gateway.config import ChannelAccountConfig, Settings
from gateway.db import normalize_url
from tests.conftest import make_settings
from tests.support import REPO
from tests.support.gifts import TEMPLATES, gifts


@pytest.fixture
def gift_settings(db_url: str, tmp_path: Path) -> Iterator[Settings]:
    """The giftbox account, the gift templates in the chart, the gifts table (dropped after)."""
    chart = tmp_path / "ledger.toml"
    chart.write_text((REPO / "conf" / "ledger.toml").read_text() + TEMPLATES)
    base = make_settings(db_url, 8000)
    settings = base.with_changes(
        channel_accounts=(*base.channel_accounts, ChannelAccountConfig("giftbox", "giftbox", True, {})),
        ledger_config=str(chart), query_schedule_seconds=(0.05, 0.05), query_give_up_seconds=3600)
    engine = create_engine(normalize_url(db_url))
    with engine.begin() as conn:
        gifts.create(conn)
    yield settings
    with engine.begin() as conn:   # the gateway's own schema is checked against its migrations elsewhere
        gifts.drop(conn)
    engine.dispose()
