"""Splits proven against the channel's statement of splits (WeChat Pay's profit-sharing bill, Alipay's
account log of its order settles, the sandbox's): where the channel pays the receiver itself, a split
leaves our books only when the channel says it paid it. No HTTP, no SQL strings.

A run is one channel account's statement of splits for one day, kept as a `recon_runs` row of its own
(`channel_account` = "ACCOUNT:splits", so a run of the trade statement is never mistaken for it) and
its differences as `recon_items` of that run, resolved by a rule or by two people like any other
(gateway/reconciliation/review.py). Per line:

- a split we hold succeeded, the same amount: `matched`; `split.channel_paid` is booked once
  (receiver_in_transit -> channel clearing: the receiver is paid, the channel settles that much less)
  for what the receiver still holds of it, and the split records the day (`channel_paid_on`);
- a split still processing is asked about first (the lifecycle's sync), then classified;
- another amount: `amount_mismatch` (booked for our amount; the difference through suspense once two
  people approve); one we failed or never heard of: `status_mismatch` / `missing_local` (the channel
  paid it out of what it owes us: an adjustment books that through suspense); one confirmed on another
  day already: `duplicate`;
- a return (回退) must be one we hold succeeded, the same amount (booked when it succeeded);
- (a split no channel pays, `held_by` "paymux", is never on it: paymux settles it, gateway/split_settlement.py)
- a split of ours that succeeded that day and is not on the statement: `pending_carryover`, not a
  blocker (the money is still the receiver's in our books), resolved by rule when a later day lists it
  (aged into `missing_channel`, for a person, once the carry-over window passed, like any carry-over).

Settlement pays a channel day only once its statement of splits is reconciled, net of what it paid
receivers (less what it took back): gateway/reconciliation/settlement.py.
"""
from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Row, and_, func, insert, select, update

from gateway.channel import Capability, SplitLine, StatementInvalid, StatementUnavailable
from gateway.clock import Clock
from gateway.config import Settings
from gateway.db import Database
from gateway.ids import public_id
from gateway.models import ReconItem, Split, SplitReturn
from gateway.plugins import PluginHost
from gateway.reconciliation import store
from gateway.reconciliation.store import refresh_open, runs
from gateway.reports import RunReport, run_report
from gateway.split_kinds import SplitKind
from ledger.booking import Booker
from ledger.days import BusinessDay

splits = Split.__table__
returns = SplitReturn.__table__
items = ReconItem.__table__


def run_account(account_id: str) -> str:
    """The `recon_runs.channel_account` of an account's runs of its statement of splits."""
    return f"{account_id}:splits"


def succeeded_returns(conn: Connection, split_id: str) -> int:
    return int(conn.execute(select(func.coalesce(func.sum(returns.c.amount), 0)).where(and_(
        returns.c.split_id == split_id, returns.c.status == "succeeded"))).scalar_one())


