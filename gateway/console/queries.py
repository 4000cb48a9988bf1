"""What the console pages read: searches, a payment's whole story, and the series behind the
pictures. Reads only; every action goes through the same service functions the API and CLI use."""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, Integer, Row, and_, case, func, or_, select

from gateway.books import merchant_balances
from gateway.exchanges import redact, redacted_body
from gateway.models import (Attempt, ChannelCallback, ChannelExchange, Merchant, MerchantEvent, Payment, Payout,
                            ReconItem, ReconRun, Refund, Split)
from gateway.resources import attempt_object, payment_object, payout_object, refund_object, split_object
from ledger.core import Ledger
from ledger.models import LedgerAccount, LedgerEntry, LedgerPosting

payments, attempts, refunds = Payment.__table__, Attempt.__table__, Refund.__table__
callbacks, events, merchants = ChannelCallback.__table__, MerchantEvent.__table__, Merchant.__table__
entries, postings, accounts = LedgerEntry.__table__, LedgerPosting.__table__, LedgerAccount.__table__
splits, payouts, items, runs = Split.__table__, Payout.__table__, ReconItem.__table__, ReconRun.__table__
exchanges = ChannelExchange.__table__
PAGE = 50
STATUSES = ("processing", "succeeded", "failed", "closed")

def id_at(prefix: str, at: datetime) -> str:
    """The smallest public id made at `at` (gateway.ids: prefix, then the time in ms as 11 hex digits)."""
    return f"{prefix}_{int(at.timestamp() * 1000):011x}"


def local_day(day: date, zone: str) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), ZoneInfo(zone))
    return start, start + timedelta(days=1)


def search_payments(conn: Connection, q: str, status: str, day: date | None, zone: str) -> list[dict[str, Any]]:
    """By payment id, merchant order no, channel transaction id or out-trade-no; status; creation day."""
    # Ids are time-ordered (gateway.ids): newest first and a day's range both read the primary key.
    query = select(payments).order_by(payments.c.id.desc()).limit(PAGE)
    if q:
        by_attempt = select(attempts.c.payment_id).where(or_(attempts.c.out_trade_no == q,
                                                             attempts.c.channel_transaction_id == q))
        query = query.where(or_(payments.c.id == q, payments.c.merchant_order_no == q,
                                payments.c.id.in_(by_attempt)))
    if status in STATUSES:
        query = query.where(payments.c.status == status)
    if day is not None:
        start, end = local_day(day, zone)
        query = query.where(and_(payments.c.id >= id_at("pay", start), payments.c.id < id_at("pay", end)))
    names = dict(conn.execute(select(merchants.c.id, merchants.c.name)).all())
    return [{**payment_object(_with_attempt(row)), "merchant": names.get(row.merchant_id, row.merchant_id)}
            for row in conn.execute(query)]


def _with_attempt(row: Row) -> SimpleNamespace:
    return SimpleNamespace(**row._mapping, attempt_action=None, attempt_out_trade_no=None)


