"""Refunds: reserved from the merchant when asked for, sent under one out_refund_no, asked about until
the channel's own word ends them, booked in the transaction of each change. No HTTP, no SQL strings.

- A refund takes at most what is left of its payment (payment_rows.unclaimed), raised by a
  conditional UPDATE of refund_pending_amount, so concurrent refunds and splits cannot both take the
  last of it; `refund.requested` is booked in the transaction that inserts it (an uncoverable refund
  leaves no row at all).
- Before a failure, ask: a refusal counts only once a query of the same number finds no record.
- A refund the channel never heard of is sent again under its one number (never another).
- A duplicate payment's refund (kind "duplicate", written by the payment that found the second
  payment) is sent by the janitor; if refused, the money stays owed and people are shown it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Awaitable

from sqlalchemy import Connection, Row, and_, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from gateway import discounts, idempotency
from gateway.auth import Caller
from gateway.channel import Capability, Channel, ChannelEvent, Outcome, RefundRequest, RefundResult
from gateway.channel_calls import unknown_refund
from gateway.db import owned_row
from gateway.errors import conflict, invalid_request
from gateway.ids import out_trade_no, public_id
from gateway.idempotency import IdempotencyClaim, StoredResponse
from gateway.models import Attempt, Payment, Refund
from gateway.notifier import record_event
from gateway.operations import OperationCore, ResentOperation, Services
from gateway.payment_rows import (REFUND, give_back_frozen, load_payment, payment, payment_facts, refunded_before,
                                  render_refund, take_frozen, unclaimed)
from gateway.plugins import ChannelAccount
from gateway.resources import refund_object
from gateway.splits import SplitService
from ledger.errors import InsufficientBalance

refunds = Refund.__table__
attempts = Attempt.__table__
payments = Payment.__table__

# The statements of a refund's life, built once with bind parameters (building a Core statement cost
# more than running it; docs/design-notes.md). A conditional UPDATE's SET comes from the parameters.
_RESERVE = (update(payments).where(payments.c.id == bindparam("b_payment_id"), payments.c.status == "succeeded",
                                   unclaimed(payments.c) >= bindparam("b_amount"))
            .values(refund_pending_amount=payments.c.refund_pending_amount + bindparam("b_amount"),
                    updated_at=bindparam("b_now")))
_PAID_ATTEMPT = select(attempts).where(attempts.c.payment_id == bindparam("b_payment_id"),
                                       attempts.c.status == "succeeded")
_INSERT_REFUND = insert(refunds)
_MOVE_REFUND = (update(refunds).where(refunds.c.id == bindparam("b_refund_id"), refunds.c.status == "processing")
                .returning(*refunds.c))   # the refund as it now is: what its event announces
# What an ended refund leaves on its payment: no longer pending; refunded if it succeeded (b_refunded 0 if not).
_REFUND_ENDED = (update(payments).where(payments.c.id == bindparam("b_payment_id"))
                 .values(refund_pending_amount=payments.c.refund_pending_amount - bindparam("b_amount"),
                         refunded_amount=payments.c.refunded_amount + bindparam("b_refunded"),
                         updated_at=bindparam("b_now"))
                 .returning(*payments.c))
_ATTEMPT_OF_TRADE_NO = select(attempts.c.id).where(attempts.c.out_trade_no == bindparam("b_out_trade_no"),
                                                   attempts.c.channel_account == bindparam("b_account"))
_REFUND_OF_NUMBER = select(refunds).where(refunds.c.out_refund_no == bindparam("b_out_refund_no"),
                                          refunds.c.attempt_id == bindparam("b_attempt_id"))
_TRADE_NO = select(attempts.c.out_trade_no).where(attempts.c.id == bindparam("b_attempt_id"))
_AMOUNT = select(payments.c.amount).where(payments.c.id == bindparam("b_payment_id"))
_SUBMITTED = update(refunds).where(refunds.c.id == bindparam("b_refund_id")).values(submitted=True)


@dataclass(frozen=True)
class NewRefund:
    merchant_refund_no: str
    amount: int
    reason: str | None


class RefundService:
    def __init__(self, core: OperationCore, splits: SplitService) -> None:
        self.db, self.host, self.clock, self.log = core.db, core.host, core.clock, core.log
        self.booker, self.calls, self.schedule = core.booker, core.calls, core.schedule
        self.splits = splits
        self.kind = RefundKind(core, self)

    async def create_refund(self, caller: Caller, payment_id: str, new: NewRefund,
                            claim: IdempotencyClaim | None) -> StoredResponse:
        p = await self.db.tx(lambda conn: (caller.verify(conn), load_payment(conn, caller.merchant_id, payment_id))[1])
        merchant_id = caller.merchant_id
        account = self.host.account(p.channel_account)
        self.host.require(account, Capability.REFUND)
        refund_id = public_id("re")
        if p.split_amount:   # what receivers hold comes back first, if so configured
            await self.splits.take_back(merchant_id, payment_id, new.merchant_refund_no, new.amount)

        async def run() -> StoredResponse:
            now = self.clock.now()
            out_refund_no = out_trade_no()

            def tx1(conn: Connection):  # noqa: ANN202
                if claim:
                    idempotency.claim(conn, claim, refund_id, now)
                # What was split among receivers is theirs: [splits] refund_policy "refuse" refunds the rest.
                reserved = conn.execute(_RESERVE, {"b_payment_id": payment_id, "b_amount": new.amount,
                                                   "b_now": now}).rowcount
                if not reserved:
                    cur = load_payment(conn, merchant_id, payment_id)
                    if cur.status != "succeeded":
                        raise conflict("payment_not_refundable", f"A {cur.status} payment cannot be refunded")
                    left = unclaimed(cur)
                    if cur.split_amount and new.amount <= left + cur.split_amount:
                        raise invalid_request("refund_exceeds_unsplit",
                                              f"Refund of {new.amount} exceeds the {left} not split among receivers "
                                              f"({cur.split_amount} was split)", "amount")
                    raise invalid_request("refund_exceeds_payment",
                                          f"Refund of {new.amount} exceeds the {left} left to refund", "amount")
                attempt = conn.execute(_PAID_ATTEMPT, {"b_payment_id": payment_id}).first()
                current = payment(conn, payment_id)
                completes = current.refunded_amount + current.refund_pending_amount == current.amount
                shares = discounts.refund_shares(conn, current, new.amount, completes)
                # The fee was charged on what the channel pays: it goes back with what the channel takes back.
                taken_before, fee_before = refunded_before(conn, payment_id)
                fee_refund = self.booker.fee_refund(
                    current.amount - current.discount_amount, current.fee_amount or 0, new.amount - shares.discount,
                    fee_before, completes=completes, refunded_before=taken_before, rule=current.fee_rule)
                try:
                    conn.execute(_INSERT_REFUND, dict(
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
                take_frozen(conn, self.booker, payment_id, f"refund:{refund_id}:refund.requested", now)
                return attempt

            attempt = await self.db.tx(tx1)
            self.log.info("refund.created", refund_id=refund_id, payment_id=payment_id, amount=new.amount)
            request = RefundRequest(attempt.out_trade_no, out_refund_no, new.amount, p.amount, p.currency, new.reason)
            result = await self.kind.send_confirmed(account, request, out_refund_no)

            def tx2(conn: Connection) -> StoredResponse:
                self.apply(conn, refund_id, result, source="create")
                return idempotency.respond(conn, claim, render_refund(conn, refund_id), self.clock.now())

            return await self.db.tx(tx2)

        return await idempotency.run_once(self.db.tx, claim, self.clock.now, run, self._recover)

    async def _recover(self, refund_id: str) -> StoredResponse:
        return idempotency.stored(201, await self.db.tx(lambda conn: render_refund(conn, refund_id)))

    async def get_refund(self, caller: Caller, refund_id: str, sync: bool = False) -> dict:
        def load(conn: Connection) -> Row:
            caller.verify(conn)
            return owned_row(conn, refunds, caller.merchant_id, "refund", refund_id)

        r = await self.db.tx(load)
        if sync and r.status == "processing" and r.submitted:
            await self.sync(r)
            return await self.db.tx(lambda conn: render_refund(conn, refund_id))
        return refund_object(r)

    def apply(self, conn: Connection, refund_id: str, result: RefundResult, source: str,
              found: Row | None = None) -> bool:
        """found: the refund's row, if the caller has read it."""
        if result.outcome not in (Outcome.SUCCEEDED, Outcome.FAILED):
            return bool(result.attention) and self._needs_attention(conn, refund_id, result, source)
        now = self.clock.now()
        r = found if found is not None else conn.execute(REFUND, {"b_refund_id": refund_id}).first()
        values: dict[str, Any] = {"status": result.outcome.value, "updated_at": now, "attention_code": None,
                                  "attention_message": None}
        if result.channel_refund_id:
            values["channel_refund_id"] = result.channel_refund_id
        if result.outcome is Outcome.FAILED:
            values["failure_code"] = result.error_code or "channel_declined"
            values["failure_message"] = (result.error_message or "The channel declined the refund")[:500]
        moved = conn.execute(_MOVE_REFUND, {**values, "b_refund_id": refund_id}).first()
        if moved is None:
            return False
        if r.kind == "duplicate":
            self._settle_duplicate(conn, r, result, now)
            return True
        row = conn.execute(_REFUND_ENDED, {
            "b_payment_id": r.payment_id, "b_amount": r.amount, "b_now": now,
            "b_refunded": r.amount if result.outcome is Outcome.SUCCEEDED else 0}).first()
        p = payment_facts(row)
        if result.outcome is Outcome.SUCCEEDED:
            self.booker.refund_succeeded(conn, p, refund_id, r.amount, now, r.discount_refund)
        else:
            give_back_frozen(conn, self.booker, r.payment_id, f"refund:{refund_id}:refund.requested", now)
            self.booker.refund_failed(conn, p, refund_id, now, [c for c, a in (r.campaign_refund or {}).items() if a],
                                      reserved=r.amount > r.discount_refund)
        record_event(conn, r.merchant_id, f"refund.{result.outcome.value}", refund_id, refund_object(moved),
                     row.notify_url, now)
        self.log.info("refund.state_changed", refund_id=refund_id, payment_id=r.payment_id,
                      from_status="processing", to_status=result.outcome.value, source=source)
        return True

    def _needs_attention(self, conn: Connection, refund_id: str, result: RefundResult, source: str) -> bool:
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
        r = conn.execute(REFUND, {"b_refund_id": refund_id}).first()
        notify_url = conn.execute(select(payments.c.notify_url).where(payments.c.id == r.payment_id)).scalar()
        record_event(conn, r.merchant_id, "refund.attention", refund_id, refund_object(r), notify_url, now)
        self.log.warning("refund.needs_attention", refund_id=refund_id, payment_id=r.payment_id, code=code,
                         detail=result.attention[:200], source=source)
        return True

    def _settle_duplicate(self, conn: Connection, r: Row, result: RefundResult, now: datetime) -> None:
        """A duplicate payment's refund is not the merchant's: the payment's refunded amounts stay."""
        row = payment(conn, r.payment_id)
        if result.outcome is Outcome.SUCCEEDED:
            self.booker.refund_succeeded(conn, payment_facts(row), r.id, r.amount, now, r.discount_refund)
        else:  # the money stays owed in refunds_payable: a person must return it another way
            conn.execute(update(refunds).where(refunds.c.id == r.id).values(exception_at=now))
        record_event(conn, r.merchant_id, f"refund.{result.outcome.value}", r.id, render_refund(conn, r.id),
                     row.notify_url, now)
        self.log.info("refund.state_changed", refund_id=r.id, payment_id=r.payment_id, kind="duplicate",
                      to_status=result.outcome.value)

    async def sync(self, r: Row, out_trade_no: str | None = None) -> None:
        """Ask the channel about a processing refund and apply what it says. One it has no record of never
        reached it: it is sent again, under the same out_refund_no (never another). (out_trade_no: its
        payment's paid attempt's, which the refund row names; kept for callers that pass it.)"""
        await self.kind.sync(r)

    def apply_event(self, conn: Connection, account_id: str, event: ChannelEvent) -> str:
        """Apply a verified callback fact about a refund, named by its payment's attempt and its number."""
        attempt = conn.execute(_ATTEMPT_OF_TRADE_NO, {"b_out_trade_no": event.out_trade_no,
                                                      "b_account": account_id}).first()
        if attempt is None:
            return "unknown_reference"
        r = conn.execute(_REFUND_OF_NUMBER, {"b_out_refund_no": event.out_refund_no,
                                              "b_attempt_id": attempt.id}).first()
        if r is None:
            return "unknown_reference"
        if event.amount is not None and event.amount != r.amount:
            return "mismatch"
        result = RefundResult(event.outcome, event.channel_refund_id, event.amount, error_code=event.error_code,
                              attention=event.attention)
        return "applied" if self.apply(conn, r.id, result, "callback", found=r) else "duplicate"