class SplitReconciler:
    def __init__(self, settings: Settings, db: Database, host: PluginHost, booker: Booker, day: BusinessDay,
                 split_kind: SplitKind, clock: Clock) -> None:
        self.db, self.host, self.booker, self.day, self.split_kind, self.clock = db, host, booker, day, split_kind, clock
        self.dir = Path(settings.statement_dir)

    async def reconcile(self, account_id: str, business_date: date) -> RunReport:
        account = self.host.account(account_id)
        self.host.require(account, Capability.SPLIT_STATEMENT)
        currency = account.channel.statement_currency
        key = run_account(account_id)
        try:
            content = await account.channel.download_split_statement(business_date)
        except StatementUnavailable as exc:
            return await self.db.tx(lambda conn: self._failed(conn, key, business_date, "", "", currency,
                                                              f"statement of splits unavailable: {exc}"))
        # kept beside the account's statements, in a folder of its own (no ":" in a file name)
        sha, path = await asyncio.to_thread(store.keep_statement, self.dir, f"{account_id}.splits", business_date,
                                            content, None)
        existing = await self.db.tx(lambda conn: store.same_file_run(conn, key, business_date, sha))
        if existing is not None:   # the same file again: the same answer
            return run_report(existing)
        try:
            lines = account.channel.parse_split_statement(content)
        except StatementInvalid as exc:
            return await self.db.tx(lambda conn: self._failed(conn, key, business_date, sha, str(path), currency,
                                                              str(exc)))
        # Splits the statement names that are still open here: their end first, as the janitor would ask.
        open_rows = await self.db.tx(lambda conn: [r for r in (self._split_of(conn, account_id, line)
                                                               for line in lines if line.kind == "split")
                                                   if r is not None and r.status == "processing"])
        for row in open_rows:
            await self.split_kind.sync(row)
        return await self.db.tx(lambda conn: self._write(conn, account_id, business_date, sha, str(path), currency,
                                                         lines))

    # ---- the run, in one transaction ----

    def _failed(self, conn: Connection, key: str, day: date, sha: str, path: str, currency: str,
                message: str) -> RunReport:
        run_id = public_id("rcr")
        store.start_run(conn, run_id, key, day, sha, path, currency, self.clock.now())
        return run_report(store.fail_run(conn, run_id, message, self.clock.now()))

    def _write(self, conn: Connection, account_id: str, day: date, sha: str, path: str, currency: str,
               lines: list[SplitLine]) -> RunReport:
        now, key, run_id = self.clock.now(), run_account(account_id), public_id("rcr")
        earlier = [r.id for r in conn.execute(select(runs.c.id).where(and_(
            runs.c.channel_account == key, runs.c.business_date == day, runs.c.status == "completed")))]
        if earlier:   # a new file for the day supersedes the old run and what it left open
            conn.execute(update(runs).where(runs.c.id.in_(earlier)).values(status="superseded"))
            conn.execute(update(items).where(and_(items.c.run_id.in_(earlier), items.c.status == "open"))
                         .values(status="superseded"))
        store.start_run(conn, run_id, key, day, sha, path, currency, now)
        counts: dict[str, int] = {}
        listed: set[str] = set()

        def item(cls: str, kind: str, line: SplitLine | None, row: Row | None, channel_effect: int,
                 local_effect: int) -> None:
            counts[cls] = counts.get(cls, 0) + 1
            if cls == "matched":
                return
            conn.execute(insert(items).values(
                run_id=run_id, channel_account=account_id, business_date=day, kind=kind, **{"class": cls},
                reference=(line.reference if line else None) or (getattr(row, "out_split_no", None) or
                                                                 getattr(row, "out_return_no", None)) or
                (line.channel_id if line else ""),
                line_no=line.line_no if line else None, channel_transaction_id=line.channel_id if line else None,
                channel_status="succeeded" if line else None, local_status=row.status if row else None,
                channel_amount=line.amount if line else None, local_amount=row.amount if row else None,
                channel_effect=channel_effect, local_effect=local_effect,
                payment_id=row.payment_id if row else None, merchant_id=row.merchant_id if row else None,
                status="open", created_at=now))

        for line in lines:
            if line.kind == "split":
                s = self._split_of(conn, account_id, line)
                if s is not None:
                    listed.add(s.id)
                self._split_line(conn, item, line, s, day, now)
            else:
                r = conn.execute(select(returns).where(and_(returns.c.channel_account == account_id,
                                                            returns.c.out_return_no == line.reference))).first()
                if r is None:
                    item("missing_local", "return", line, None, line.amount, 0)
                elif r.status != "succeeded":
                    item("status_mismatch", "return", line, r, line.amount, 0)
                else:
                    item("matched" if r.amount == line.amount else "amount_mismatch", "return", line, r,
                         line.amount, r.amount)
        # Ours, succeeded that day, not (yet) on the channel's statement: carried over.
        start, end = self.day.start(day), self.day.start(day + timedelta(days=1))
        for s in conn.execute(select(splits).where(and_(
                splits.c.channel_account == account_id, splits.c.status == "succeeded", splits.c.held_by == "channel",
                splits.c.channel_paid_on.is_(None), splits.c.updated_at >= start, splits.c.updated_at < end))):
            if s.id not in listed:
                item("pending_carryover", "split", None, s, 0, 0)
        split_amount = sum(line.amount for line in lines if line.kind == "split")
        return_amount = sum(line.amount for line in lines if line.kind == "return")
        conn.execute(update(runs).where(runs.c.id == run_id).values(
            status="completed", statement_rows=len(lines), counts=counts, finished_at=now,
            summary={"split_amount": split_amount, "return_amount": return_amount,
                     "splits": sum(line.kind == "split" for line in lines),
                     "returns": sum(line.kind == "return" for line in lines)}))
        refresh_open(conn, [run_id])
        return run_report(store.run_row(conn, run_id))

    def _split_line(self, conn: Connection, item: Any, line: SplitLine, s: Row | None, day: date,
                    now: datetime) -> None:
        if s is None:
            item("missing_local", "split", line, None, -line.amount, 0)
        elif s.channel_paid_on == day:   # this day's statement again (a new file of it): booked already
            item("matched" if s.amount == line.amount else "amount_mismatch", "split", line, s, -line.amount,
                 -s.amount)
        elif s.channel_paid_on is not None:   # listed on another day already: paid twice, or listed twice
            item("duplicate", "split", line, s, -line.amount, 0)
        elif s.status != "succeeded":
            item("status_mismatch", "split", line, s, -line.amount, 0)
        else:
            self._confirm(conn, s, day, now)
            item("matched" if s.amount == line.amount else "amount_mismatch", "split", line, s, -line.amount,
                 -s.amount)

    def _confirm(self, conn: Connection, s: Row, day: date, now: datetime) -> None:
        """The channel paid the receiver: book it once (a conditional update claims the split) for what
        the receiver still holds of it here (returns that succeeded before gave the rest back), and
        resolve by rule the carry-over an earlier day left open for it."""
        paid = s.amount - succeeded_returns(conn, s.id)
        claimed = conn.execute(update(splits).where(and_(splits.c.id == s.id, splits.c.channel_paid_on.is_(None)))
                               .values(channel_paid_on=day, channel_paid_amount=paid, updated_at=now)).rowcount
        if not claimed:
            return
        if paid > 0:
            self.booker.book(conn, "split.channel_paid", f"split:{s.id}", merchant_id=s.merchant_id,
                             channel_account=s.channel_account, receiver_id=s.receiver_id, currency=s.currency,
                             variables={"amount": paid}, now=now, memo=f"paid by {s.channel_account} on {day}")
        # (a carry-over older than the carry window was aged to missing_channel by the trade reconciliation)
        carried = conn.execute(select(items.c.id, items.c.run_id).where(and_(
            items.c.reference == s.out_split_no, items.c.kind == "split",
            items.c["class"].in_(("pending_carryover", "missing_channel")), items.c.status == "open"))).all()
        for open_item in carried:
            store.resolve_by_rule(conn, open_item.id, "split_listed_later", f"listed on {day}", now)
        refresh_open(conn, sorted({c.run_id for c in carried}))

    @staticmethod
    def _split_of(conn: Connection, account_id: str, line: SplitLine) -> Row | None:
        where = splits.c.out_split_no == line.reference if line.reference else \
            splits.c.channel_split_id == line.channel_id
        return conn.execute(select(splits).where(and_(splits.c.channel_account == account_id, where))).first()