def payment_story(conn: Connection, payment_id: str) -> dict[str, Any] | None:
    """Everything that happened to one payment, in the order it happened."""
    p = conn.execute(select(payments).where(payments.c.id == payment_id)).first()
    if p is None:
        return None
    tried = conn.execute(select(attempts).where(attempts.c.payment_id == payment_id)
                         .order_by(attempts.c.created_at, attempts.c.id)).all()
    back = conn.execute(select(refunds).where(refunds.c.payment_id == payment_id).order_by(refunds.c.created_at)).all()
    split_rows = conn.execute(select(splits).where(splits.c.payment_id == payment_id)
                              .order_by(splits.c.created_at)).all()
    numbers = [a.out_trade_no for a in tried] + [r.out_refund_no for r in back]
    heard = conn.execute(select(callbacks).where(callbacks.c.reference.in_(numbers))
                         .order_by(callbacks.c.received_at, callbacks.c.id)).all() if numbers else []
    said = conn.execute(select(exchanges).where(exchanges.c.reference.in_(
        numbers + [s.out_split_no for s in split_rows])).order_by(exchanges.c.at, exchanges.c.id)).all()
    references = ([f"payment:{payment_id}"] + [f"refund:{r.id}" for r in back] + [f"attempt:{a.id}" for a in tried]
                  + [f"split:{s.id}" for s in split_rows])
    resources = [payment_id] + [r.id for r in back] + [s.id for s in split_rows]
    told = conn.execute(select(events).where(events.c.resource_id.in_(resources)).order_by(events.c.seq)).all()
    differences = conn.execute(select(items).where(items.c.reference.in_(numbers))
                               .order_by(items.c.business_date, items.c.id)).all() if numbers else []
    # What reconciliation booked for it (an approved adjustment) is part of its story too.
    extra = ledger_entries(conn, [f"recon-item:{d.id}" for d in differences]) if differences else []
    merchant = conn.execute(select(merchants.c.name).where(merchants.c.id == p.merchant_id)).scalar()
    return {
        "payment": payment_object(_with_attempt(p)), "merchant": {"id": p.merchant_id, "name": merchant},
        "fee_rule": p.fee_rule,   # the fee rule that produced its fee (gateway/fees.py)
        "attempts": [{**attempt_object(a), "action": redact(a.action)} for a in tried],
        "refunds": [refund_object(r) for r in back],
        "splits": [split_object(s) for s in split_rows],
        "callbacks": [{"received_at": c.received_at, "verified": c.verified, "outcome": c.outcome,
                       "detail": c.detail, "reference": c.reference, "channel_account": c.channel_account,
                       "body": redacted_body(c.body)} for c in heard],
        "entries": ledger_entries(conn, references) + extra,
        "exchanges": [dict(x._mapping) for x in said],
        "events": [{"id": e.id, "type": e.type, "status": e.status, "attempts": e.attempts,
                    "request_id": e.request_id, "notify_url": e.notify_url, "created_at": e.created_at,
                    "delivered_at": e.delivered_at, "last_error": e.last_error} for e in told],
        "differences": [{"id": d.id, "class": d._mapping["class"], "business_date": d.business_date,
                         "status": d.status, "reference": d.reference, "run_id": d.run_id} for d in differences],
    }


def ledger_entries(conn: Connection, references: list[str]) -> list[dict[str, Any]]:
    found = conn.execute(select(entries).where(entries.c.reference.in_(references))
                         .order_by(entries.c.id)).all()
    if not found:
        return []
    lines = conn.execute(select(postings.c.entry_id, postings.c.amount, accounts.c.code, accounts.c.owner_id,
                                accounts.c.currency).join(accounts, accounts.c.id == postings.c.account_id)
                         .where(postings.c.entry_id.in_([e.id for e in found])).order_by(postings.c.id)).all()
    by_entry: dict[int, list[dict[str, Any]]] = {}
    for line in lines:
        by_entry.setdefault(line.entry_id, []).append(
            {"account": line.code, "owner": line.owner_id or "platform", "currency": line.currency,
             "debit": line.amount if line.amount > 0 else None, "credit": -line.amount if line.amount < 0 else None})
    return [{"id": e.id, "event_type": e.event_type, "key": e.key, "business_date": e.business_date, "memo": e.memo,
             "created_at": e.created_at, "lines": by_entry.get(e.id, [])} for e in found]


def recent_refunds(conn: Connection, status: str) -> list[dict[str, Any]]:
    query = select(refunds).order_by(refunds.c.created_at.desc()).limit(PAGE)
    if status in ("processing", "succeeded", "failed"):
        query = query.where(refunds.c.status == status)
    return [refund_object(r) for r in conn.execute(query)]


def recent_payouts(conn: Connection) -> list[dict[str, Any]]:
    return [payout_object(r) for r in conn.execute(select(payouts).order_by(payouts.c.created_at.desc()).limit(PAGE))]


