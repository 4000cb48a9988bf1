"""What operators read, in one place: reconciliation runs and their items, the daily report, the
channel listing. Each report only reads; the books are read through the ledger's functions
(ledger/reads.py), never through its tables. The CLI prints these, the console renders them.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import Connection, Row, String, and_, func, literal, select

from gateway.config import Settings
from gateway.funds.config import reserve_accounts
from gateway.funds.match import CLASSES as FUNDS_CLASSES
from gateway.funds.store import latest_statement_date, reconcile_window
from gateway.health import RecentHealth, recent_health
from gateway.models import Payment, ReconItem, ReconProposal, ReconRun, Settlement
from gateway.reconciliation.match import CLASSES
from gateway.routing import usage_since
from ledger.days import BusinessDay
from ledger.reads import postings_on, total_balance

runs = ReconRun.__table__
items = ReconItem.__table__
proposals = ReconProposal.__table__
settlements = Settlement.__table__
payments = Payment.__table__

RunReport = dict[str, Any]    # a run as `paymux reconcile --json` prints it
ItemObject = dict[str, Any]   # an item (and its open proposal) as `paymux recon list --json` prints it


# ---- reconciliation ----

def run_report(row: Row) -> RunReport:
    """The run as `paymux reconcile --json` prints it."""
    counts = {name: int((row.counts or {}).get(name, 0)) for name in CLASSES}
    return {"run_id": row.id, "channel_account": row.channel_account, "business_date": row.business_date.isoformat(),
            "status": row.status, "message": row.message, "statement_rows": row.statement_rows, "counts": counts,
            "auto_resolved": row.auto_resolved, "open": row.open, "summary": row.summary,
            "payment_amount": row.payment_amount, "refund_amount": row.refund_amount, "fee_amount": row.fee_amount,
            "currency": row.currency, "sha256": row.sha256}


def item_object(row: Row, proposal: Row | None = None) -> ItemObject:
    obj = {k: row._mapping[k] for k in (
        "id", "run_id", "channel_account", "kind", "reference", "out_trade_no", "line_no", "channel_transaction_id",
        "channel_status", "local_status", "channel_amount", "local_amount", "channel_effect", "local_effect",
        "channel_fee_millis", "expected_fee_millis", "payment_id", "merchant_id", "status", "resolution",
        "resolved_by", "note")}
    obj["class"] = row._mapping["class"]
    obj["business_date"] = row.business_date.isoformat()
    obj["difference"] = row.channel_effect - row.local_effect
    if proposal is not None:
        obj["proposal"] = {"id": proposal.id, "action": proposal.action, "by": proposal.proposed_by,
                           "by_id": proposal.proposed_by_id, "reason": proposal.reason}
    return obj


def open_items(conn: Connection, account_id: str | None = None, business_date: date | None = None,
               include_closed: bool = False, run_id: str | None = None) -> list[ItemObject]:
    """The differences people have to look at (every item with include_closed), with open proposals."""
    query = select(items).order_by(items.c.business_date, items.c.id)
    if not include_closed:
        query = query.where(items.c.status == "open")
    if run_id:
        query = query.where(items.c.run_id == run_id)
    if account_id:
        query = query.where(items.c.channel_account == account_id)
    if business_date:
        query = query.where(items.c.business_date == business_date)
    rows = conn.execute(query).all()
    pending = {p.item_id: p for p in conn.execute(select(proposals).where(proposals.c.status == "proposed"))}
    return [item_object(row, pending.get(row.id)) for row in rows]


# ---- the day ----

def daily_report(conn: Connection, settings: Settings, day: date) -> dict[str, Any]:
    """Per channel account and per merchant: volume, fees, refunds, differences by class, settlements."""
    cleared = postings_on(("channel_clearing",), ("payment.succeeded",), day).subquery()
    succeeded = (select(payments.c.merchant_id, payments.c.channel_account, payments.c.amount, payments.c.fee_amount,
                        cleared.c.currency)
                 .select_from(cleared.join(payments, cleared.c.reference == literal("payment:", String) + payments.c.id))
                 ).subquery()
    # what refund.succeeded paid down of refunds payable: the channel gave the customers that back
    refunded = postings_on(("refunds_payable",), ("refund.succeeded",), day).subquery()
    settled = {(r.kind, r.owner): r.amount for r in conn.execute(select(settlements).where(
        settlements.c.business_date == day))}
    channel_rows = []
    for a in settings.channel_accounts:
        volume = conn.execute(select(func.count(), func.coalesce(func.sum(succeeded.c.amount), 0))
                              .where(succeeded.c.channel_account == a.id)).one()
        run = conn.execute(select(runs).where(and_(runs.c.channel_account == a.id, runs.c.business_date == day,
                                                   runs.c.status == "completed"))).first()
        open_by_class = dict(conn.execute(select(items.c["class"], func.count()).where(and_(
            items.c.channel_account == a.id, items.c.business_date == day, items.c.status == "open"))
            .group_by(items.c["class"])).all())
        channel_rows.append({
            "channel_account": a.id, "payments": int(volume[0]), "volume": int(volume[1]),
            "reconciled": run is not None, "statement": None if run is None else {
                "run_id": run.id, "rows": run.statement_rows, "payment_amount": run.payment_amount,
                "refund_amount": run.refund_amount, "channel_fees": run.fee_amount,
                "counts": {name: int((run.counts or {}).get(name, 0)) for name in CLASSES}},
            "open_differences": {name: int(open_by_class.get(name, 0)) for name in CLASSES if name != "matched"},
            "settled": settled.get(("channel", a.id)), "advances_repaid": settled.get(("advance_repaid", a.id))})
    merchant_rows = []
    for merchant_id, n, volume, fees in conn.execute(
            select(succeeded.c.merchant_id, func.count(), func.sum(succeeded.c.amount),
                   func.coalesce(func.sum(succeeded.c.fee_amount), 0)).group_by(succeeded.c.merchant_id)):
        owners = [owner for (kind, owner) in settled if kind == "merchant" and owner.startswith(f"{merchant_id}@")]
        merchant_rows.append({"merchant_id": merchant_id, "payments": int(n), "volume": int(volume), "fees": int(fees),
                              "settled": sum(int(settled[("merchant", o)]) for o in owners),
                              "advanced": sum(int(settled.get(("advance", o), 0)) for o in owners)})
    refunds_total = conn.execute(select(func.coalesce(func.sum(refunded.c.debit), 0))).scalar_one()
    return {"date": day.isoformat(), "channel_accounts": channel_rows, "merchants": merchant_rows,
            "refunds": int(refunds_total), "advances_outstanding": total_balance(conn, "advances"),
            "funds": funds_daily(conn, settings, day)}


# ---- the channels ----

def channel_listing(conn: Connection, settings: Settings, now: datetime, minutes: int) -> list[dict[str, Any]]:
    """Each configured channel account: routing settings (as operators switched them at runtime),
    health over the last `minutes`, circuit, and what it took today against its limits (for
    `paymux channels` and the console)."""
    since = BusinessDay.of(settings.business_timezone, settings.day_cut_hour).start_of_day_containing(now)
    health = recent_health(conn, now - timedelta(minutes=minutes))
    usage = usage_since(conn, [a.id for a in settings.channel_accounts], since)
    listing = []
    for a in settings.channel_accounts:
        seen = health.get(a.id, RecentHealth())
        circuit = seen.circuit
        count, amount = usage.get(a.id, (0, 0))
        limits = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(a.limits).items() if v is not None}
        listing.append({
            "id": a.id, "plugin": a.plugin, "enabled": a.enabled, "priority": a.priority, "weight": a.weight,
            "circuit": {"state": "closed", "since": None, "error_rate": 0.0} if circuit is None else {
                "state": circuit.state, "since": circuit.since.isoformat(), "error_rate": circuit.error_rate},
            "last_minutes": minutes, "calls": seen.calls, "errors": seen.errors,
            "timeouts": seen.timeouts, "success_rate": seen.success_rate,
            "mean_latency_ms": seen.mean_latency_ms,
            "today": {"count": count, "amount": amount}, "limits": limits})
    return _as_switched(conn, listing)


def _as_switched(conn: Connection, listing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The channel listing with what operators switched at runtime (state, weight, limits) over the
    configuration's values, as the routers use them."""
    from gateway.models import ChannelAccountOverride

    overrides = ChannelAccountOverride.__table__
    found = {row.channel_account: row for row in conn.execute(select(overrides))}
    for account in listing:
        row = found.get(account["id"])
        if row is None:
            continue
        if row.enabled is not None:
            account["enabled"] = bool(row.enabled)
        if row.weight is not None:
            account["weight"] = row.weight
        limits = {**account["limits"], **(row.limits or {})}
        account["limits"] = {k: v for k, v in limits.items() if v is not None}
    return listing