class RefundKind(ResentOperation[RefundRequest]):
    """Refunds in the operation registry: sent under one out_refund_no, asked about (where the channel
    can be: Capability.REFUND_QUERY), sent again under it when the channel never heard of it. A duplicate
    payment's refund is written unsent; the janitor sends it."""

    name = "refund"
    table = refunds
    reference = "out_refund_no"
    templates = ("refund.requested", "refund.succeeded", "refund.failed")
    event_kind = "refund"
    send_operation, query_operation = "refund", "refund_query"
    what = log_prefix = "refund"
    channel_id_column = "channel_refund_id"
    resend_event = "refund.resend"
    refusal_key = "out_refund_no"
    unknown = staticmethod(unknown_refund)
    sent_source = query_source = "janitor"

    def __init__(self, core: OperationCore, service: RefundService) -> None:
        super().__init__(core)
        self.service = service

    @classmethod
    def make(cls, services: Services) -> RefundKind:
        return services.refunds.kind

    def can_ask(self, account: ChannelAccount) -> bool:
        return account.supports(Capability.REFUND_QUERY)

    def request(self, conn: Connection, r: Row) -> RefundRequest:
        trade_no = conn.execute(_TRADE_NO, {"b_attempt_id": r.attempt_id}).scalar_one()
        total = conn.execute(_AMOUNT, {"b_payment_id": r.payment_id}).scalar_one()
        return RefundRequest(trade_no, r.out_refund_no, r.amount, total, r.currency, r.reason)

    def send(self, channel: Channel, request: RefundRequest) -> Awaitable[RefundResult]:
        return channel.refund(request)

    def query(self, channel: Channel, request: RefundRequest) -> Awaitable[RefundResult]:
        return channel.query_refund(request.out_trade_no, request.out_refund_no)

    def apply(self, conn: Connection, row_id: str, result: RefundResult, source: str, sent: bool = False) -> bool:
        if sent:   # from now on the channel is asked first, and it is sent again only if it has no record
            conn.execute(_SUBMITTED, {"b_refund_id": row_id})
        return self.service.apply(conn, row_id, result, source)

    def apply_event(self, conn: Connection, account_id: str, event: ChannelEvent) -> str:
        return self.service.apply_event(conn, account_id, event)

    def render(self, row: Row) -> dict[str, Any]:
        return refund_object(row)

    @classmethod
    def stuck(cls, conn: Connection) -> list[dict[str, Any]]:
        """Refunds no answer settled; a duplicate payment's refund the channel refused (that money is still
        owed to the customer); and a refund the channel holds for a person (WeChat Pay ABNORMAL), from the
        moment it said so."""
        found = []
        for r in conn.execute(select(refunds).where(or_(
                and_(refunds.c.exception_at.is_not(None), or_(
                    refunds.c.status == "processing",
                    and_(refunds.c.kind == "duplicate", refunds.c.status == "failed"))),
                and_(refunds.c.status == "processing", refunds.c.attention_code.is_not(None))))):
            held = r.attention_code and r.status == "processing"
            found.append({"kind": "refund", "id": r.id, "out_trade_no": r.out_refund_no,
                          "channel_account": r.channel_account, "merchant_id": r.merchant_id, "amount": r.amount,
                          "status": f"{r.status}: {r.attention_code}" if held else r.status, "queries": r.queries,
                          "since": (r.attention_at if held else r.exception_at).isoformat()})
        return found