def merchants_with_balances(conn: Connection, ledger: Ledger) -> list[dict[str, Any]]:
    return [{"id": m.id, "name": m.name, "status": m.status, "created_at": m.created_at,
             "balances": merchant_balances(conn, ledger, m.id)}
            for m in conn.execute(select(merchants).order_by(merchants.c.created_at))]


def recent_events(conn: Connection, status: str) -> list[Any]:
    query = select(events).order_by(events.c.seq.desc()).limit(PAGE)
    if status in ("pending", "delivered", "dead", "no_endpoint"):
        query = query.where(events.c.status == status)
    return conn.execute(query).all()


# ---- series for the pictures ----

def _bucket(conn: Connection, column: ColumnElement[datetime], unit: str) -> ColumnElement[str]:
    if conn.dialect.name == "postgresql":
        return func.to_char(func.date_trunc(unit, func.timezone("UTC", column)), "YYYY-MM-DD HH24:00")
    return func.strftime("%Y-%m-%d %H:00" if unit == "hour" else "%Y-%m-%d 00:00", column)


def traffic(conn: Connection, now: datetime, unit: str, count: int) -> dict[str, list[tuple[str, int, int, int]]]:
    """Per channel account, per hour (or day): (bucket, attempts, succeeded, amount succeeded in minor
    units), oldest first, every bucket present (zeros included)."""
    step = timedelta(hours=1) if unit == "hour" else timedelta(days=1)
    start = (now.replace(minute=0, second=0, microsecond=0) if unit == "hour"
             else now.replace(hour=0, minute=0, second=0, microsecond=0)) - step * (count - 1)
    bucket = _bucket(conn, attempts.c.created_at, unit).label("bucket")
    won = attempts.c.status == "succeeded"
    rows = conn.execute(select(attempts.c.channel_account, bucket, func.count(),
                               func.sum(func.cast(won, type_=Integer())),
                               func.sum(case((won, func.coalesce(attempts.c.amount, payments.c.amount)), else_=0)))
                        .join(payments, payments.c.id == attempts.c.payment_id)
                        .where(attempts.c.created_at >= start).group_by(attempts.c.channel_account, bucket)).all()
    labels = [(start + step * i).strftime("%Y-%m-%d %H:00" if unit == "hour" else "%Y-%m-%d 00:00")
              for i in range(count)]
    found: dict[str, dict[str, tuple[int, int, int]]] = {}
    for account, key, total, ok, amount in rows:
        found.setdefault(account, {})[key] = (int(total), int(ok or 0), int(amount or 0))
    return {account: [(label, *by_bucket.get(label, (0, 0, 0))) for label in labels]
            for account, by_bucket in sorted(found.items())}


def revenue_per_day(conn: Connection, since: date, until: date, currency: str = "CNY") -> list[tuple[str, int, int]]:
    """(business day, fees earned net of fees given back, what the channels kept as their fees) in
    minor units, for every day from `since` to `until`: the platform's revenue is the first less the
    second. Read from the ledger (fee_income is credit-normal, channel_fee_expense debit-normal)."""
    rows = conn.execute(select(entries.c.business_date, accounts.c.code, func.sum(postings.c.amount))
                        .join(postings, postings.c.entry_id == entries.c.id)
                        .join(accounts, accounts.c.id == postings.c.account_id)
                        .where(and_(entries.c.business_date >= since, entries.c.business_date <= until,
                                    accounts.c.code.in_(("fee_income", "channel_fee_expense")),
                                    accounts.c.currency == currency))
                        .group_by(entries.c.business_date, accounts.c.code)).all()
    found: dict[date, dict[str, int]] = {}
    for day, code, amount in rows:
        found.setdefault(day, {})[code] = int(amount or 0)
    days = [since + timedelta(days=i) for i in range((until - since).days + 1)]
    return [(d.isoformat(), -found.get(d, {}).get("fee_income", 0), found.get(d, {}).get("channel_fee_expense", 0))
            for d in days]


