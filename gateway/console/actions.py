"""What operators do, the same from the console and from the CLI: each action needs the role in
NEEDS (checked by the console's `page()` and by the CLI after the operator signs in), runs through
the service function the rest of paymux uses, and is written to the audit log in its transaction."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select

from gateway.console.identity import record
from gateway.models import MerchantEvent
from gateway.notifier import redeliver
from gateway.reconciliation.review import approve, propose
from gateway.reconciliation.store import proposals
from ledger.booking import Booker

NEEDS = {"recon.propose": "operator", "recon.approve": "approver", "event.redeliver": "operator",
         "settle.force": "approver", "ledger.freeze": "operator", "ledger.unfreeze": "approver",
         "position.topup": "approver", "operator.admin": "approver"}


def propose_resolution(conn: Connection, op: Row, item_id: int, action: str, reason: str, now: datetime, *,
                       source: str, client_ip: str | None = None) -> dict[str, Any]:
    result = propose(conn, item_id, action, op, reason, now)
    record(conn, op, "recon.propose", f"recon-item:{item_id}", {"status": "open"}, result["proposal"],
           now=now, source=source, client_ip=client_ip)
    return result


def approve_resolution(conn: Connection, op: Row, item_id: int, proposal_id: int, booker: Booker, now: datetime, *,
                       source: str, client_ip: str | None = None) -> dict[str, Any]:
    result = approve(conn, item_id, proposal_id, op, booker, now)
    proposal = conn.execute(select(proposals.c.id, proposals.c.action, proposals.c.proposed_by,
                                   proposals.c.proposed_by_id, proposals.c.reason)
                            .where(proposals.c.id == proposal_id)).one()
    record(conn, op, "recon.approve", f"recon-item:{item_id}", {"status": "open", "proposal": dict(proposal._mapping)},
           {"status": result["status"], "resolution": result["resolution"]}, now=now, source=source,
           client_ip=client_ip)
    return result


def redeliver_event(conn: Connection, op: Row, event_id: str, now: datetime, *, source: str,
                    client_ip: str | None = None) -> bool:
    """Queue a merchant event for delivery again; False if there is no such event with an endpoint."""
    table = MerchantEvent.__table__
    before = conn.execute(select(table.c.status, table.c.attempts).where(table.c.id == event_id)).first()
    if not redeliver(conn, event_id, now):
        return False
    record(conn, op, "event.redeliver", event_id, {"status": before.status, "attempts": before.attempts},
           {"status": "pending"}, now=now, source=source, client_ip=client_ip)
    return True
