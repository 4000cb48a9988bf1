"""The bank's differences are reconciliation items: people propose and approve them with the same
maker-checker as a channel's (gateway.reconciliation.review, unchanged). Only what an approval books
differs: the money is the reserve bank account's, so an adjustment moves reserve_bank against suspense
(`bank.adjust_gain` / `bank.adjust_loss`) where a channel's moves channel clearing."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import Connection, select, update

from gateway.funds.store import statements
from gateway.reconciliation.review import Person, approve
from gateway.reconciliation.store import items, proposals
from ledger.booking import Booker
from ledger.core import Entry

BANK_EVENTS = {"recon.adjust_gain": "bank.adjust_gain", "recon.adjust_loss": "bank.adjust_loss"}


class BankBooker(Booker):
    """The booker an approval of a bank item books with: the channel's adjustment events become the bank's."""

    def __init__(self, booker: Booker) -> None:
        super().__init__(booker.ledger)

    def book(self, conn: Connection, event_type: str, reference: str, **kw: Any) -> Entry:
        return super().book(conn, BANK_EVENTS.get(event_type, event_type), reference, **kw)


def is_bank_item(conn: Connection, item_id: int) -> bool:
    return conn.execute(select(items.c.id).where(items.c.id == item_id, items.c.run_id.in_(
        select(statements.c.run_id)))).first() is not None


def approve_item(conn: Connection, item_id: int, proposal_id: int, by: Person, booker: Booker,
                 now: datetime) -> Mapping[str, Any]:
    """reconciliation.review.approve, with the bank's events for a bank item; the proposal's entry_key
    (written by that approval, in this transaction) names the entry actually booked."""
    if not is_bank_item(conn, item_id):
        return approve(conn, item_id, proposal_id, by, booker, now)
    result = approve(conn, item_id, proposal_id, by, BankBooker(booker), now)
    key = conn.execute(select(proposals.c.entry_key).where(proposals.c.id == proposal_id)).scalar()
    if key:
        event = key.rsplit(":", 1)[1]
        conn.execute(update(proposals).where(proposals.c.id == proposal_id).values(
            entry_key=key[: -len(event)] + BANK_EVENTS[event]))
    return result
