"""The end of a payment's splitting: what a channel holds frozen of a payment made to be split is
released to the merchant (WeChat Pay unfreeze, Alipay royalty_finish), once. No HTTP, no SQL strings.

A release (`split_releases`) is asked for by the merchant (POST /v1/payments/{id}/splits/finish) or
made when the splits declared with the payment exist; it waits while any split or return of the
payment is in flight, and until the channel takes split orders of it; then one finish call, asked
about and sent again under its one number like a split, and `split.released` booked for what is left.

The channel lets go of a frozen payment itself once its freeze runs out (WeChat Pay and Alipay: 30 days,
SplitLimits.frozen_days). So the janitor (`SplitReleaseKind.watch`) asks for the release of every payment
still frozen `release_days` after it was paid — the account's `split_release_days`, by default the
channel's freeze less SAFETY_MARGIN_DAYS — as if the merchant had finished it: one release per payment
(payments.id is unique in split_releases), however often the janitor comes by. A release sent after the
channel let go by itself is confirmed by what the channel says the payment still holds (nothing).
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, Awaitable

from sqlalchemy import Connection, Row, and_, exists, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.auth import Caller
from gateway.channel import Capability, Channel, Outcome, SplitFinish, SplitResult
from gateway.db import owned_row
from gateway.errors import conflict
from gateway.ids import out_trade_no, public_id
from gateway.models import Payment, Split, SplitRelease, SplitReturn
from gateway.notifier import record_event
from gateway.operations import OperationCore, ResentOperation, Services
from gateway.payment_rows import paid_trade_no, payment, payment_facts
from gateway.plugins import ChannelAccount, PluginHost
from gateway.resources import iso

payments = Payment.__table__
releases = SplitRelease.__table__
splits = Split.__table__
returns = SplitReturn.__table__


# Released this many days before the channel's own freeze runs out: a janitor down for a day, a query
# schedule's waits and the channel's day-cut must not make the channel's release come first.
SAFETY_MARGIN_DAYS = 2
WATCH_BATCH = 100


def release_days(account: ChannelAccount) -> int | None:
    """How long after its payment a payment frozen at the account is released whatever its splits: the
    account's split_release_days, else the channel's freeze less the margin (None: it freezes nothing,
    or never lets go itself)."""
    if not account.supports(Capability.SPLIT_FINISH):
        return None
    if account.config.split_release_days is not None:
        return account.config.split_release_days
    frozen = account.channel.split_limits().frozen_days
    return None if frozen is None else max(0, frozen - SAFETY_MARGIN_DAYS)


def aware(at: datetime) -> datetime:
    """A stored timestamp as aware UTC (SQLite gives them back naive)."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def in_flight(conn: Connection, payment_id: str) -> bool:
    """A split or return of the payment is still scheduled or processing."""
    return conn.execute(select(splits.c.id).where(and_(splits.c.payment_id == payment_id, splits.c.status.in_(
        ("scheduled", "processing")))).limit(1)).first() is not None or conn.execute(
        select(returns.c.id).where(and_(returns.c.payment_id == payment_id,
                                        returns.c.status == "processing")).limit(1)).first() is not None


def release_if_done(conn: Connection, payment_id: str, now: datetime) -> None:
    """A split or return ended: a release waiting for the payment's splits is due once none is left."""
    if not in_flight(conn, payment_id):   # (its time, if later, stays: the janitor sends it then)
        conn.execute(update(releases).where(and_(releases.c.payment_id == payment_id,
                                                 releases.c.status == "waiting"))
                     .values(status="processing", updated_at=now))