def open_counts(conn: Connection) -> dict[str, int]:
    """What waits for a person: unmatched reconciliation items, proposals waiting for a second operator."""
    from gateway.models import ReconProposal

    proposals = ReconProposal.__table__
    from gateway.models import ChannelAccountChange

    switches = ChannelAccountChange.__table__
    return {"switches": int(conn.execute(select(func.count()).select_from(switches)
                                         .where(switches.c.status == "proposed")).scalar() or 0),
            "unmatched": int(conn.execute(select(func.count()).select_from(items)
                                          .where(items.c.status == "open")).scalar() or 0),
            "approvals": int(conn.execute(select(func.count()).select_from(proposals)
                                          .where(proposals.c.status == "proposed")).scalar() or 0)}


def differences_per_day(conn: Connection, since: date, until: date) -> list[tuple[str, int, int]]:
    """(business day, differences found, still open) for every day from `since` to `until`."""
    rows = conn.execute(select(items.c.business_date, func.count(),
                               func.sum(func.cast(items.c.status == "open", type_=Integer())))
                        .where(and_(items.c.business_date >= since, items.c.status != "superseded"))
                        .group_by(items.c.business_date)).all()
    found = {d: (int(n), int(o or 0)) for d, n, o in rows}
    days = [since + timedelta(days=i) for i in range((until - since).days + 1)]
    return [(d.isoformat(), *found.get(d, (0, 0))) for d in days]


LATENCY_BUCKETS = ((1, "<1 s"), (5, "1–5 s"), (30, "5–30 s"), (60, "30–60 s"), (300, "1–5 min"),
                   (1800, "5–30 min"), (None, "> 30 min"))


def callback_latency(conn: Connection, since: datetime) -> list[tuple[str, int]]:
    """How long after an attempt began its verified callback arrived: a distribution."""
    rows = conn.execute(select(callbacks.c.received_at, attempts.c.created_at)
                        .join(attempts, attempts.c.out_trade_no == callbacks.c.reference)
                        .where(and_(callbacks.c.verified.is_(True), callbacks.c.received_at >= since))
                        .limit(20000)).all()
    counts = [0] * len(LATENCY_BUCKETS)
    for received, created in rows:
        seconds = (_aware(received) - _aware(created)).total_seconds()
        index = next(i for i, (limit, _) in enumerate(LATENCY_BUCKETS) if limit is None or seconds < limit)
        counts[index] += 1
    return [(label, n) for (_, label), n in zip(LATENCY_BUCKETS, counts)]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def recon_runs(conn: Connection) -> list[Any]:
    return conn.execute(select(runs).order_by(runs.c.business_date.desc(), runs.c.started_at.desc()).limit(PAGE)).all()


def channel_switches(conn: Connection, accounts: Any) -> dict[str, Any]:
    """Each account as configured and as operators switched it, the changes waiting for approval, and
    the latest decided ones."""
    from gateway.models import ChannelAccountChange, ChannelAccountOverride

    changes, overrides = ChannelAccountChange.__table__, ChannelAccountOverride.__table__
    found = {row.channel_account: row for row in conn.execute(select(overrides))}
    rows = []
    for account in accounts:
        row = found.get(account.id)
        limits = {k: getattr(account.limits, k) for k in ("min_amount", "max_amount", "daily_amount", "daily_count")}
        switched = dict(limits, **{k: v for k, v in ((row.limits or {}) if row else {}).items() if k in limits})
        rows.append({"id": account.id, "configured": {"enabled": account.enabled, "weight": account.weight, **limits},
                     "effective": {"enabled": account.enabled if row is None or row.enabled is None else row.enabled,
                                   "weight": account.weight if row is None or row.weight is None else row.weight,
                                   **switched},
                     "version": row.version if row else None, "updated_at": row.updated_at if row else None})
    pending = conn.execute(select(changes).where(changes.c.status == "proposed").order_by(changes.c.id)).all()
    decided = conn.execute(select(changes).where(changes.c.status != "proposed")
                           .order_by(changes.c.id.desc()).limit(20)).all()
    return {"accounts": rows, "pending": pending, "decided": decided}