def split_reconciler(gateway: Any) -> SplitReconciler:
    """The split reconciler of a built Gateway (gateway/service.py)."""
    return SplitReconciler(gateway.settings, gateway.db, gateway.host, gateway.booker, gateway.ledger.day,
                           gateway.splits.split_kind, gateway.clock)


def reconciled_splits(conn: Connection, account_id: str, day: date) -> Row | None:
    """The completed run of the account's statement of splits for the day, if any."""
    return conn.execute(select(runs).where(and_(runs.c.channel_account == run_account(account_id),
                                                runs.c.business_date == day, runs.c.status == "completed"))
                        .order_by(runs.c.started_at.desc())).first()


def splits_in_play(conn: Connection, account_id: str, until: datetime) -> bool:
    """Could the channel have paid receivers for us by `until`: a split at the account made before then
    that its statement of splits has not confirmed, and no final failure ended? (The channel pays a
    receiver only when asked; with none in play, a day's channel settlement need not wait for a
    statement of splits.)"""
    return conn.execute(select(splits.c.id).where(and_(
        splits.c.channel_account == account_id, splits.c.created_at < until, splits.c.channel_paid_on.is_(None),
        splits.c.held_by == "channel", splits.c.status.in_(("processing", "succeeded")))).limit(1)).first() is not None
