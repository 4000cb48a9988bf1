"""People resolve what no rule did: maker-checker.

A proposal row is never edited: proposing again withdraws it and inserts a new one, so its id names
exactly what an approver read. `approve()` locks the item row (as `propose()` does) and refuses
`proposal_changed` if the item's open proposal is another, booking nothing. Proposer and approver are
compared by operator id, never by name.
"""
from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection, Row, and_, insert, select, update

from gateway.reconciliation.errors import ReconError
from gateway.reconciliation.store import items, proposals, refresh_open, runs
from gateway.reports import ItemObject, item_object
from ledger.booking import Booker

ACTIONS = ("adjust", "dismiss")


class Person(Protocol):
    """Who proposes or approves: a signed-in operator (its id is compared, its name is shown)."""

    id: str
    name: str


def _item(conn: Connection, item_id: int) -> Row:
    row = conn.execute(select(items).where(items.c.id == item_id).with_for_update()).first()
    if row is None:
        raise ReconError("item_not_found", f"no reconciliation item {item_id}")
    if row.status != "open":
        raise ReconError("item_not_open", f"item {item_id} is {row.status}")
    return row


def propose(conn: Connection, item_id: int, action: str, by: Person, reason: str, now: datetime) -> ItemObject:
    """The maker: say how an open item should be resolved. Nothing is booked until someone else approves.
    A proposal is never edited: proposing again withdraws it and makes a new one, with a new id."""
    if action not in ACTIONS:
        raise ReconError("unknown_action", f"action must be one of {', '.join(ACTIONS)}")
    if not reason.strip():
        raise ReconError("reason_required", "a proposal needs a reason")
    row = _item(conn, item_id)
    if action == "adjust" and row.channel_effect == row.local_effect:
        raise ReconError("nothing_to_adjust", f"item {item_id} moves no money between the sides; dismiss it")
    conn.execute(update(proposals).where(and_(proposals.c.item_id == item_id, proposals.c.status == "proposed"))
                 .values(status="withdrawn", decided_by=by.name, decided_by_id=by.id, decided_at=now))
    conn.execute(insert(proposals).values(item_id=item_id, action=action, reason=reason[:500], proposed_by=by.name,
                                          proposed_by_id=by.id, proposed_at=now, status="proposed"))
    return item_object(row, conn.execute(select(proposals).where(and_(
        proposals.c.item_id == item_id, proposals.c.status == "proposed"))).one())


def approve(conn: Connection, item_id: int, proposal_id: int, by: Person, booker: Booker,
            now: datetime) -> ItemObject:
    """The checker: another operator executes the proposal they saw, `proposal_id`; if it was withdrawn
    or replaced since, nothing is done. An adjustment is a new entry through suspense (history is
    never edited); a dismissal books nothing and keeps the reason."""
    row = _item(conn, item_id)
    proposal = conn.execute(select(proposals).where(and_(proposals.c.item_id == item_id,
                                                         proposals.c.status == "proposed"))).first()
    if proposal is None:
        raise ReconError("no_proposal", f"item {item_id} has no proposal to approve; `paymux recon resolve` first")
    if proposal.id != proposal_id:
        raise ReconError("proposal_changed", f"item {item_id}'s proposal is now #{proposal.id} ({proposal.action} "
                                             f"by {proposal.proposed_by}: {proposal.reason}), not #{proposal_id}; "
                                             f"nothing was done: read it, then approve #{proposal.id}")
    if proposal.proposed_by_id is None:
        raise ReconError("proposer_unknown", f"proposal #{proposal.id} names its proposer only in free text; "
                                             f"an operator must propose it again")
    if proposal.proposed_by_id == by.id:
        raise ReconError("same_person", f"{by.name} proposed this; another person must approve it")
    entry_key = None
    if proposal.action == "adjust":
        difference = row.channel_effect - row.local_effect
        run = conn.execute(select(runs.c.currency).where(runs.c.id == row.run_id)).one()
        # a payout's difference is the channel account's position's, never what the channel owes us
        event = ("recon.payout_adjust" if row.kind == "payout" else "recon.adjust") + (
            "_gain" if difference > 0 else "_loss")
        reference = f"recon-item:{item_id}"
        booker.book(conn, event, reference, merchant_id=row.merchant_id or "", channel_account=row.channel_account,
                    currency=run.currency, variables={"amount": abs(difference)}, now=now,
                    memo=f"{row._mapping['class']} {row.kind} {row.reference}: {proposal.reason}"[:500])
        entry_key = f"{reference}:{event}"
    conn.execute(update(proposals).where(proposals.c.id == proposal.id).values(
        status="approved", decided_by=by.name, decided_by_id=by.id, decided_at=now, entry_key=entry_key))
    conn.execute(update(items).where(items.c.id == item_id).values(
        status="resolved", resolution=proposal.action, resolved_by=f"{proposal.proposed_by} + {by.name}",
        resolved_at=now, note=proposal.reason))
    refresh_open(conn, [row.run_id])
    return item_object(conn.execute(select(items).where(items.c.id == item_id)).one())
