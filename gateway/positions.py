"""A channel account's position: the cash prefunded there, out of which payouts are paid. Its balances
are read by gateway.payouts.position_balances; this module books what comes in from the reserve bank."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from ledger.booking import Booker
from ledger.core import Entry


def top_up(conn: Connection, booker: Booker, channel_account: str, amount: int, currency: str, reference: str,
           now: datetime, memo: str) -> Entry:
    """Book cash sent from the reserve bank to a channel account's position (position.topup), keyed by
    `reference`: the same transfer booked twice is booked once."""
    return booker.book(conn, "position.topup", f"position:{channel_account}:{reference}", merchant_id="",
                       channel_account=channel_account, currency=currency, variables={"amount": amount},
                       now=now, memo=memo)
