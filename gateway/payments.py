"""Payments: routed, written before the channel hears of them (so no order is ever lost), created at
the channel with failover to the next planned account, asked about, closed, tried again another way.
No HTTP, no SQL strings. What a channel's word does to a payment is gateway/payment_results.py; a
payment's rows, as every service reads them, gateway/payment_rows.py; refunds, gateway/refunds.py.

Every state change is a conditional UPDATE (… WHERE status = 'processing'), so duplicate
callbacks, concurrent queries and reconciliation can race and the change still happens once.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, Awaitable

from sqlalchemy import Connection, Row, and_, func, select, update
from sqlalchemy.exc import IntegrityError

from gateway import idempotency
from gateway.auth import Caller
from gateway.channel import Capability, CreatePayment, Outcome, PaymentResult
from gateway.errors import channel_error, conflict, invalid_request, not_found
from gateway.ids import out_trade_no, public_id
from gateway.idempotency import IdempotencyClaim, StoredResponse
from gateway.models import Attempt, Payment
from gateway.operations import OperationCore
from gateway.payment_results import PaymentResults
from gateway.payment_rows import (INSERT_ATTEMPT, INSERT_PAYMENT, OPEN_ATTEMPT, current_attempt, load_payment,
                                  payment_facts, render_payment)
from gateway.plugins import ChannelAccount
from gateway.refunds import RefundService
from gateway.resources import attempt_object, payment_object
from gateway.risk import RiskGate, RiskRequest
from gateway.routing import DailyLimitReached, Plan, Router
from gateway.splits import SplitService
from ledger.booking import PaymentFacts

payments = Payment.__table__
attempts = Attempt.__table__

__all__ = ["OPEN_ATTEMPT", "NewPayment", "PaymentService", "payment_facts"]


@dataclass(frozen=True)
class NewPayment:
    merchant_order_no: str
    amount: int
    currency: str
    subject: str
    channel: str | None
    method: str | None
    notify_url: str | None
    expires_in: int | None
    metadata: dict[str, str]
    client_ip: str | None = None
    splits: tuple[Any, ...] = ()    # SplitSpec: passed on to receivers once the payment succeeds
    splittable: bool = False        # to be split (now or later): only accounts that can split take it


class PaymentService:
    def __init__(self, core: OperationCore, router: Router, results: PaymentResults, splits: SplitService,
                 refunds: RefundService, risk: RiskGate | None = None) -> None:
        self.db, self.host, self.clock, self.log = core.db, core.host, core.clock, core.log
        self.booker, self.calls, self.schedule = core.booker, core.calls, core.schedule
        self.router, self.results, self.splits, self.refunds, self.risk = router, results, splits, refunds, risk
        self.health = router.health

    # ---- payments ----

    async def create_payment(self, caller: Caller, new: NewPayment, claim: IdempotencyClaim | None) -> StoredResponse:
        """Write the payment and its attempt before the channel hears of it, so no order is ever lost.

        For a method the channel creates locally (a signed link, no call out), create() runs first
        and everything is written in one transaction: nothing exists outside until it commits.
        A create that fails retryably before any action was handed out fails over to the next
        account the router planned, as a new attempt (see _fail_over).
        """
        merchant_id = caller.merchant_id

        def verified_retry(conn: Connection) -> bool:
            # The signature first: nobody unauthenticated reaches routing, risk, metrics or a channel.
            caller.verify(conn)
            return claim is not None and idempotency.find(conn, claim) is not None

        if await self.db.tx(verified_retry):
            # A retry of a request already made: answer as it was answered, without judging it again.
            return await idempotency.resolve_existing(self.db.tx, claim, self.clock.now, self._recover)
        plan = await self.router.plan(self.db.tx, self.clock.now(), merchant_id, new.amount, new.currency,
                                      new.method, new.channel)
        split_room = self._split_room(plan, merchant_id, new) if new.splittable else 0
        account, method = plan.routes[0].account, plan.routes[0].method
        payment_id = public_id("pay")
        local = method in account.channel.local_create_methods
        if self.risk is not None:
            await self.risk.check(RiskRequest(
                merchant_id, new.amount, new.currency, method, account.id, new.client_ip, new.metadata,
                self.risk.config, self.clock.now(), history=lambda key, value, since: self._history(
                    merchant_id, key, value, since)))

        async def run() -> StoredResponse:
            nonlocal account, method, local
            now = self.clock.now()
            expires_at = now + timedelta(seconds=new.expires_in) if new.expires_in else None
            attempt_id, trade_no = public_id("att"), out_trade_no()
            request = CreatePayment(trade_no, new.amount, new.currency, new.subject, method, expires_at, new.metadata,
                                    split=new.splittable)
            early = await self._create_call(account, request, local=True) if local else None
            deferred = None
            if early is not None and self._fails_over(early) and len(plan.routes) > 1:
                deferred, early = early, None   # write the attempt as created; the failover loop takes it on
            payment_row = dict(
                id=payment_id, merchant_id=merchant_id, merchant_order_no=new.merchant_order_no,
                amount=new.amount, currency=new.currency, subject=new.subject, channel_account=account.id,
                method=method, status="processing", refunded_amount=0, refund_pending_amount=0,
                notify_url=new.notify_url, metadata=new.metadata, channel_transaction_id=None, fee_amount=None,
                discount_amount=0, discounts=None,
                split_amount=0, splittable=new.splittable, frozen_amount=0,
                failure_code=None,
                failure_message=None, expires_at=expires_at, paid_at=None, created_at=now, updated_at=now)
            pending = early is not None and early.outcome is Outcome.PENDING
            attempt_row = self._attempt_row(attempt_id, payment_id, new.amount, trade_no, account.id, method, now,
                                            plan.record(0), status="pending" if pending else "created",
                                            action=dict(early.action) if pending and early.action else None)

            def tx1(conn: Connection) -> StoredResponse | None:
                caller.verify(conn)
                if claim:
                    idempotency.claim(conn, claim, payment_id, now)
                self.router.hold_daily_room(conn, account, new.amount, now)
                try:
                    conn.execute(INSERT_PAYMENT, payment_row)
                except IntegrityError:
                    raise conflict("duplicate_order", f"merchant_order_no {new.merchant_order_no!r} already has a payment",
                                   "merchant_order_no") from None
                conn.execute(INSERT_ATTEMPT, attempt_row)
                if new.splits:
                    self.splits.schedule(conn, merchant_id, payment_id, new.merchant_order_no, new.currency,
                                         split_room, new.splits, account.id, now)
                if early is None:
                    return None
                if pending:  # what was just written is the whole truth: render it without reading back
                    obj = payment_object(SimpleNamespace(**payment_row, attempt_action=attempt_row["action"],
                                                         attempt_out_trade_no=trade_no))
                else:
                    self.results.apply(conn, attempt_id, early, source="create")
                    obj = render_payment(conn, payment_id)
                return idempotency.respond(conn, claim, obj, self.clock.now())

            try:
                response = await self.db.tx(tx1)
            except DailyLimitReached as full:   # others took its last room since the plan: the next account
                route = self.router.after_refusal(plan, full, new.channel, new.method, new.currency)
                account, method = route.account, route.method
                local = method in account.channel.local_create_methods
                return await run()
            self.log.info("payment.created", payment_id=payment_id, merchant_id=merchant_id,
                          channel_account=account.id, amount=new.amount, currency=new.currency)
            if response is not None:
                return response
            result = deferred or await self._create_call(account, request)
            last_attempt, result = await self._fail_over(plan, payment_id, attempt_id, request, result)

            def tx2(conn: Connection) -> StoredResponse:
                self.results.apply(conn, last_attempt, result, source="create")
                return idempotency.respond(conn, claim, render_payment(conn, payment_id), self.clock.now())

            return await self.db.tx(tx2)

        return await idempotency.run_once(self.db.tx, claim, self.clock.now, run, self._recover)

    @staticmethod
    def _only_splitting(plan: Plan) -> None:
        """A payment to be split goes only to accounts that can split it."""
        plan.routes[:] = [r for r in plan.routes if r.account.supports(Capability.SPLIT)]
        if not plan.routes:
            raise invalid_request("split_not_supported", "No channel account that could take this payment can "
                                  "split it among receivers", "splits")

    def _split_room(self, plan: Plan, merchant_id: str, new: NewPayment) -> int:
        """Keep only accounts that can split; the most the splits may take is the amount less the
        largest fee any of them would charge, and no more than the smallest share of it any of their
        channels lets be split."""
        self._only_splitting(plan)
        rooms = []
        for route in plan.routes:
            room = new.amount - self.booker.merchant_fee(PaymentFacts("", merchant_id, route.account.id, new.amount,
                                                                      new.currency, route.method))
            cap = route.account.channel.split_limits().max_share_bps
            rooms.append(room if cap is None else min(room, new.amount * cap // 10000))
        return min(rooms)

    def _attempt_row(self, attempt_id: str, payment_id: str, amount: int, trade_no: str, account_id: str, method: str,
                     now: datetime, routing: dict | None, status: str = "created", action: dict | None = None) -> dict[str, Any]:
        return dict(id=attempt_id, payment_id=payment_id, amount=amount, out_trade_no=trade_no, channel_account=account_id,
                    method=method, status=status, action=action, channel_transaction_id=None, error_code=None,
                    error_message=None, next_query_at=now + self.schedule.first(account_id), queries=0, exception_at=None,
                    routing=routing, created_at=now, updated_at=now)

    def _create_call(self, account: ChannelAccount, request: CreatePayment,
                     local: bool = False) -> Awaitable[PaymentResult]:
        self.health.begin(account.id)
        return self.calls.payment(account, "create", lambda: account.channel.create(request), request.out_trade_no,
                                  local)

    @staticmethod
    def _fails_over(result: PaymentResult) -> bool:
        """Nobody can pay an attempt whose create gave no action: another account may take the payment."""
        return result.action is None and (result.outcome is Outcome.UNKNOWN or
                                          (result.outcome is Outcome.FAILED and result.retryable))

    async def _fail_over(self, plan: Plan, payment_id: str, attempt_id: str, request: CreatePayment,
                         result: PaymentResult) -> tuple[str, PaymentResult]:
        """Try the planned accounts in turn while a create fails retryably. The attempt left behind
        keeps its answer (an UNKNOWN one is still queried, and closed, by the janitor; if it was paid
        after all, the second payment is refunded like any duplicate). Returns the last attempt and
        its result."""
        from_account = plan.routes[0].account.id
        for index in range(1, len(plan.routes)):
            if not self._fails_over(result):
                break
            route = plan.routes[index]
            now = self.clock.now()
            previous, failed = attempt_id, result
            attempt_id, trade_no = public_id("att"), out_trade_no()
            origin = {"attempt": previous, "channel_account": from_account,
                      "outcome": failed.outcome.value, "error_code": failed.error_code}

            def switch(conn: Connection) -> bool:
                self.router.hold_daily_room(conn, route.account, request.amount, now)
                self.results.apply(conn, previous, failed, source="create", attempt_only=True)
                moved = conn.execute(update(payments).where(and_(payments.c.id == payment_id,
                                                                 payments.c.status == "processing"))
                                     .values(channel_account=route.account.id, method=route.method,
                                             updated_at=now)).rowcount
                if moved:
                    conn.execute(INSERT_ATTEMPT, self._attempt_row(attempt_id, payment_id, request.amount, trade_no,
                                                                   route.account.id, route.method, now,
                                                                   plan.record(index, origin)))
                return bool(moved)

            try:
                switched = await self.db.tx(switch)
            except DailyLimitReached:   # it took the last of its day since the plan: the account after it
                attempt_id = previous
                continue
            if not switched:
                return previous, failed   # no longer processing: nothing more to try
            from_account = route.account.id
            self.log.warning("payment.failover", payment_id=payment_id, from_attempt=previous,
                             from_account=origin["channel_account"], to_account=route.account.id,
                             error_code=failed.error_code)
            request = CreatePayment(trade_no, request.amount, request.currency, request.subject, route.method,
                                    request.expires_at, request.metadata, split=request.split)
            result = await self._create_call(route.account, request)
        return attempt_id, result

    def _history(self, merchant_id: str, key: str, value: str, since: datetime) -> tuple[int, int]:
        """For risk rules: (count, amount) of a merchant's payments since `since`, all or one payer's."""
        query = select(func.count(), func.coalesce(func.sum(payments.c.amount), 0)).where(
            payments.c.merchant_id == merchant_id, payments.c.created_at >= since)
        if key != "merchant":
            query = query.where(payments.c.metadata[key].as_string() == value)
        with self.db.transaction() as conn:
            count, amount = conn.execute(query).one()
        return int(count), int(amount)

    async def _recover(self, payment_id: str) -> StoredResponse:
        return idempotency.stored(201, await self.db.tx(lambda conn: render_payment(conn, payment_id)))

    async def get_payment(self, caller: Caller, payment_id: str, sync: bool = False) -> dict:
        def load(conn: Connection) -> tuple[Row, dict]:
            caller.verify(conn)
            p = load_payment(conn, caller.merchant_id, payment_id)
            return p, render_payment(conn, payment_id)

        p, rendered = await self.db.tx(load)
        if not (sync and p.status == "processing"):
            return rendered
        await self.sync_payment(p)
        return await self.db.tx(lambda conn: render_payment(conn, payment_id))

    async def find_payment(self, caller: Caller, merchant_order_no: str, sync: bool = False) -> dict:
        def lookup(conn: Connection) -> str:
            caller.verify(conn)
            row = conn.execute(select(payments.c.id).where(and_(payments.c.merchant_id == caller.merchant_id,
                                                                payments.c.merchant_order_no == merchant_order_no))).first()
            if row is None:
                raise not_found("payment with merchant_order_no", merchant_order_no)
            return row.id

        return await self.get_payment(caller, await self.db.tx(lookup), sync)

    async def list_attempts(self, caller: Caller, payment_id: str) -> list[dict]:
        def load(conn: Connection) -> list[dict]:
            caller.verify(conn)
            load_payment(conn, caller.merchant_id, payment_id)
            return [attempt_object(a) for a in conn.execute(
                select(attempts).where(attempts.c.payment_id == payment_id)
                .order_by(attempts.c.created_at, attempts.c.id))]

        return await self.db.tx(load)

    async def sync_payment(self, p: Row, source: str = "query", attempt: Row | None = None) -> None:
        """Ask the channel about an attempt (the current one by default) and apply what it says."""
        if attempt is None:
            attempt = await self.db.tx(lambda conn: current_attempt(conn, p.id))
        account = self.host.account(attempt.channel_account)
        if not account.supports(Capability.QUERY):
            return
        result = await self.calls.payment(account, "query", lambda: account.channel.query(attempt.out_trade_no),
                                          attempt.out_trade_no)
        if result.outcome is Outcome.SUCCEEDED and not self.results.believable(p, result, source):
            return
        await self.db.tx(lambda conn: self.results.apply(conn, attempt.id, result, source=source))

    async def _load_for(self, caller: Caller, payment_id: str) -> Row:
        def load(conn: Connection) -> Row:
            caller.verify(conn)
            return load_payment(conn, caller.merchant_id, payment_id)

        return await self.db.tx(load)

    async def close_payment(self, caller: Caller, payment_id: str) -> dict:
        p = await self._load_for(caller, payment_id)
        if p.status == "closed":
            return await self.db.tx(lambda conn: render_payment(conn, payment_id))
        if p.status != "processing":
            raise conflict("payment_not_closable", f"A {p.status} payment cannot be closed")
        self.host.require(self.host.account(p.channel_account), Capability.CLOSE)
        if not await self.close_at_channel(p, source="close"):
            raise channel_error("close_unconfirmed",
                                "The channel did not confirm the close; the payment stays processing. Retry later.")
        return await self.db.tx(lambda conn: render_payment(conn, payment_id))

    async def close_at_channel(self, p: Row, source: str, attempt_only: bool = False, attempt: Row | None = None) -> bool:
        """Close an attempt (the current one by default) at the channel and apply what it says (closed,
        or paid after all). False if the channel gave no final answer."""
        if attempt is None:
            attempt = await self.db.tx(lambda conn: current_attempt(conn, p.id))
        account = self.host.account(attempt.channel_account)
        result = await self.calls.payment(account, "close", lambda: account.channel.close(attempt.out_trade_no),
                                          attempt.out_trade_no)
        if result.outcome in (Outcome.UNKNOWN, Outcome.PENDING):
            return False
        if result.outcome is Outcome.SUCCEEDED and not self.results.believable(p, result, source):
            return False
        await self.db.tx(lambda conn: self.results.apply(conn, attempt.id, result, source=source,
                                                                 attempt_only=attempt_only))
        return True

    async def new_attempt(self, caller: Caller, payment_id: str, method: str | None, channel: str | None) -> dict:
        """The customer wants another way to pay the same order: retire the attempt in flight at its
        channel first (two live attempts are how one order gets paid twice), then start a new one."""
        p = await self._load_for(caller, payment_id)
        if p.status != "processing":
            raise conflict("payment_not_processing", f"A {p.status} payment takes no new attempt")
        plan = await self.router.plan(self.db.tx, self.clock.now(), p.merchant_id, p.amount, p.currency, method,
                                      channel)
        if p.splittable:
            self._only_splitting(plan)
        account, method = plan.routes[0].account, plan.routes[0].method
        current = await self.db.tx(lambda conn: current_attempt(conn, p.id))
        if current.status in OPEN_ATTEMPT:
            if not self.host.account(p.channel_account).supports(Capability.CLOSE) or \
                    not await self.close_at_channel(p, source="new_attempt", attempt_only=True):
                raise conflict("payment_in_progress", "The attempt in flight could not be closed at its channel; "
                                                      "the payment may still be paid there. Query it and retry.")
        now = self.clock.now()
        attempt_id, trade_no = public_id("att"), out_trade_no()

        def start(conn: Connection) -> bool:
            self.router.hold_daily_room(conn, account, p.amount, now)
            moved = conn.execute(update(payments).where(and_(payments.c.id == p.id, payments.c.status == "processing"))
                                 .values(channel_account=account.id, method=method, updated_at=now)).rowcount
            if moved:  # still processing: the close did not reveal a payment
                conn.execute(INSERT_ATTEMPT, self._attempt_row(attempt_id, p.id, p.amount, trade_no, account.id, method,
                                                               now, {**plan.record(0), "replaces": current.id}))
            return bool(moved)

        if await self.db.tx(start):
            request = CreatePayment(trade_no, p.amount, p.currency, p.subject, method, p.expires_at, p.metadata or {},
                                    split=p.splittable)
            result = await self._create_call(account, request)
            await self.db.tx(lambda conn: self.results.apply(conn, attempt_id, result, source="create"))
            self.log.info("payment.attempt_started", payment_id=p.id, attempt_id=attempt_id, channel_account=account.id)
        return await self.db.tx(lambda conn: render_payment(conn, p.id))