# ---- funds: the reserve bank account ----

def funds_daily(conn: Connection, settings: Settings, day: date) -> list[dict[str, Any]]:
    """Per reserve account, and per channel account settling into it, for `day`: what the books expected
    to move through the bank, what the bank's current statements show for it (on time or late), the
    difference; the money in transit (booked as paid by the channel, on no bank statement yet: as of
    the reserve account's latest statement); and what the bank received that nothing expected."""
    found = []
    for reserve in reserve_accounts(settings).values():
        outcomes, since, until = reconcile_window(conn, reserve, day, decided=False)
        on_day = outcomes.filter(pl.col("business_date") == day)
        moved = on_day.filter(pl.col("kind") != "bank_line")
        in_transit = outcomes.filter((pl.col("kind") == "settlement") & (pl.col("class") == "expected_not_received")
                                     & (pl.col("business_date") <= day))
        rows = []
        for account in sorted(set(reserve.channel_accounts) | set(moved["channel_account"].to_list())):
            mine = moved.filter(pl.col("channel_account") == account)
            expected, received = int(mine["expected_amount"].sum()), int(mine["bank_amount"].fill_null(0).sum())
            rows.append({"channel_account": account, "expected": expected, "received": received,
                         "difference": received - expected,
                         "classes": {c: int(mine.filter(pl.col("class") == c).height) for c in FUNDS_CLASSES},
                         "in_transit": int(in_transit.filter(pl.col("channel_account") == account)
                                           ["expected_amount"].sum())})
        unexpected = on_day.filter(pl.col("class") == "received_not_expected")
        latest = latest_statement_date(conn, reserve.id)
        found.append({"reserve_account": reserve.id, "currency": reserve.currency, "channel_accounts": rows,
                      "received_not_expected": {"count": unexpected.height,
                                                "amount": int(unexpected["bank_amount"].sum())},
                      "latest_statement": latest.isoformat() if latest else None,
                      "window": [since.isoformat(), until.isoformat()]})
    return found
