"""Settlement: after reconciliation, the money of a day moves.

`settle(S)` books, idempotently (one row per kind, owner and day in `settlements`):
- for each channel account that settles T+n (`settlement_days`, default 1), each day X whose T+n
  ends on S (n working days by the currency's calendar, gateway/workdays.py: after a holiday, the day
  before it and every day of it), if reconciled: the channel's net for X (payments - refunds - its
  fees, from the statement; less what it paid receivers itself, from its reconciled statement of
  splits, where it has one) from
  clearing into the reserve bank (`settlement.channel`), and the repayment of any advance made on
  X (`settlement.advance_repaid`);
- for each merchant on T+m (`[settlement] merchant_days`, default 1, or its own), each day Y whose
  T+m ends on S, if every account that carried its payments on Y is reconciled: what those payments credited to
  its in-transit balance becomes available (`settlement.merchant`). Where the channel has not yet
  paid Y (a T+0 merchant on a T+1 channel), the platform pays from its own money: an advance
  (`settlement.advance`, advances against clearing), which is the exposure the report shows;
- for each receiver whose money paymux holds, on its own T+n, likewise (`settlement.receiver`,
  gateway/split_settlement.py).
A day whose reconciliation has open `missing_channel`, `amount_mismatch` or `status_mismatch` items is
refused unless forced by a named person (`--force --by NAME`), recorded on what it books; the daily
close settles with hold=True instead: what is clean is booked, what is not is held, with the reason.
A date the calendar does not know is refused (SettlementRefused): never a guess.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, String, and_, func, insert, literal, select

from gateway.channel import Capability, Channel
from gateway.config import Settings
from gateway.models import Payment, ReconItem, ReconRun, Settlement
from gateway.split_recon import reconciled_splits, splits_in_play
from gateway.split_settlement import settle_receivers
from gateway.workdays import CalendarUnknown, WorkingDays
from ledger.booking import Booker
from ledger.days import BusinessDay
from ledger.core import AccountRef
from ledger.reads import postings_on

runs = ReconRun.__table__
items = ReconItem.__table__
settlements = Settlement.__table__
payments = Payment.__table__

# Open differences that make the statement's net something our books cannot stand behind: a line we do
# not know (missing_local) or one listed twice (duplicate) would put channel clearing below zero.
BLOCKING = ("missing_channel", "missing_local", "amount_mismatch", "status_mismatch", "duplicate")


class SettlementRefused(Exception):
    pass


@dataclass
class SettleReport:
    settle_date: str
    booked: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)     # hold=True: what open differences keep back, and why

    def as_dict(self) -> dict[str, Any]:
        return {"settle_date": self.settle_date, "booked": self.booked, "skipped": self.skipped, "held": self.held}


class Settler:
    def __init__(self, settings: Settings, host_types: Mapping[str, type[Channel]], booker: Booker,
                 workdays: WorkingDays | None = None) -> None:
        self.settings = settings
        self.booker = booker
        self.workdays = workdays or WorkingDays.from_settings(settings.extra)
        self.statement_accounts = [a for a in settings.channel_accounts if a.plugin in host_types and
                                   Capability.STATEMENT in host_types[a.plugin].capabilities]
        self.day = BusinessDay.of(settings.business_timezone, settings.day_cut_hour)
        self.split_statement_accounts = {a.id for a in self.statement_accounts
                                         if Capability.SPLIT_STATEMENT in host_types[a.plugin].capabilities}
        self.currency = {a.id: host_types[a.plugin].statement_currency for a in self.statement_accounts}

    def merchant_days(self, merchant_id: str) -> int:
        return self.settings.merchant_settlement_overrides.get(merchant_id, self.settings.merchant_settlement_days)

    def settle(self, conn: Connection, settle_date: date, now: datetime, force_by: str | None = None,
               hold: bool = False) -> SettleReport:
        try:
            return self._settle(conn, settle_date, now, force_by, hold)
        except CalendarUnknown as exc:
            raise SettlementRefused(str(exc)) from None

    def _settle(self, conn: Connection, settle_date: date, now: datetime, force_by: str | None,
                hold: bool) -> SettleReport:
        report = SettleReport(settle_date.isoformat())
        channel_days = {a.id: a.settlement_days for a in self.statement_accounts}
        # Which channel days are due, and are they reconciled and clean?
        for account in self.statement_accounts:
            for day in self.workdays.of(self.currency[account.id]).settling_on(settle_date, account.settlement_days):
                run = self._reconciled(conn, account.id, day)
                if run is None:
                    report.skipped.append(f"{account.id} {day}: not reconciled")
                    continue
                if not self._clean(conn, report, account.id, day, force_by, hold):
                    continue
                net = run.payment_amount - run.refund_amount - run.fee_amount
                if account.id in self.split_statement_accounts:   # less what it paid receivers itself (split_recon)
                    split_run = reconciled_splits(conn, account.id, day)
                    if split_run is None and splits_in_play(conn, account.id, self.day.start(day + timedelta(days=1))):
                        report.skipped.append(f"{account.id} {day}: its statement of splits is not reconciled")
                        continue
                    if split_run is not None:
                        net -= (int(split_run.summary.get("split_amount", 0))
                                - int(split_run.summary.get("return_amount", 0)))
                if self._book(conn, report, "channel", account.id, day, settle_date, net, run.currency, now, force_by,
                              channel_account=account.id):
                    repaid = self._advanced(conn, account.id, day)
                    if repaid:
                        self._book(conn, report, "advance_repaid", account.id, day, settle_date, repaid, run.currency,
                                   now, force_by, channel_account=account.id)
        # Merchants, each on its own cycle.
        for merchant_id, account_id, currency, day, amount in self._merchant_days(conn, settle_date):
            run = self._reconciled(conn, account_id, day) if account_id in channel_days else None
            if account_id in channel_days and run is None:
                report.skipped.append(f"{merchant_id} via {account_id} {day}: not reconciled")
                continue
            if account_id in channel_days and not self._clean(conn, report, account_id, day, force_by, hold):
                continue
            owner = f"{merchant_id}@{account_id}"
            available = self._in_transit(conn, merchant_id, currency)
            amount = min(amount, available)
            if amount <= 0:
                continue
            booked = self._book(conn, report, "merchant", owner, day, settle_date, amount, currency, now, force_by,
                                merchant_id=merchant_id, channel_account=account_id)
            channel_paid_on = self.workdays.of(currency).add(day, channel_days.get(account_id, 0))
            if booked and channel_paid_on > settle_date:   # paid before the channel pays us: an advance
                self._book(conn, report, "advance", owner, day, settle_date, amount, currency, now, force_by,
                           merchant_id=merchant_id, channel_account=account_id)
        # Receivers whose money paymux holds, each on its own cycle (gateway/split_settlement.py).
        settle_receivers(self, conn, report, settle_date, now, force_by, hold, channel_days)
        return report

    # ---- the pieces ----

    @staticmethod
    def _reconciled(conn: Connection, account_id: str, day: date) -> Row | None:
        return conn.execute(select(runs).where(and_(runs.c.channel_account == account_id,
                                                    runs.c.business_date == day, runs.c.status == "completed"))
                            .order_by(runs.c.started_at.desc())).first()

    @classmethod
    def _clean(cls, conn: Connection, report: SettleReport, account_id: str, day: date, force_by: str | None,
               hold: bool) -> bool:
        """True if the account's days up to `day` may settle; held (False, with the reason) or refused if not."""
        try:
            cls._check_clean(conn, account_id, day, force_by)
        except SettlementRefused as exc:
            if not hold:
                raise
            report.held.append(str(exc).split("; resolve")[0])
            return False
        return True

    @staticmethod
    def _check_clean(conn: Connection, account_id: str, day: date, force_by: str | None) -> None:
        blocking = conn.execute(select(items.c["class"], func.count()).where(and_(
            items.c.channel_account == account_id, items.c.business_date <= day, items.c.status == "open",
            items.c["class"].in_(BLOCKING))).group_by(items.c["class"])).all()
        if blocking and not force_by:
            what = ", ".join(f"{n} {cls}" for cls, n in blocking)
            raise SettlementRefused(f"{account_id} up to {day}: open differences ({what}); resolve them, or settle "
                                    f"with --force --by NAME")

    def _merchant_days(self, conn: Connection, settle_date: date) -> list[tuple[str, str, str, date, int]]:
        """(merchant, channel account, currency, day, in-transit credited by that day's payments) due now:
        one query per settlement cycle in use (T+1, and each override's), not one per merchant."""
        due: list[tuple[str, str, str, date, int]] = []
        cycles = {self.settings.merchant_settlement_days, *self.settings.merchant_settlement_overrides.values()}
        for n in sorted(cycles):
            for day in self._days_settling_on(settle_date, n):
                # what a payment credited, less what the channel froze of it for splitting (released later)
                moved = postings_on(("merchant_in_transit",), ("payment.succeeded", "campaign.discount", "split.frozen",
                                                               "split.released"), day).subquery()
                rows = conn.execute(
                    select(moved.c.owner_id, payments.c.channel_account, moved.c.currency, func.sum(moved.c.change))
                    .select_from(moved.join(payments, moved.c.reference == literal("payment:", String) + payments.c.id))
                    .group_by(moved.c.owner_id, payments.c.channel_account, moved.c.currency)).all()
                due += [(merchant_id, account_id, currency, day, int(amount))
                        for merchant_id, account_id, currency, amount in rows if self.merchant_days(merchant_id) == n
                        and self.workdays.of(currency).add(day, n) == settle_date]
        return sorted(due)

    def _days_settling_on(self, settle_date: date, n: int) -> list[date]:
        """The days a T+n cycle of any currency may end on `settle_date` (each row is checked against its own)."""
        days = {settle_date - timedelta(days=n)}
        for calendar in self.workdays.calendars.values():
            days.update(calendar.settling_on(settle_date, n))
        return sorted(days)

    def _in_transit(self, conn: Connection, merchant_id: str, currency: str) -> int:
        """What the merchant has in transit, as the merchant reads it (the ledger owns the sign)."""
        return self.booker.ledger.balance(conn, AccountRef("merchant_in_transit", merchant_id, currency))

    @staticmethod
    def _advanced(conn: Connection, account_id: str, day: date) -> int:
        return int(conn.execute(select(func.coalesce(func.sum(settlements.c.amount), 0)).where(and_(
            settlements.c.kind == "advance", settlements.c.channel_account == account_id,
            settlements.c.business_date == day))).scalar_one())

    def _book(self, conn: Connection, report: SettleReport, kind: str, owner: str, day: date, settle_date: date,
              amount: int, currency: str, now: datetime, force_by: str | None, *, channel_account: str | None = None,
              merchant_id: str | None = None, receiver_id: str = "") -> bool:
        """Book one settlement once; False if it was booked before (settling a day twice changes nothing)."""
        if conn.execute(select(settlements.c.id).where(and_(settlements.c.kind == kind, settlements.c.owner == owner,
                                                            settlements.c.business_date == day))).first():
            return False
        event = {"channel": "settlement.channel" if amount >= 0 else "settlement.channel_debit",
                 "merchant": "settlement.merchant", "advance": "settlement.advance",
                 "advance_repaid": "settlement.advance_repaid", "receiver": "settlement.receiver"}[kind]
        reference = f"settle:{kind}:{owner}:{day.isoformat()}"
        if amount:
            self.booker.book(conn, event, reference, merchant_id=merchant_id or "",
                             channel_account=channel_account or "", receiver_id=receiver_id, currency=currency,
                             variables={"amount": abs(amount)}, now=now,
                             memo=f"{kind} of {day.isoformat()}" + (f", forced by {force_by}" if force_by else ""))
        conn.execute(insert(settlements).values(
            kind=kind, owner=owner, channel_account=channel_account, merchant_id=merchant_id, business_date=day,
            settle_date=settle_date, amount=amount, currency=currency, entry_key=f"{reference}:{event}" if amount else None,
            forced_by=force_by, created_at=now))
        report.booked.append({"kind": kind, "owner": owner, "business_date": day.isoformat(), "amount": amount,
                              "currency": currency})
        return True

