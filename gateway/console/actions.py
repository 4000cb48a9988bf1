"""What operators do, the same from the console and from the CLI: each action needs the role in
NEEDS (checked by the console's `page()` and by the CLI after the operator signs in), runs through
the service function the rest of paymux uses, and is written to the audit log in its transaction."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import Connection, Row, insert, select, update

from gateway.console.identity import record
from gateway.funds.review import approve_item
from gateway.models import ChannelAccountChange, ChannelAccountOverride, MerchantEvent
from gateway.notifier import redeliver
from gateway.reconciliation.review import propose
from gateway.reconciliation.store import proposals
from ledger.booking import Booker

NEEDS = {"recon.propose": "operator", "recon.approve": "approver", "event.redeliver": "operator",
         "settle.force": "approver", "ledger.freeze": "operator", "ledger.unfreeze": "approver",
         "position.topup": "approver", "operator.admin": "approver", "channel.propose": "operator", "recon.request": "operator",
         "channel.approve": "approver"}
changes, overrides = ChannelAccountChange.__table__, ChannelAccountOverride.__table__


def propose_resolution(conn: Connection, op: Row, item_id: int, action: str, reason: str, now: datetime, *,
                       source: str, client_ip: str | None = None) -> dict[str, Any]:
    result = propose(conn, item_id, action, op, reason, now)
    record(conn, op, "recon.propose", f"recon-item:{item_id}", {"status": "open"}, result["proposal"],
           now=now, source=source, client_ip=client_ip)
    return result


def approve_resolution(conn: Connection, op: Row, item_id: int, proposal_id: int, booker: Booker, now: datetime, *,
                       source: str, client_ip: str | None = None) -> dict[str, Any]:
    result = approve_item(conn, item_id, proposal_id, op, booker, now)   # a bank item books the bank's events
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


# ---- channel accounts switched at runtime (maker-checker, like the resolutions of reconciliation) ----

class ChannelChangeError(Exception):
    """A change that cannot be proposed or decided: `code` says why (the page shows it, nothing is written)."""

    def __init__(self, code: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.code, self.status = code, status


CHANGE_LIMITS = ("min_amount", "max_amount", "daily_amount", "daily_count")


def checked_change(change: dict[str, Any]) -> dict[str, Any]:
    """A change as it may be stored: enabled (bool), weight (1-1000), limits (whole numbers >= 0, or
    null to lift one); anything else is refused with a code."""
    if not isinstance(change, dict) or not change or set(change) - {"enabled", "weight", "limits"}:
        raise ChannelChangeError("invalid_change", "A change sets enabled, weight or limits, and at least one.", 400)
    if "enabled" in change and not isinstance(change["enabled"], bool):
        raise ChannelChangeError("invalid_change", "enabled is true or false.", 400)
    weight = change.get("weight")
    if "weight" in change and not (isinstance(weight, int) and not isinstance(weight, bool) and 1 <= weight <= 1000):
        raise ChannelChangeError("invalid_weight", "The weight is a whole number from 1 to 1000.", 400)
    limits = change.get("limits")
    if "limits" in change:
        if not isinstance(limits, dict) or not limits or set(limits) - set(CHANGE_LIMITS):
            raise ChannelChangeError("invalid_limits", f"Limits are {', '.join(CHANGE_LIMITS)}.", 400)
        for key, value in limits.items():
            if value is not None and not (isinstance(value, int) and not isinstance(value, bool)
                                          and 0 <= value <= 10**15):
                raise ChannelChangeError("invalid_limits", f"{key} is a whole number of at least 0.", 400)
        low, high = limits.get("min_amount"), limits.get("max_amount")
        if low is not None and high is not None and low > high:
            raise ChannelChangeError("invalid_limits", "min_amount is above max_amount.", 400)
    return change


def propose_channel_change(conn: Connection, op: Row, account_ids: Iterable[str], account: str,
                           change: dict[str, Any], reason: str, now: datetime, *, source: str,
                           client_ip: str | None = None) -> int:
    if account not in set(account_ids):
        raise ChannelChangeError("unknown_channel", f"No channel account {account!r}.", 400)
    if not reason or len(reason) > 500:
        raise ChannelChangeError("reason_required", "Say why, in at most 500 characters.", 400)
    checked_change(change)
    change_id = conn.execute(insert(changes).values(
        channel_account=account, change=change, reason=reason, status="proposed", proposed_by=op.name,
        proposed_by_id=op.id, proposed_at=now).returning(changes.c.id)).scalar_one()
    record(conn, op, "channel.propose", f"channel:{account}", current_override(conn, account),
           {"change_id": change_id, **change, "reason": reason}, now=now, source=source, client_ip=client_ip)
    return change_id


def decide_channel_change(conn: Connection, op: Row, change_id: int, approve: bool, now: datetime, *,
                          source: str, client_ip: str | None = None) -> dict[str, Any]:
    """Approve (apply to the account's override, its version one more) or reject a proposed change;
    never one's own, never one already decided."""
    row = conn.execute(select(changes).where(changes.c.id == change_id)).first()
    if row is None:
        raise ChannelChangeError("unknown_change", f"There is no change {change_id}.", 404)
    if row.status != "proposed":
        raise ChannelChangeError("change_decided", f"Change {change_id} was already {row.status}.")
    if row.proposed_by_id == op.id:
        raise ChannelChangeError("own_proposal", "A change is approved or rejected by someone other than its "
                                                 "proposer.")
    decided = conn.execute(update(changes).where(changes.c.id == change_id, changes.c.status == "proposed")
                           .values(status="approved" if approve else "rejected", decided_by=op.name,
                                   decided_by_id=op.id, decided_at=now))
    if decided.rowcount != 1:
        raise ChannelChangeError("change_decided", f"Change {change_id} was decided meanwhile.")
    before = current_override(conn, row.channel_account)
    after = before
    if approve:
        after = merged(before, row.change)
        values = {**after, "change_id": change_id, "updated_at": now}
        if before is None:
            conn.execute(insert(overrides).values(channel_account=row.channel_account, version=1, **values))
        else:
            conn.execute(update(overrides).where(overrides.c.channel_account == row.channel_account)
                         .values(version=overrides.c.version + 1, **values))
    record(conn, op, "channel.approve" if approve else "channel.reject", f"channel:{row.channel_account}",
           before, {"change_id": change_id, **(after or {})} if approve else {"change_id": change_id},
           now=now, source=source, client_ip=client_ip)
    return {"id": change_id, "channel_account": row.channel_account, "status": "approved" if approve else "rejected"}


def current_override(conn: Connection, account: str) -> dict[str, Any] | None:
    row = conn.execute(select(overrides.c.enabled, overrides.c.weight, overrides.c.limits)
                       .where(overrides.c.channel_account == account)).first()
    return None if row is None else {"enabled": row.enabled, "weight": row.weight, "limits": row.limits}


def merged(before: dict[str, Any] | None, change: dict[str, Any]) -> dict[str, Any]:
    after = dict(before or {"enabled": None, "weight": None, "limits": None})
    for key in ("enabled", "weight"):
        if key in change:
            after[key] = change[key]
    if "limits" in change:
        after["limits"] = {**(after.get("limits") or {}), **change["limits"]}
    return after