class SplitReleaseKind(ResentOperation[SplitFinish]):
    """The release as an operation kind: the channel's finish call, asked about and resent like a split."""

    name = "split_release"
    table = releases
    reference = "out_release_no"
    templates = ("split.frozen", "split.released")
    # a release the channel refused leaves the money frozen in the books: a person must look
    stuck_statuses = ("processing", "failed")
    send_operation, query_operation = "finish_split", "query_split_finish"
    what, log_prefix = "release", "split"
    channel_id_column = "channel_release_id"
    resend_event = "split.release_resend"

    @classmethod
    def make(cls, services: Services) -> SplitReleaseKind:
        return services.splits.releases.kind

    async def watch(self) -> int:
        """The janitor's turn for payments whose window ran out: each still frozen `release_days` after
        it was paid, with no release yet, gets one (due now, or waiting for a split in flight); the
        janitor's next pass sends it. Returns how many were made."""
        now, made = self.clock.now(), 0
        for account in self.host.accounts.values():
            days = release_days(account)
            if days is None:
                continue
            due = await self.db.tx(lambda conn, a=account, d=days: conn.execute(select(payments).where(and_(
                payments.c.channel_account == a.id, payments.c.frozen_amount > 0,
                payments.c.paid_at <= now - timedelta(days=d),
                ~exists().where(releases.c.payment_id == payments.c.id)))
                .order_by(payments.c.paid_at).limit(WATCH_BATCH)).all())
            for pay in due:
                try:
                    row = await self.db.tx(lambda conn, p=pay, a=account: SplitReleases.ask(
                        conn, self.host, p, a.id, now))
                except IntegrityError:   # the merchant (or another janitor) asked at the same moment
                    continue
                made += 1
                self.log.info("split.release_window_ended", payment_id=pay.id, release_id=row.id,
                              status=row.status, frozen=pay.frozen_amount, days=days)
        return made

    def request(self, conn: Connection, r: Row) -> SplitFinish:
        pay = payment(conn, r.payment_id)
        return SplitFinish(r.out_release_no, paid_trade_no(conn, r.payment_id), pay.channel_transaction_id,
                           pay.frozen_amount, r.currency, "splitting finished")

    def send(self, channel: Channel, request: SplitFinish) -> Awaitable[SplitResult]:
        return channel.finish_split(request)

    def query(self, channel: Channel, request: SplitFinish) -> Awaitable[SplitResult]:
        return channel.query_split_finish(request)

    async def submit(self, row: Row, request: SplitFinish | None = None) -> bool:
        if request is None:
            request = await self.db.tx(lambda conn: self.request(conn, row))
        if request.amount <= 0:   # splits and refunds took all of it: nothing is left frozen to release
            return await self.db.tx(lambda conn: self.apply(conn, row.id, SplitResult(Outcome.SUCCEEDED),
                                                            "nothing_left", sent=True))
        return await super().submit(row, request)

    def end_values(self, conn: Connection, row_id: str, result: SplitResult) -> dict[str, object]:
        if result.outcome is not Outcome.SUCCEEDED:
            return {}
        pay_id = conn.execute(select(releases.c.payment_id).where(releases.c.id == row_id)).scalar_one()
        return {"amount": payment(conn, pay_id).frozen_amount}   # what is released: all that is left

    def ended(self, conn: Connection, r: Row, result: SplitResult, source: str, now: datetime) -> None:
        """The channel released what it held frozen: book it back to in-transit (split.released). A refusal
        leaves it frozen in the books and shows it to operators."""
        pay = payment(conn, r.payment_id)
        if result.outcome is Outcome.SUCCEEDED:
            self.booker.split_released(conn, payment_facts(pay), r.id, r.amount, now)
            conn.execute(update(payments).where(payments.c.id == pay.id).values(frozen_amount=0, updated_at=now))
        else:
            conn.execute(update(releases).where(releases.c.id == r.id).values(exception_at=now))
        record_event(conn, r.merchant_id, f"split_release.{result.outcome.value}", r.id, release_object(r),
                     pay.notify_url, now)
        self.log.info("split.release_state_changed", release_id=r.id, payment_id=pay.id, to_status=r.status,
                      amount=r.amount, source=source)

    def log_fields(self, row: Row) -> dict[str, Any]:
        return {"release_id": row.id, "out_release_no": row.out_release_no}

    def render(self, row: Row) -> dict[str, Any]:
        return release_object(row)


