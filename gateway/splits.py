"""Receivers and split payments (分账): part of a paid payment passed on, at the payment's channel,
to someone the merchant registered. No HTTP, no SQL strings.

- A split is asked for after the payment succeeded (POST /v1/payments/{id}/splits), or declared
  with the payment (`splits`), in which case it waits ("scheduled") and starts in the transaction
  that makes the payment succeed (a payment that fails or closes cancels it).
- The sum of a payment's splits never exceeds what is left of it after its fee and refunds:
  payments.split_amount is raised by a conditional UPDATE, so concurrent splits and refunds
  cannot both take the last of it. A refund of a split payment that needs what was split is
  refused (`[splits] refund_policy = "refuse"`, the default) or first takes it back from the
  receivers, newest split first (`"return"`, where the channel can: Capability.SPLIT_RETURN);
  the refund goes ahead once every return succeeded, and answers 409 split_return_pending (retry
  it under the same merchant_refund_no) while one is in flight. A split paymux holds is taken back in
  the books alone, at once (from the receiver's in-transit, then its available balance), at any channel.
- Money: `split.requested` reserves the amount from the merchant (in-transit first, then
  available) into splits_payable; `split.succeeded` passes it to the receiver's in-transit;
  `split.failed` reverses the request and gives the payment its room back; `split.returned`
  moves a return from the receiver's in-transit back to the merchant's.
- Splits are sent and asked about like refunds: at once when asked for (or, where the channel takes
  a split only some time after the payment, once that time has passed), then by the janitor. A
  split, return or release the channel never heard of is sent again under its one number; a refusal
  counts only once a query finds no record of it (a resend of one it took can be refused).
- Limits are the channel's (`Channel.split_limits`): all splits of a payment within its share of the
  order (WeChat Pay and Alipay: 30% unless the merchant's contract says more) and its fee.
- Receivers whose money paymux holds (receivers.held_by = "paymux"), and every split at a channel
  account that cannot split (no Capability.SPLIT): no channel pays the receiver, so no channel is
  called. The split succeeds in the books in the transaction that starts it (split.requested, then
  split.succeeded: owed to the receiver, receiver_in_transit, `held_by` "paymux"), takes nothing from what
  a channel holds frozen (the channel still holds it, and releases it all to the merchant), knows no
  channel cap, and is settled to the receiver on its own T+n and paid out like a merchant's money
  (gateway/split_settlement.py).
- Frozen remainders: a channel that freezes a payment made to be split (Capability.SPLIT_FINISH) holds
  the merchant's share (`split.frozen` at success, payments.frozen_amount) until told the splitting
  is over. Splits and refunds take from it first. The release (`split_releases`) is asked for by the
  merchant (POST /v1/payments/{id}/splits/finish) or, for splits declared with the payment, made when
  they have all ended; it waits while any split or return is in flight, then one finish call releases
  what is left, booked `split.released` (back to in-transit) when the channel confirms it.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Sequence

from sqlalchemy import Connection, Row, and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.auth import Caller
from gateway.channel import Capability, Outcome, SplitLimits, SplitResult
from gateway.db import owned_row
from gateway.errors import conflict, invalid_request
from gateway.ids import out_trade_no, public_id
from gateway.models import Payment, Receiver, Refund, Split, SplitRelease, SplitReturn
from gateway.operations import OperationCore
from gateway.payment_rows import payment_facts, refunded_before, take_frozen, unclaimed
from gateway.receivers import Receivers
from gateway.resources import split_object
from gateway.secretbox import SecretBox
from gateway.split_kinds import SplitKind, SplitReturnKind
from gateway.split_releases import SplitReleases, aware
from ledger.errors import LedgerError

if TYPE_CHECKING:
    from gateway.api.schemas import SplitSpec

payments = Payment.__table__
splits = Split.__table__
returns = SplitReturn.__table__
release_rows = SplitRelease.__table__
refunds = Refund.__table__
receivers = Receiver.__table__



class SplitService:
    def __init__(self, core: OperationCore, box: SecretBox | None, refund_policy: str = "refuse") -> None:
        self.refund_policy = refund_policy
        self.db, self.host, self.clock, self.log, self.booker = core.db, core.host, core.clock, core.log, core.booker
        self.queries = core.schedule
        self.receivers = Receivers(core.db, core.host, core.clock, box, core.booker.ledger)
        self.split_kind = SplitKind(core, box)
        self.return_kind = SplitReturnKind(core, self.split_kind)
        self.releases = SplitReleases(core)

    # ---- splits declared with the payment ----

    def schedule(self, conn: Connection, merchant_id: str, payment_id: str, merchant_order_no: str, currency: str,
                 room: int, specs: Sequence[SplitSpec], channel_account: str, now: datetime) -> None:
        """Write the payment's declared splits, waiting for it to succeed. room: the most they may
        take (the amount less the largest fee a planned account would charge)."""
        if sum(s.amount for s in specs) > room:
            raise invalid_request("split_exceeds_payment", f"The splits ({sum(s.amount for s in specs)}) exceed the "
                                  f"{room} left of the payment after its fee", "splits")
        for index, spec in enumerate(specs):
            self.receivers.receiver(conn, merchant_id, spec.receiver, f"splits.{index}.receiver")
            try:
                with conn.begin_nested():
                    conn.execute(insert(splits).values(self._row(
                        merchant_id, payment_id, spec.merchant_split_no or f"{merchant_order_no}-{index + 1}",
                        spec.receiver, spec.amount, currency, spec.description, channel_account, "scheduled", now)))
            except IntegrityError:
                raise conflict("duplicate_split", f"splits.{index}: that merchant_split_no exists",
                               f"splits.{index}.merchant_split_no") from None

    def _row(self, merchant_id: str, payment_id: str, merchant_split_no: str, receiver_id: str, amount: int,
             currency: str, description: str, channel_account: str, status: str, now: datetime) -> dict[str, Any]:
        return dict(id=public_id("spl"), payment_id=payment_id, merchant_id=merchant_id, held_by="channel",
                    merchant_split_no=merchant_split_no, receiver_id=receiver_id, amount=amount, currency=currency,
                    description=description, channel_account=channel_account, out_split_no=out_trade_no(),
                    status=status, submitted=False, next_query_at=now, queries=0, created_at=now, updated_at=now)

    def payment_ended(self, conn: Connection, payment_id: str, channel_account: str, outcome: Outcome,
                      now: datetime) -> None:
        """Called in the transaction that ends a payment made to be split. Succeeded (at channel_account,
        where the money is): a channel that freezes it holds the merchant's share (split.frozen), its
        scheduled splits start (the janitor sends them) and, when they have all ended, what is left is
        released; failed or closed: they are cancelled (a late success starts them after all)."""
        if outcome is not Outcome.SUCCEEDED:
            conn.execute(update(splits).where(and_(splits.c.payment_id == payment_id, splits.c.status == "scheduled"))
                         .values(status="cancelled", failure_code="payment_not_paid",
                                 failure_message=f"The payment {outcome.value}", updated_at=now))
            return
        account = self.host.account(channel_account)
        pay = conn.execute(select(payments).where(payments.c.id == payment_id)).first()
        if account.supports(Capability.SPLIT_FINISH) and pay.frozen_amount == 0:
            share = pay.amount - pay.discount_amount - (pay.fee_amount or 0)
            self.booker.split_frozen(conn, payment_facts(pay), share, now)
            conn.execute(update(payments).where(payments.c.id == payment_id).values(frozen_amount=share))
        waiting = conn.execute(select(splits).where(and_(
            splits.c.payment_id == payment_id, (splits.c.status == "scheduled") | and_(
                splits.c.status == "cancelled", splits.c.failure_code == "payment_not_paid")))
            .order_by(splits.c.created_at, splits.c.id)).all()
        for s in waiting:
            try:   # a split that cannot start fails alone: it must never undo the payment's success
                with conn.begin_nested():
                    self._start(conn, s, channel_account, now)
            except (LedgerError, _NoRoom) as exc:
                conn.execute(update(splits).where(splits.c.id == s.id).values(
                    status="failed", failure_code="split_exceeds_payment", failure_message=str(exc)[:500],
                    updated_at=now))
        if waiting and account.supports(Capability.SPLIT_FINISH):   # declared splits: released once they end
            self.releases.ask(conn, self.host, pay, channel_account, now)

    def held_by(self, conn: Connection, receiver_id: str, channel_account: str) -> str:
        """"paymux" where no channel pays the receiver: it is held by paymux, or the account cannot split."""
        held = conn.execute(select(receivers.c.held_by).where(receivers.c.id == receiver_id)).scalar_one()
        return "paymux" if held == "paymux" or not self.host.account(channel_account).supports(Capability.SPLIT) \
            else "channel"

    def _start(self, conn: Connection, s: Row | SimpleNamespace, channel_account: str, now: datetime) -> None:
        """Reserve the split's room on its payment and book split.requested (from what the channel holds
        frozen of the payment first); it is then processing, sent as soon as the channel takes it. One that
        no channel pays (held by paymux) succeeds here and now."""
        p = payments.c
        held = self.held_by(conn, s.receiver_id, channel_account) == "paymux"
        limits = self.host.account(channel_account).channel.split_limits() if not held else SplitLimits()
        room = unclaimed(p) - p.fee_amount >= s.amount
        if limits.max_share_bps is not None:   # the channel's cap on all splits of one order
            room = and_(room, (p.split_amount + s.amount) * 10000 <= p.amount * limits.max_share_bps)
        reserved = conn.execute(update(payments).where(and_(p.id == s.payment_id, p.status == "succeeded", room))
                                .values(split_amount=p.split_amount + s.amount, updated_at=now)).rowcount
        if not reserved:
            raise _NoRoom(f"The split of {s.amount} exceeds what is left of the payment"
                          + (f" or the channel's {limits.max_share_bps / 100:g}% of it" if limits.max_share_bps else ""))
        pay = conn.execute(select(payments).where(payments.c.id == s.payment_id)).first()
        self.booker.split_requested(conn, s.id, s.merchant_id, channel_account, s.currency, s.amount, now,
                                    frozen=0 if held else pay.frozen_amount)
        if not held:   # (a channel's frozen share stays with the channel, which releases it all to the merchant)
            take_frozen(conn, self.booker, s.payment_id, f"split:{s.id}:split.requested", now)
        # WeChat Pay takes a split only a while after the payment: until then it waits for the janitor.
        due = max(now, aware(pay.paid_at) + timedelta(seconds=limits.not_before_seconds)) if pay.paid_at else now
        conn.execute(update(splits).where(splits.c.id == s.id).values(
            status="processing", channel_account=channel_account, failure_code=None, failure_message=None,
            next_query_at=due, held_by="paymux" if held else "channel", updated_at=now))
        if held:   # no channel to ask: owed to the receiver in our books from now (split.succeeded)
            self.split_kind.apply(conn, s.id, SplitResult(Outcome.SUCCEEDED), "held", sent=True)

    # ---- splits asked for after success ----

    async def create(self, caller: Caller, payment_id: str, merchant_split_no: str, receiver_id: str, amount: int,
                     description: str) -> tuple[int, dict]:
        def tx1(conn: Connection) -> tuple[bool, Row, bool]:
            caller.verify(conn)
            pay = owned_row(conn, payments, caller.merchant_id, "payment", payment_id)
            existing = conn.execute(select(splits).where(and_(splits.c.merchant_id == caller.merchant_id,
                                                              splits.c.merchant_split_no == merchant_split_no))).first()
            if existing is not None:
                if (existing.payment_id, existing.receiver_id, existing.amount) != (payment_id, receiver_id, amount):
                    raise conflict("duplicate_split", f"merchant_split_no {merchant_split_no!r} was used for a "
                                                      "different split", "merchant_split_no")
                return False, existing, False
            self.receivers.receiver(conn, caller.merchant_id, receiver_id, "receiver")
            if pay.status != "succeeded":
                raise conflict("payment_not_splittable", f"A {pay.status} payment cannot be split")
            if conn.execute(select(release_rows.c.id).where(and_(release_rows.c.payment_id == payment_id,
                                                                   release_rows.c.status != "waiting"))).first():
                raise conflict("payment_split_finished", "This payment's splitting is finished: what was left "
                                                         "has been released to the merchant")
            now = self.clock.now()
            row = self._row(caller.merchant_id, payment_id, merchant_split_no, receiver_id, amount, pay.currency,
                            description, pay.channel_account, "processing", now)
            conn.execute(insert(splits).values(row))
            try:
                with conn.begin_nested():
                    self._start(conn, SimpleNamespace(**row), pay.channel_account, now)
            except _NoRoom:
                left = unclaimed(pay) - (pay.fee_amount or 0)
                cap = self.host.account(pay.channel_account).channel.split_limits().max_share_bps \
                    if self.held_by(conn, receiver_id, pay.channel_account) == "channel" else None
                if cap is not None:
                    left = min(left, pay.amount * cap // 10000 - pay.split_amount)
                raise invalid_request("split_exceeds_payment", f"A split of {amount} exceeds the {left} left of the "
                                      "payment after its fee, refunds, splits and the channel's limit",
                                      "amount") from None
            except LedgerError as exc:
                raise invalid_request("insufficient_balance", f"The merchant's balance cannot cover this split: "
                                      f"{exc.message}", "amount") from None
            made = conn.execute(select(splits).where(splits.c.id == row["id"])).first()
            # Due now (else the channel takes it only later, and the janitor sends it then): this request
            # sends it, and the janitor leaves it alone until its first query is due. Left due, the
            # janitor's sweep could send it at the same moment, and two answers to one split race.
            send_now = made.status == "processing" and aware(made.next_query_at) <= now
            if send_now:
                conn.execute(update(splits).where(splits.c.id == made.id).values(
                    next_query_at=now + self.queries.first(made.channel_account)))
            return True, made, send_now

        try:
            made, row, send_now = await self.db.tx(tx1)
        except IntegrityError:   # the same merchant_split_no won a race: answer as for a retry
            made, row, send_now = await self.db.tx(tx1)
        if not made:
            return 200, split_object(row)
        self.log.info("split.created", split_id=row.id, payment_id=payment_id, amount=amount)
        if send_now:
            await self.split_kind.submit(row)
        return 201, await self.db.tx(lambda conn: self._render(conn, row.id))

    # ---- taking splits back for a refund ([splits] refund_policy = "return") ----

    async def take_back(self, merchant_id: str, payment_id: str, refund_no: str, refund_amount: int) -> None:
        """Before a refund that needs money already split, take it back from the receivers. Returns
        when nothing (more) is needed; raises 409 while a return is in flight or after one failed.
        Any other problem is left for the refund itself to report."""
        if self.refund_policy != "return":
            return

        def plan(conn: Connection) -> list[SimpleNamespace]:
            pay = conn.execute(select(payments).where(and_(payments.c.id == payment_id,
                                                           payments.c.merchant_id == merchant_id))).first()
            if pay is None or pay.status != "succeeded" or pay.split_amount == 0 or conn.execute(
                    select(refunds.c.id).where(and_(refunds.c.merchant_id == merchant_id,
                                                    refunds.c.merchant_refund_no == refund_no))).first():
                return []
            # What this refund takes from the merchant (less the fee it gives back), against what the
            # merchant kept of this payment after its fee, earlier refunds and the splits.
            refunding = pay.refunded_amount + pay.refund_pending_amount
            fee = pay.fee_amount or 0
            taken_before, fee_back_before = refunded_before(conn, payment_id)
            fee_back = self.booker.fee_refund(pay.amount, fee, refund_amount, fee_back_before,
                                              completes=refunding + refund_amount == pay.amount,
                                              refunded_before=taken_before, rule=pay.fee_rule)
            kept = pay.amount - fee - (refunding - fee_back_before) - pay.split_amount
            short = max(refund_amount - fee_back - kept, refunding + pay.split_amount + refund_amount - pay.amount)
            if short <= 0:
                return []
            if conn.execute(select(returns.c.id).where(and_(
                    returns.c.merchant_id == merchant_id, returns.c.for_refund_no == refund_no,
                    returns.c.status == "processing"))).first():
                raise self._pending(refund_no)
            returnable = self.host.account(pay.channel_account).supports(Capability.SPLIT_RETURN)
            # a split paymux holds comes back in our books alone; one the channel paid, where it can
            sources = conn.execute(select(splits).where(and_(
                splits.c.payment_id == payment_id, splits.c.status == "succeeded",
                splits.c.held_by == "paymux" if not returnable else splits.c.id.is_not(None),
                splits.c.amount > splits.c.returned_amount)).order_by(splits.c.created_at.desc(),
                                                                       splits.c.id.desc())).all()
            if not sources and not returnable:
                raise invalid_request("split_return_not_supported", f"Channel account {pay.channel_account!r} cannot "
                                      "take splits back; this refund needs what was split", "amount")
            if sum(s.amount - s.returned_amount for s in sources) < short:
                return []    # even every split back would not do: the refund says how much it may be
            now, made = self.clock.now(), []
            for s in sources:
                take = min(short, s.amount - s.returned_amount)
                conn.execute(update(splits).where(splits.c.id == s.id).values(
                    returned_amount=splits.c.returned_amount + take, updated_at=now))
                row = dict(id=public_id("srt"), split_id=s.id, payment_id=payment_id, merchant_id=merchant_id,
                           for_refund_no=refund_no, amount=take, currency=s.currency, channel_account=s.channel_account,
                           out_return_no=out_trade_no(), status="processing", submitted=False, next_query_at=now,
                           queries=0, created_at=now, updated_at=now)
                conn.execute(insert(returns).values(row))
                if s.held_by == "paymux":   # no channel paid it: it comes back in the books, now
                    self.return_kind.apply(conn, row["id"], SplitResult(Outcome.SUCCEEDED), "held", sent=True)
                else:
                    made.append(SimpleNamespace(**row))
                short -= take
                if short == 0:
                    break
            return made

        made = await self.db.tx(plan)
        for r in made:
            await self.return_kind.submit(r)
        if not made:
            return
        ended = await self.db.tx(lambda conn: conn.execute(select(returns).where(
            returns.c.id.in_([r.id for r in made]))).all())
        failed = [r for r in ended if r.status == "failed"]
        if failed:
            raise conflict("split_return_failed", f"Taking the split back failed ({failed[0].failure_code}: "
                           f"{failed[0].failure_message}); the refund was not made")
        if any(r.status != "succeeded" for r in ended):
            raise self._pending(refund_no)

    @staticmethod
    def _pending(refund_no: str) -> Exception:
        return conflict("split_return_pending", "Splits are being taken back from their receivers for this refund; "
                        f"retry it under merchant_refund_no {refund_no!r} shortly")

    async def finish(self, caller: Caller, payment_id: str) -> tuple[int, dict]:
        """POST /v1/payments/{id}/splits/finish (gateway/split_releases.py)."""
        return await self.releases.finish(caller, payment_id)

    # ---- reading ----

    def _render(self, conn: Connection, split_id: str) -> dict:
        return split_object(conn.execute(select(splits).where(splits.c.id == split_id)).first())

    async def get(self, caller: Caller, split_id: str, sync: bool = False) -> dict:
        def load(conn: Connection) -> Row:
            caller.verify(conn)
            return owned_row(conn, splits, caller.merchant_id, "split", split_id)

        s = await self.db.tx(load)
        if sync and s.status == "processing":
            await self.split_kind.sync(s)
            return await self.db.tx(lambda conn: self._render(conn, split_id))
        return split_object(s)

    async def list_for(self, caller: Caller, payment_id: str) -> list[dict]:
        def load(conn: Connection) -> list[dict]:
            caller.verify(conn)
            owned_row(conn, payments, caller.merchant_id, "payment", payment_id)
            return [split_object(s) for s in conn.execute(select(splits).where(splits.c.payment_id == payment_id)
                                                           .order_by(splits.c.created_at, splits.c.id))]

        return await self.db.tx(load)


class _NoRoom(Exception):
    """The payment has not that much left to split."""
