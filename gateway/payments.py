"""Payment and refund state machines and their orchestration. No HTTP, no SQL strings.

Every state change is a conditional UPDATE (… WHERE status = 'processing'), so duplicate
callbacks, concurrent queries and reconciliation can race and the change still happens once.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace
from datetime import timedelta
from typing import Any, Awaitable, Callable

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, true, update
from sqlalchemy.exc import IntegrityError

from gateway import discounts, idempotency
from gateway.auth import Caller
from gateway.channel import (Capability, ChannelEvent, CreatePayment, Outcome, PaymentResult, RefundRequest,
                             RefundResult)
from gateway.db import owned_row
from gateway.errors import channel_error, conflict, invalid_request, not_found
from gateway.ids import out_trade_no, public_id
from gateway.idempotency import IdempotencyClaim, StoredResponse
from gateway.models import Attempt, Payment, Refund
from gateway.notifier import record_event
from gateway.plugins import ChannelAccount
from gateway.resources import attempt_object, payment_object, refund_object
from gateway.risk import RiskGate, RiskRequest
from gateway.health import HealthBoard
from gateway.routing import Plan, Router
from gateway.operations import OperationCore
from ledger.booking import PaymentFacts
from ledger.errors import InsufficientBalance

payments = Payment.__table__
attempts = Attempt.__table__
refunds = Refund.__table__

OPEN_ATTEMPT = ("created", "pending", "unknown")

# Hot-path statements are built once with bind parameters: building a Core statement on every
# call cost more than executing it (measured with bench/api_create.py).
INSERT_PAYMENT = insert(payments)
INSERT_ATTEMPT = insert(attempts)
MOVE_ATTEMPT = update(attempts).where(attempts.c.id == bindparam("b_attempt_id"),
                                      attempts.c.status.in_(bindparam("b_from", expanding=True)))
MOVE_PAYMENT = update(payments).where(payments.c.id == bindparam("b_payment_id"),
                                      payments.c.status.in_(bindparam("b_from", expanding=True)))
_LATEST_ATTEMPT = (select(attempts.c.action, attempts.c.out_trade_no)
                   .where(attempts.c.payment_id == bindparam("b_payment_id"))
                   .order_by(attempts.c.created_at.desc(), attempts.c.id.desc()).limit(1).subquery())
RENDER_PAYMENT = (select(payments, _LATEST_ATTEMPT.c.action.label("attempt_action"),
                         _LATEST_ATTEMPT.c.out_trade_no.label("attempt_out_trade_no"))
                  .select_from(payments.outerjoin(_LATEST_ATTEMPT, true()))
                  .where(payments.c.id == bindparam("b_payment_id")))


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


@dataclass(frozen=True)
class NewRefund:
    merchant_refund_no: str
    amount: int
    reason: str | None


def _json(status: int, obj: dict) -> StoredResponse:
    return StoredResponse(status, json.dumps(obj, separators=(",", ":")).encode())


def payment_facts(p: Any) -> PaymentFacts:
    return PaymentFacts(p.id, p.merchant_id, p.channel_account, p.amount, p.currency)


class PaymentService:
    def __init__(self, core: OperationCore, router: Router, risk: RiskGate | None = None) -> None:
        self.risk = risk
        self.router = router
        self.db, self.host, self.clock, self.log = core.db, core.host, core.clock, core.log
        self.booker, self.calls, self.schedule = core.booker, core.calls, core.schedule
        self.exchanges = core.calls.exchanges
        self.health: HealthBoard = router.health
        self.splits: Any = None   # gateway.splits.SplitService, once the gateway is wired

    def _call(self, account: ChannelAccount, operation: str, fn: Callable[[], Awaitable[Any]],
              unknown: Callable[[str, str], Any], local: bool = False, reference: str | None = None) -> Any:
        return self.calls.call(account, operation, fn, unknown, local, reference)

    def _payment_call(self, account, operation, fn, reference, local=False):  # noqa: ANN001, ANN202
        return self.calls.payment(account, operation, fn, reference, local)

    def _refund_call(self, account, operation, fn, reference):  # noqa: ANN001, ANN202
        return self.calls.refund(account, operation, fn, reference)

    # ---- idempotent POSTs ----

    async def _idempotent(self, claim: IdempotencyClaim | None, run: Callable[[], Awaitable[StoredResponse]],
                          recover: Callable[[str], Awaitable[StoredResponse]]) -> StoredResponse:
        if claim is None:
            return await run()
        try:
            response = await run()
        except idempotency.KeyAlreadyClaimed:
            return await idempotency.resolve_existing(self.db.tx, claim, self.clock.now, recover)
        return response

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
            return await idempotency.resolve_existing(self.db.tx, claim, self.clock.now, self._recover_payment)
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
                    self._apply_payment_result(conn, attempt_id, early, source="create")
                    obj = self._render_payment(conn, payment_id)
                return self._respond(conn, claim, obj)

            response = await self.db.tx(tx1)
            self.log.info("payment.created", payment_id=payment_id, merchant_id=merchant_id,
                          channel_account=account.id, amount=new.amount, currency=new.currency)
            if response is not None:
                return response
            result = deferred or await self._create_call(account, request)
            last_attempt, result = await self._fail_over(plan, payment_id, attempt_id, request, result)

            def tx2(conn: Connection) -> StoredResponse:
                self._apply_payment_result(conn, last_attempt, result, source="create")
                return self._respond(conn, claim, self._render_payment(conn, payment_id))

            return await self.db.tx(tx2)

        return await self._idempotent(claim, run, self._recover_payment)

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
                                                                      new.currency))
            cap = route.account.channel.split_limits().max_share_bps
            rooms.append(room if cap is None else min(room, new.amount * cap // 10000))
        return min(rooms)

    def _attempt_row(self, attempt_id: str, payment_id: str, amount: int, trade_no: str, account_id: str, method: str,
                     now: Any, routing: dict | None, status: str = "created", action: dict | None = None) -> dict[str, Any]:
        return dict(id=attempt_id, payment_id=payment_id, amount=amount, out_trade_no=trade_no, channel_account=account_id,
                    method=method, status=status, action=action, channel_transaction_id=None, error_code=None,
                    error_message=None, next_query_at=now + self.schedule.first(account_id), queries=0, exception_at=None,
                    routing=routing, created_at=now, updated_at=now)

    def _create_call(self, account: ChannelAccount, request: CreatePayment,
                     local: bool = False) -> Awaitable[PaymentResult]:
        self.health.begin(account.id)
        return self._payment_call(account, "create", lambda: account.channel.create(request), request.out_trade_no,
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
        for index in range(1, len(plan.routes)):
            if not self._fails_over(result):
                break
            route = plan.routes[index]
            now = self.clock.now()
            previous, failed = attempt_id, result
            attempt_id, trade_no = public_id("att"), out_trade_no()
            origin = {"attempt": previous, "channel_account": plan.routes[index - 1].account.id,
                      "outcome": failed.outcome.value, "error_code": failed.error_code}

            def switch(conn: Connection) -> bool:
                self._apply_payment_result(conn, previous, failed, source="create", attempt_only=True)
                moved = conn.execute(update(payments).where(and_(payments.c.id == payment_id,
                                                                 payments.c.status == "processing"))
                                     .values(channel_account=route.account.id, method=route.method,
                                             updated_at=now)).rowcount
                if moved:
                    conn.execute(INSERT_ATTEMPT, self._attempt_row(attempt_id, payment_id, request.amount, trade_no,
                                                                   route.account.id, route.method, now,
                                                                   plan.record(index, origin)))
                return bool(moved)

            if not await self.db.tx(switch):
                return previous, failed   # no longer processing: nothing more to try
            self.log.warning("payment.failover", payment_id=payment_id, from_attempt=previous,
                             from_account=origin["channel_account"], to_account=route.account.id,
                             error_code=failed.error_code)
            request = CreatePayment(trade_no, request.amount, request.currency, request.subject, route.method,
                                    request.expires_at, request.metadata, split=request.split)
            result = await self._create_call(route.account, request)
        return attempt_id, result

    def _history(self, merchant_id: str, key: str, value: str, since: Any) -> tuple[int, int]:
        """For risk rules: (count, amount) of a merchant's payments since `since`, all or one payer's."""
        query = select(func.count(), func.coalesce(func.sum(payments.c.amount), 0)).where(
            payments.c.merchant_id == merchant_id, payments.c.created_at >= since)
        if key != "merchant":
            query = query.where(payments.c.metadata[key].as_string() == value)
        with self.db.transaction() as conn:
            count, amount = conn.execute(query).one()
        return int(count), int(amount)

    def _respond(self, conn: Connection, claim: IdempotencyClaim | None, obj: dict) -> StoredResponse:
        response = _json(201, obj)
        if claim:
            idempotency.complete(conn, claim, response, self.clock.now())
        return response

    async def _recover_payment(self, payment_id: str) -> StoredResponse:
        return _json(201, await self.db.tx(lambda conn: self._render_payment(conn, payment_id)))

    def _render_payment(self, conn: Connection, payment_id: str) -> dict:
        """The payment with its latest attempt's action and out-trade-no, in one query."""
        return payment_object(conn.execute(RENDER_PAYMENT, {"b_payment_id": payment_id}).first())

    @staticmethod
    def current_attempt(conn: Connection, payment_id: str):  # noqa: ANN205
        return conn.execute(select(attempts).where(attempts.c.payment_id == payment_id)
                            .order_by(attempts.c.created_at.desc(), attempts.c.id.desc()).limit(1)).first()

    @staticmethod
    def _load_payment(conn: Connection, merchant_id: str, payment_id: str):  # noqa: ANN205
        return owned_row(conn, payments, merchant_id, "payment", payment_id)

    async def get_payment(self, caller: Caller, payment_id: str, sync: bool = False) -> dict:
        def load(conn: Connection) -> tuple[Any, dict]:
            caller.verify(conn)
            p = self._load_payment(conn, caller.merchant_id, payment_id)
            return p, self._render_payment(conn, payment_id)

        p, rendered = await self.db.tx(load)
        if not (sync and p.status == "processing"):
            return rendered
        await self.sync_payment(p)
        return await self.db.tx(lambda conn: self._render_payment(conn, payment_id))

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
            self._load_payment(conn, caller.merchant_id, payment_id)
            return [attempt_object(a) for a in conn.execute(
                select(attempts).where(attempts.c.payment_id == payment_id)
                .order_by(attempts.c.created_at, attempts.c.id))]

        return await self.db.tx(load)

    async def sync_payment(self, p: Any, source: str = "query", attempt: Any = None) -> None:
        """Ask the channel about an attempt (the current one by default) and apply what it says."""
        if attempt is None:
            attempt = await self.db.tx(lambda conn: self.current_attempt(conn, p.id))
        account = self.host.account(attempt.channel_account)
        if not account.supports(Capability.QUERY):
            return
        result = await self._payment_call(account, "query", lambda: account.channel.query(attempt.out_trade_no),
                                          attempt.out_trade_no)
        if result.outcome is Outcome.SUCCEEDED and not self._believable(p, result, source):
            return
        await self.db.tx(lambda conn: self._apply_payment_result(conn, attempt.id, result, source=source))

    async def sync_refund(self, r: Any, out_trade_no: str) -> None:
        """Ask the channel about a processing refund and apply what it says. One it has no record of never
        reached it: it is sent again, under the same out_refund_no (never another)."""
        account = self.host.account(r.channel_account)
        if not account.supports(Capability.REFUND_QUERY):
            return
        result = await self._refund_call(account, "refund_query",
                                         lambda: account.channel.query_refund(out_trade_no, r.out_refund_no),
                                         r.out_refund_no)
        if result.unheard:
            total = await self.db.tx(lambda conn: conn.execute(
                select(payments.c.amount).where(payments.c.id == r.payment_id)).scalar_one())
            self.log.warning("refund.resend", refund_id=r.id, out_refund_no=r.out_refund_no)
            result = await self._send_refund(account, RefundRequest(out_trade_no, r.out_refund_no, r.amount, total,
                                                                    r.currency, r.reason))
        await self.db.tx(lambda conn: self._apply_refund_result(conn, r.id, result, source="janitor"))

    async def _load_for(self, caller: Caller, payment_id: str) -> Any:
        def load(conn: Connection) -> Any:
            caller.verify(conn)
            return self._load_payment(conn, caller.merchant_id, payment_id)

        return await self.db.tx(load)

    async def close_payment(self, caller: Caller, payment_id: str) -> dict:
        p = await self._load_for(caller, payment_id)
        if p.status == "closed":
            return await self.db.tx(lambda conn: self._render_payment(conn, payment_id))
        if p.status != "processing":
            raise conflict("payment_not_closable", f"A {p.status} payment cannot be closed")
        self.host.require(self.host.account(p.channel_account), Capability.CLOSE)
        if not await self.close_at_channel(p, source="close"):
            raise channel_error("close_unconfirmed",
                                "The channel did not confirm the close; the payment stays processing. Retry later.")
        return await self.db.tx(lambda conn: self._render_payment(conn, payment_id))

    async def close_at_channel(self, p: Any, source: str, attempt_only: bool = False, attempt: Any = None) -> bool:
        """Close an attempt (the current one by default) at the channel and apply what it says (closed,
        or paid after all). False if the channel gave no final answer."""
        if attempt is None:
            attempt = await self.db.tx(lambda conn: self.current_attempt(conn, p.id))
        account = self.host.account(attempt.channel_account)
        result = await self._payment_call(account, "close", lambda: account.channel.close(attempt.out_trade_no),
                                          attempt.out_trade_no)
        if result.outcome in (Outcome.UNKNOWN, Outcome.PENDING):
            return False
        if result.outcome is Outcome.SUCCEEDED and not self._believable(p, result, source):
            return False
        await self.db.tx(lambda conn: self._apply_payment_result(conn, attempt.id, result, source=source,
                                                                 attempt_only=attempt_only))
        return True

    def _refund_duplicate(self, conn: Connection, attempt_id: str, p: Any, now: Any, result: PaymentResult) -> None:
        """Another attempt of this order was paid too: the customer paid twice. Book the money as owed
        back (what the channel pays us for it), and queue a refund of it that the janitor sends."""
        attempt = conn.execute(select(attempts).where(attempts.c.id == attempt_id)).first()
        kept = sum(d.unsettled for d in result.discounts)
        if kept < p.amount:  # else the channel kept all of it: none of our money came in
            self.booker.book(conn, "payment.duplicate_succeeded", f"attempt:{attempt_id}", merchant_id=p.merchant_id,
                             channel_account=attempt.channel_account, currency=p.currency, now=now,
                             variables={"amount": p.amount, "discount": kept}, memo=f"second payment of {p.id}")
        refund_id = public_id("re")
        conn.execute(insert(refunds).values(
            id=refund_id, payment_id=p.id, attempt_id=attempt_id, merchant_id=p.merchant_id,
            merchant_refund_no=f"auto-duplicate-{attempt_id}", out_refund_no=out_trade_no(),
            channel_account=attempt.channel_account, amount=p.amount, currency=p.currency,
            reason="this order was paid twice", status="processing", fee_refund=0, discount_refund=kept,
            kind="duplicate",
            submitted=False, next_query_at=now, queries=0, created_at=now, updated_at=now))
        record_event(conn, p.merchant_id, "payment.duplicate", p.id,
                     {**self._render_payment(conn, p.id), "duplicate_refund": self._render_refund(conn, refund_id)},
                     p.notify_url, now)
        self.log.warning("payment.duplicate", payment_id=p.id, attempt_id=attempt_id, refund_id=refund_id)

    async def submit_refund(self, r: Any, out_trade_no: str, total: int) -> None:
        """Send a refund paymux started itself (a duplicate payment's) to the channel."""
        account = self.host.account(r.channel_account)
        request = RefundRequest(out_trade_no, r.out_refund_no, r.amount, total, r.currency, r.reason)
        result = await self._send_refund(account, request)

        def settle(conn: Connection) -> None:
            # Sent: from now on the channel is asked first, and it is sent again only if it has no record.
            conn.execute(update(refunds).where(refunds.c.id == r.id).values(submitted=True))
            self._apply_refund_result(conn, r.id, result, source="janitor")

        await self.db.tx(settle)

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
        current = await self.db.tx(lambda conn: self.current_attempt(conn, p.id))
        if current.status in OPEN_ATTEMPT:
            if not self.host.account(p.channel_account).supports(Capability.CLOSE) or \
                    not await self.close_at_channel(p, source="new_attempt", attempt_only=True):
                raise conflict("payment_in_progress", "The attempt in flight could not be closed at its channel; "
                                                      "the payment may still be paid there. Query it and retry.")
        now = self.clock.now()
        attempt_id, trade_no = public_id("att"), out_trade_no()

        def start(conn: Connection) -> bool:
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
            await self.db.tx(lambda conn: self._apply_payment_result(conn, attempt_id, result, source="create"))
            self.log.info("payment.attempt_started", payment_id=p.id, attempt_id=attempt_id, channel_account=account.id)
        return await self.db.tx(lambda conn: self._render_payment(conn, p.id))

    def _believable(self, p: Any, result: PaymentResult, source: str) -> bool:
        """A success is applied only if what the channel says was paid fits the order: its amount,
        currency, and discounts that add up (gateway/discounts.py). Otherwise it is logged for a person."""
        if (result.amount is None or result.amount == p.amount) and \
                (result.currency is None or result.currency == p.currency):
            why = discounts.problem(p.amount, result)
            if why is None:
                return True
        else:
            why = f"the channel says {result.amount} {result.currency} was paid"
        self.log.error("channel.amount_mismatch", payment_id=p.id, source=source, channel_amount=result.amount,
                       detail=why)
        return False

    def _apply_payment_result(self, conn: Connection, attempt_id: str, result: PaymentResult, source: str,
                              attempt_only: bool = False) -> bool:
        """Move an attempt and its payment per a channel result. True if the payment changed state.
        attempt_only: a close that retires one attempt for another leaves the payment processing
        (a success still moves it: money taken always counts)."""
        now = self.clock.now()
        outcome = result.outcome
        values: dict[str, Any] = {"updated_at": now}
        if result.action is not None:
            values["action"] = dict(result.action)
        if result.channel_transaction_id:
            values["channel_transaction_id"] = result.channel_transaction_id
        if result.error_code:
            values["error_code"], values["error_message"] = result.error_code, (result.error_message or "")[:500]

        values.update(status=outcome.value, b_attempt_id=attempt_id)
        if outcome in (Outcome.PENDING, Outcome.UNKNOWN):
            conn.execute(MOVE_ATTEMPT, {**values, "b_from": list(OPEN_ATTEMPT)})
            return False

        # A verified success is money taken: it wins over a local close or failure (a late success).
        allowed = ("created", "pending", "unknown", "closed", "failed") if outcome is Outcome.SUCCEEDED else OPEN_ATTEMPT
        changed = conn.execute(MOVE_ATTEMPT, {**values, "b_from": list(allowed)}).rowcount
        if not changed or (attempt_only and outcome is not Outcome.SUCCEEDED):
            return False
        attempt = conn.execute(select(attempts.c.payment_id, attempts.c.channel_account)
                               .where(attempts.c.id == attempt_id)).first()
        if outcome is not Outcome.SUCCEEDED and self.current_attempt(conn, attempt.payment_id).id != attempt_id:
            return False   # an attempt left behind (failover, new attempt) ends alone; the payment goes on
        pay_values: dict[str, Any] = {"status": outcome.value, "updated_at": now}
        from_states: tuple[str, ...] = ("processing",)
        if outcome is Outcome.SUCCEEDED:
            pay_values.update(paid_at=now, channel_transaction_id=result.channel_transaction_id,
                              failure_code=None, failure_message=None)
            from_states = ("processing", "closed", "failed")
        elif outcome is Outcome.FAILED:
            pay_values.update(failure_code=result.error_code or "channel_declined",
                              failure_message=(result.error_message or "The channel declined the payment")[:500])
        p = conn.execute(select(payments).where(payments.c.id == attempt.payment_id)).first()
        moved = conn.execute(MOVE_PAYMENT, {**pay_values, "b_payment_id": attempt.payment_id,
                                            "b_from": list(from_states)}).rowcount
        if not moved:
            if outcome is Outcome.SUCCEEDED and p.status == "succeeded":
                self._refund_duplicate(conn, attempt_id, p, now, result)
            return False
        if outcome is Outcome.SUCCEEDED:
            # Booked in the same transaction as the state change: one never exists without the other.
            booking = self.booker.payment_succeeded(conn, payment_facts(p), now, discounts.facts(result.discounts))
            conn.execute(update(payments).where(payments.c.id == p.id).values(
                fee_amount=booking.fee, discount_amount=booking.discount,
                discounts=discounts.stored(result.discounts, booking)))
        if self.splits is not None and p.splittable:   # only a payment made to be split can have splits waiting
            self.splits.payment_ended(conn, p.id, attempt.channel_account, outcome, now)
        # The merchant's notification too: the outbox row commits with the change it announces.
        record_event(conn, p.merchant_id, f"payment.{outcome.value}", p.id, self._render_payment(conn, p.id),
                     p.notify_url, now)
        self.log.info("payment.state_changed", payment_id=attempt.payment_id, attempt_id=attempt_id,
                      from_status=p.status, to_status=outcome.value, source=source)
        return True

    # ---- refunds ----

    async def create_refund(self, caller: Caller, payment_id: str, new: NewRefund,
                            claim: IdempotencyClaim | None) -> StoredResponse:
        p = await self._load_for(caller, payment_id)
        merchant_id = caller.merchant_id
        account = self.host.account(p.channel_account)
        self.host.require(account, Capability.REFUND)
        refund_id = public_id("re")
        if p.split_amount and self.splits is not None:   # what receivers hold comes back first, if so configured
            await self.splits.take_back(merchant_id, payment_id, new.merchant_refund_no, new.amount)

        async def run() -> StoredResponse:
            now = self.clock.now()
            out_refund_no = out_trade_no()

            def tx1(conn: Connection):  # noqa: ANN202
                if claim:
                    idempotency.claim(conn, claim, refund_id, now)
                # What was split among receivers is theirs: [splits] refund_policy "refuse" refunds the rest.
                reserved = conn.execute(update(payments).where(and_(
                    payments.c.id == payment_id, payments.c.status == "succeeded",
                    payments.c.refunded_amount + payments.c.refund_pending_amount + payments.c.split_amount
                    + new.amount <= payments.c.amount))
                    .values(refund_pending_amount=payments.c.refund_pending_amount + new.amount, updated_at=now)).rowcount
                if not reserved:
                    cur = self._load_payment(conn, merchant_id, payment_id)
                    if cur.status != "succeeded":
                        raise conflict("payment_not_refundable", f"A {cur.status} payment cannot be refunded")
                    left = cur.amount - cur.refunded_amount - cur.refund_pending_amount - cur.split_amount
                    if cur.split_amount and new.amount <= left + cur.split_amount:
                        raise invalid_request("refund_exceeds_unsplit",
                                              f"Refund of {new.amount} exceeds the {left} not split among receivers "
                                              f"({cur.split_amount} was split)", "amount")
                    raise invalid_request("refund_exceeds_payment",
                                          f"Refund of {new.amount} exceeds the {left} left to refund", "amount")
                attempt = conn.execute(select(attempts).where(and_(attempts.c.payment_id == payment_id,
                                                                   attempts.c.status == "succeeded"))).first()
                current = conn.execute(select(payments).where(payments.c.id == payment_id)).first()
                completes = current.refunded_amount + current.refund_pending_amount == current.amount
                shares = discounts.refund_shares(conn, current, new.amount, completes)
                # The fee was charged on what the channel pays: it goes back with what the channel takes back.
                taken_before, fee_before = self._refunded_before(conn, payment_id)
                fee_refund = self.booker.fee_refund(
                    current.amount - current.discount_amount, current.fee_amount or 0, new.amount - shares.discount,
                    fee_before, completes=completes, refunded_before=taken_before)
                try:
                    conn.execute(insert(refunds).values(
                        id=refund_id, payment_id=payment_id, attempt_id=attempt.id, merchant_id=merchant_id,
                        merchant_refund_no=new.merchant_refund_no, out_refund_no=out_refund_no,
                        channel_account=account.id, amount=new.amount, currency=p.currency, reason=new.reason,
                        status="processing", fee_refund=fee_refund, discount_refund=shares.discount,
                        campaign_refund=dict(shares.campaigns) or None,
                        next_query_at=now + self.schedule.first(account.id),
                        created_at=now, updated_at=now))
                except IntegrityError:
                    raise conflict("duplicate_refund", f"merchant_refund_no {new.merchant_refund_no!r} already exists",
                                   "merchant_refund_no") from None
                try:
                    # What the channel still holds frozen of the payment (for splitting) pays first.
                    self.booker.refund_requested(conn, payment_facts(current), refund_id, new.amount, fee_refund, now,
                                                 shares, frozen=current.frozen_amount)
                except InsufficientBalance as exc:
                    raise invalid_request("insufficient_balance",
                                          f"The merchant's balance cannot cover this refund: {exc.message}",
                                          "amount") from None
                self._take_frozen(conn, payment_id, f"refund:{refund_id}:refund.requested", now)
                return attempt

            attempt = await self.db.tx(tx1)
            self.log.info("refund.created", refund_id=refund_id, payment_id=payment_id, amount=new.amount)
            request = RefundRequest(attempt.out_trade_no, out_refund_no, new.amount, p.amount, p.currency, new.reason)
            result = await self._send_refund(account, request)

            def tx2(conn: Connection) -> StoredResponse:
                self._apply_refund_result(conn, refund_id, result, source="create")
                return self._respond(conn, claim, self._render_refund(conn, refund_id))

            return await self.db.tx(tx2)

        return await self._idempotent(claim, run, self._recover_refund)

    async def _send_refund(self, account: ChannelAccount, request: RefundRequest) -> RefundResult:
        """Send a refund (again, under its one out_refund_no) and make sure of a refusal before it counts:
        a refusal stands only if the channel then has no record of the refund (a resend of one it took
        can be refused as a repeat, or by a state the first one caused)."""
        result = await self._refund_call(account, "refund", lambda: account.channel.refund(request),
                                         request.out_refund_no)
        if result.outcome is not Outcome.FAILED or not account.supports(Capability.REFUND_QUERY):
            return result
        found = await self._refund_call(account, "refund_query", lambda: account.channel.query_refund(
            request.out_trade_no, request.out_refund_no), request.out_refund_no)
        if found.unheard:
            return result        # the channel has no such refund: its refusal is the answer
        self.log.warning("refund.refusal_not_final", out_refund_no=request.out_refund_no, refused=result.error_code,
                         found=found.outcome.value)
        return found             # it has one (or cannot say): that decides, never the refusal

    def _take_frozen(self, conn: Connection, payment_id: str, key: str, now: Any) -> None:
        """Lower the payment's frozen share by what the entry `key` took from it."""
        taken = self.booker.frozen_part(conn, key)
        if taken:
            conn.execute(update(payments).where(payments.c.id == payment_id).values(
                frozen_amount=payments.c.frozen_amount - taken, updated_at=now))

    def _give_back_frozen(self, conn: Connection, payment_id: str, key: str, now: Any) -> None:
        """A refund or split that failed gives its payment back the frozen share its entry `key` took."""
        taken = self.booker.frozen_part(conn, key)
        if taken:
            conn.execute(update(payments).where(payments.c.id == payment_id).values(
                frozen_amount=payments.c.frozen_amount + taken, updated_at=now))

    @staticmethod
    def _refunded_before(conn: Connection, payment_id: str) -> tuple[int, int]:
        """What this payment's merchant refunds that have not failed took back through the channel (less
        their share of a kept discount), and the fee they gave back."""
        taken, fee = conn.execute(select(
            func.coalesce(func.sum(refunds.c.amount - refunds.c.discount_refund), 0),
            func.coalesce(func.sum(refunds.c.fee_refund), 0)).where(
            refunds.c.payment_id == payment_id, refunds.c.status != "failed", refunds.c.kind == "merchant")).one()
        return int(taken), int(fee)   # PostgreSQL sums bigints as numeric

    async def _recover_refund(self, refund_id: str) -> StoredResponse:
        return _json(201, await self.db.tx(lambda conn: self._render_refund(conn, refund_id)))

    def _render_refund(self, conn: Connection, refund_id: str) -> dict:
        return refund_object(conn.execute(select(refunds).where(refunds.c.id == refund_id)).first())

    async def get_refund(self, caller: Caller, refund_id: str, sync: bool = False) -> dict:
        def load(conn: Connection) -> Any:
            caller.verify(conn)
            return owned_row(conn, refunds, caller.merchant_id, "refund", refund_id)

        r = await self.db.tx(load)
        if sync and r.status == "processing" and r.submitted:
            trade_no = await self.db.tx(lambda conn: conn.execute(
                select(attempts.c.out_trade_no).where(attempts.c.id == r.attempt_id)).scalar_one())
            await self.sync_refund(r, trade_no)
            return await self.db.tx(lambda conn: self._render_refund(conn, refund_id))
        return refund_object(r)

    def _apply_refund_result(self, conn: Connection, refund_id: str, result: RefundResult, source: str) -> bool:
        if result.outcome not in (Outcome.SUCCEEDED, Outcome.FAILED):
            return bool(result.attention) and self._refund_needs_attention(conn, refund_id, result, source)
        now = self.clock.now()
        r = conn.execute(select(refunds).where(refunds.c.id == refund_id)).first()
        values: dict[str, Any] = {"status": result.outcome.value, "updated_at": now, "attention_code": None,
                                  "attention_message": None}
        if result.channel_refund_id:
            values["channel_refund_id"] = result.channel_refund_id
        if result.outcome is Outcome.FAILED:
            values["failure_code"] = result.error_code or "channel_declined"
            values["failure_message"] = (result.error_message or "The channel declined the refund")[:500]
        changed = conn.execute(update(refunds).where(and_(refunds.c.id == refund_id, refunds.c.status == "processing"))
                               .values(**values)).rowcount
        if not changed:
            return False
        if r.kind == "duplicate":
            self._settle_duplicate_refund(conn, r, result, now)
            return True
        pending = payments.c.refund_pending_amount - r.amount
        pay_values: dict[str, Any] = {"refund_pending_amount": pending, "updated_at": now}
        if result.outcome is Outcome.SUCCEEDED:
            pay_values["refunded_amount"] = payments.c.refunded_amount + r.amount
        conn.execute(update(payments).where(payments.c.id == r.payment_id).values(**pay_values))
        row = conn.execute(select(payments).where(payments.c.id == r.payment_id)).first()
        p = payment_facts(row)
        if result.outcome is Outcome.SUCCEEDED:
            self.booker.refund_succeeded(conn, p, refund_id, r.amount, now, r.discount_refund)
        else:
            self._give_back_frozen(conn, r.payment_id, f"refund:{refund_id}:refund.requested", now)
            self.booker.refund_failed(conn, p, refund_id, now, [c for c, a in (r.campaign_refund or {}).items() if a],
                                      reserved=r.amount > r.discount_refund)
        record_event(conn, r.merchant_id, f"refund.{result.outcome.value}", refund_id,
                     self._render_refund(conn, refund_id), row.notify_url, now)
        self.log.info("refund.state_changed", refund_id=refund_id, payment_id=r.payment_id,
                      from_status="processing", to_status=result.outcome.value, source=source)
        return True

    def _refund_needs_attention(self, conn: Connection, refund_id: str, result: RefundResult, source: str) -> bool:
        """The channel holds the refund and a person must act (WeChat Pay ABNORMAL): it stays processing,
        its money reserved, and is shown to operators (paymux exceptions, the console) and the merchant
        (refund.attention) once; its end comes later, by callback or query."""
        now = self.clock.now()
        code = (result.error_code or result.attention or "attention")[:64]
        changed = conn.execute(update(refunds).where(and_(
            refunds.c.id == refund_id, refunds.c.status == "processing",
            or_(refunds.c.attention_code.is_(None), refunds.c.attention_code != code))).values(
            attention_code=code, attention_message=result.attention[:500], attention_at=now, updated_at=now)).rowcount
        if not changed:
            return False
        r = conn.execute(select(refunds).where(refunds.c.id == refund_id)).first()
        notify_url = conn.execute(select(payments.c.notify_url).where(payments.c.id == r.payment_id)).scalar()
        record_event(conn, r.merchant_id, "refund.attention", refund_id, refund_object(r), notify_url, now)
        self.log.warning("refund.needs_attention", refund_id=refund_id, payment_id=r.payment_id, code=code,
                         detail=result.attention[:200], source=source)
        return True

    def _settle_duplicate_refund(self, conn: Connection, r: Any, result: RefundResult, now: Any) -> None:
        """A duplicate payment's refund is not the merchant's: the payment's refunded amounts stay."""
        row = conn.execute(select(payments).where(payments.c.id == r.payment_id)).first()
        if result.outcome is Outcome.SUCCEEDED:
            self.booker.refund_succeeded(conn, payment_facts(row), r.id, r.amount, now, r.discount_refund)
        else:  # the money stays owed in refunds_payable: a person must return it another way
            conn.execute(update(refunds).where(refunds.c.id == r.id).values(exception_at=now))
        record_event(conn, r.merchant_id, f"refund.{result.outcome.value}", r.id, self._render_refund(conn, r.id),
                     row.notify_url, now)
        self.log.info("refund.state_changed", refund_id=r.id, payment_id=r.payment_id, kind="duplicate",
                      to_status=result.outcome.value)

    # ---- channel callbacks ----

    def apply_event(self, conn: Connection, account_id: str, event: ChannelEvent) -> str:
        """Apply one verified callback fact. Returns the outcome recorded for the callback."""
        attempt = conn.execute(select(attempts).where(and_(attempts.c.out_trade_no == event.out_trade_no,
                                                           attempts.c.channel_account == account_id))).first()
        if attempt is None:
            return "unknown_reference"
        p = conn.execute(select(payments).where(payments.c.id == attempt.payment_id)).first()
        if event.kind == "refund":
            r = conn.execute(select(refunds).where(and_(refunds.c.out_refund_no == event.out_refund_no,
                                                        refunds.c.attempt_id == attempt.id))).first()
            if r is None:
                return "unknown_reference"
            if event.amount is not None and event.amount != r.amount:
                return "mismatch"
            result = RefundResult(event.outcome, event.channel_refund_id, event.amount, error_code=event.error_code,
                                  attention=event.attention)
            return "applied" if self._apply_refund_result(conn, r.id, result, "callback") else "duplicate"
        result = PaymentResult(event.outcome, channel_transaction_id=event.channel_transaction_id,
                               amount=event.amount, currency=event.currency, discounts=event.discounts,
                               payer_amount=event.payer_amount, settled_amount=event.settled_amount)
        if not self._believable(p, result, "callback"):
            return "mismatch"
        return "applied" if self._apply_payment_result(conn, attempt.id, result, "callback") else "duplicate"