class SplitReleases:
    """Asking for a payment's release, and making it due once its splits have ended."""

    def __init__(self, core: OperationCore) -> None:
        self.db, self.host, self.clock, self.schedule = core.db, core.host, core.clock, core.schedule
        self.kind = SplitReleaseKind(core)

    async def finish(self, caller: Caller, payment_id: str) -> tuple[int, dict]:
        """The merchant will split this payment no more: once no split or return of it is in flight, the
        channel releases what it still holds frozen of it. Asking again answers the same release."""
        def tx(conn: Connection) -> tuple[bool, Row | SimpleNamespace, bool]:
            caller.verify(conn)
            pay = owned_row(conn, payments, caller.merchant_id, "payment", payment_id)
            existing = conn.execute(select(releases).where(releases.c.payment_id == payment_id)).first()
            if existing is not None:
                return False, existing, False
            if not self.host.account(pay.channel_account).supports(Capability.SPLIT_FINISH) or pay.status != \
                    "succeeded" or not pay.splittable:
                raise conflict("nothing_frozen", "The channel holds nothing of this payment frozen for splitting")
            now = self.clock.now()
            row = self.ask(conn, self.host, pay, pay.channel_account, now)
            # Due now: this request sends it, and the janitor's sweep leaves it until its first query is
            # due (left due, the sweep could send it at the same moment, and two answers race).
            send_now = row.status == "processing" and aware(row.next_query_at) <= now
            if send_now:
                conn.execute(update(releases).where(releases.c.id == row.id).values(
                    next_query_at=now + self.schedule.first(row.channel_account)))
            return True, row, send_now

        try:
            made, row, send_now = await self.db.tx(tx)
        except IntegrityError:   # asked twice at once: the other one made it
            made, row, send_now = await self.db.tx(tx)
        if made and send_now:
            await self.kind.submit(row)
        return (201 if made else 200), await self.db.tx(lambda conn: release_object(
            conn.execute(select(releases).where(releases.c.id == row.id)).first()))

    @staticmethod
    def ask(conn: Connection, host: PluginHost, pay: Row, channel_account: str, now: datetime) -> Row | SimpleNamespace:
        """Write the payment's release: waiting while a split or return is in flight, else due as soon as
        the channel takes split orders of the payment."""
        existing = conn.execute(select(releases).where(releases.c.payment_id == pay.id)).first()
        if existing is not None:
            return existing
        limits = host.account(channel_account).channel.split_limits()   # a finish is a split order too
        due = max(now, aware(pay.paid_at) + timedelta(seconds=limits.not_before_seconds)) if pay.paid_at else now
        row = dict(id=public_id("srl"), payment_id=pay.id, merchant_id=pay.merchant_id, amount=0,
                   currency=pay.currency, channel_account=channel_account, out_release_no=out_trade_no(),
                   status="waiting" if in_flight(conn, pay.id) else "processing", submitted=False,
                   next_query_at=due, queries=0, created_at=now, updated_at=now)
        conn.execute(insert(releases).values(row))
        return SimpleNamespace(**row)


def release_object(r: Row | SimpleNamespace) -> dict[str, Any]:
    """A payment's split release: what the channel let go of, to the merchant, when its splitting ended."""
    return {"id": r.id, "object": "split_release", "payment_id": r.payment_id, "status": r.status,
            "amount": r.amount, "currency": r.currency, "channel": r.channel_account,
            "out_release_no": r.out_release_no, "channel_release_id": r.channel_release_id,
            "failure": {"code": r.failure_code, "message": r.failure_message} if r.failure_code else None,
            "created_at": iso(r.created_at), "updated_at": iso(r.updated_at)}
