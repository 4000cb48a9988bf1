"""Payouts (代付): from a merchant's available balance to a bank account, paid by a channel account
out of its position (头寸). No HTTP, no SQL strings.

The rule that keeps a payout from ever being paid twice, for every channel: it is sent once.
- One payout has one channel account, chosen before anything is sent and never changed, and one
  out_payout_no at a time, made just before its send (a channel such as UnionPay wants the send's
  own time with it). Once that request may have left (`submitted`, written before the call), the
  payout is only ever asked about: an answer the channel does not document as final (a timeout, a
  5xx, "in progress", "no such order", …) leaves it processing, asked again on the janitor's schedule.
- It ends failed only on an answer the channel documents as final, or when the channel's settled
  statements prove it absent (reconciliation: not on the statement of its day nor the next ones
  within the carry-over window) and the channel still has no record of it.
- A genuinely new send takes a new out_payout_no (and so the current time), and happens only when
  the old number is proven never to have left: the call failed before connecting, or the plugin
  said it sent nothing. The number it replaces is kept in `routing.renumbered`.
- A failure is final: the frozen amount and the held position are released, and the merchant may
  ask again under a new merchant_payout_no. Nothing is retried on another channel by paymux.

A receiver whose money paymux holds is paid out the same way (POST /v1/receivers/{id}/payouts), from its
own available balance: the payout names it (receiver_id) and its templates' payee is the receiver.

Money: at request `payout.requested` freezes amount + fee of the payee's available balance and
holds amount of the account's position, in the transaction that writes the payout; success books
`payout.succeeded`, failure reverses the request. Every end is a merchant event.

Returned (退票): a succeeded payout the receiving bank sent back moves `succeeded → returned` once
(gateway/payout_returns.py), found by callback, by query or on a statement.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from sqlalchemy import Connection, Row, and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.auth import Caller
from gateway.channel import Capability, ChannelEvent, Outcome, PayoutRequest, PayoutResult
from gateway.db import owned_row
from gateway.errors import PaymuxError, conflict, invalid_request
from gateway.ids import out_trade_no, public_id
from gateway.models import Payout
from gateway.notifier import record_event
from gateway.operations import OperationCore, OperationKind, Services, record_answer
from gateway.payout_returns import PayoutReturns, ReturnPolicy
from gateway.resources import masked, masked_name, payout_object
from gateway.routing import Router
from gateway.secretbox import SecretBox
from ledger.core import AccountRef, Ledger
from ledger.errors import InsufficientBalance

payouts = Payout.__table__


@dataclass(frozen=True)
class NewPayout:
    merchant_payout_no: str
    amount: int
    currency: str
    account_name: str
    account_no: str
    bank_code: str | None
    remark: str | None
    notify_url: str | None
    channel: str | None

    def request_hash(self, box: SecretBox) -> str:
        return box.fingerprint(json.dumps(asdict(self), sort_keys=True))


def position_balances(conn: Connection, ledger: Ledger, account_ids: list[str], currency: str) -> dict[str, tuple[int, int]]:
    """Per channel account: (position it can still pay out of, held by payouts in flight)."""
    return {a: (ledger.balance(conn, AccountRef("channel_position", a, currency)),
                ledger.balance(conn, AccountRef("channel_position_committed", a, currency))) for a in account_ids}


def payout_request(row: Row, box: SecretBox) -> PayoutRequest:
    """What the channel is sent: the holder's name and the bank account number unsealed only here, in memory."""
    return PayoutRequest(row.out_payout_no, row.amount, row.currency,
                         box.open(row.account_name_sealed, f"{row.id}:name"), box.open(row.account_no_sealed, row.id),
                         row.bank_code, row.remark)


class PayoutService:
    def __init__(self, core: OperationCore, router: Router, box: SecretBox,
                 returns: ReturnPolicy = ReturnPolicy()) -> None:
        self.db, self.host, self.clock, self.log = core.db, core.host, core.clock, core.log
        self.booker, self.calls, self.schedule = core.booker, core.calls, core.schedule
        self.router, self.box, self.returns = router, box, PayoutReturns(core, returns)

    def positions(self, conn: Connection, currency: str) -> dict[str, int]:
        """What each account that pays out can still pay: its position less what payouts in flight hold."""
        return {a.id: self.booker.ledger.balance(conn, AccountRef("channel_position", a.id, currency))
                for a in self.host.accounts.values() if a.supports(Capability.PAYOUT)}

    async def create(self, caller: Caller, new: NewPayout, receiver_id: str | None = None) -> tuple[int, dict]:
        """(201, payout) when made now; (200, payout) for a retry of the same request. receiver_id: a payout
        of a receiver whose money paymux holds, from its available balance (gateway/split_settlement.py)."""
        request_hash = new.request_hash(self.box)

        def existing(conn: Connection) -> Row | None:
            caller.verify(conn)
            return conn.execute(select(payouts).where(and_(
                payouts.c.merchant_id == caller.merchant_id,
                payouts.c.merchant_payout_no == new.merchant_payout_no))).first()

        def replay(row: Row) -> tuple[int, dict]:
            if row.request_hash != request_hash or row.receiver_id != receiver_id:
                raise conflict("duplicate_payout", f"merchant_payout_no {new.merchant_payout_no!r} was used for "
                                                   "a different payout", "merchant_payout_no")
            return 200, payout_object(row)

        fee = self._fee(caller.merchant_id, new.channel or "*", new.amount)[0]   # a route's own, below
        payee = AccountRef("receiver_available", receiver_id, new.currency) if receiver_id else \
            AccountRef("merchant_available", caller.merchant_id, new.currency)
        row, available, positions = await self.db.tx(lambda conn: (existing(conn), self.booker.ledger.balance(
            conn, payee), self.positions(conn, new.currency)))
        if row is not None:
            return replay(row)
        if available < new.amount + fee:   # checked again, under lock, when the ledger freezes it
            raise self._short(new.amount, fee, receiver_id)
        plan = await self.router.plan_payout(self.db.tx, caller.merchant_id, new.amount, new.currency, new.channel,
                                             positions)
        payout_id, out_payout_no = public_id("po"), out_trade_no()

        def tx1(conn: Connection) -> Row:
            now = self.clock.now()
            short: dict[str, str] = {}
            for index, route in enumerate(plan.routes):
                fee, fee_rule = self._fee(caller.merchant_id, route.account.id, new.amount)
                try:   # the ledger holds the position for good: a race for the last of it loses here
                    with conn.begin_nested():
                        self.booker.payout_requested(conn, payout_id, caller.merchant_id, route.account.id,
                                                     new.currency, new.amount, fee, now, fee_rule,
                                                     receiver_id=receiver_id or "")
                except InsufficientBalance as exc:
                    if exc.account != "channel_position":
                        raise self._short(new.amount, fee, receiver_id) from None
                    short[route.account.id] = "position_insufficient"
                    continue
                routing = plan.record(index)
                if short:
                    routing["skipped"] = {**routing.get("skipped", {}), **short}
                # A concurrent identical request inserting first raises IntegrityError: all is rolled back.
                conn.execute(insert(payouts).values(
                    id=payout_id, merchant_id=caller.merchant_id, merchant_payout_no=new.merchant_payout_no,
                    request_hash=request_hash, amount=new.amount, fee=fee, fee_rule=fee_rule, currency=new.currency,
                    account_name_sealed=self.box.seal(new.account_name, f"{payout_id}:name"),
                    account_name_masked=masked_name(new.account_name),
                    account_no_sealed=self.box.seal(new.account_no, payout_id),
                    account_no_masked=masked(new.account_no), bank_code=new.bank_code,
                    remark=new.remark, notify_url=new.notify_url, channel_account=route.account.id,
                    receiver_id=receiver_id,
                    out_payout_no=out_payout_no, status="processing", submitted=True, routing=routing,
                    next_query_at=now + self.schedule.first(route.account.id), queries=0,
                    created_at=now, updated_at=now))
                return conn.execute(select(payouts).where(payouts.c.id == payout_id)).first()
            raise PaymuxError(503, "channel_error", "channel_unavailable",
                              "No channel account has the position for this payout now; retry later", None)

        try:
            row = await self.db.tx(tx1)
        except IntegrityError:   # lost the race to a request with the same merchant_payout_no
            return replay(await self.db.tx(existing))
        self.log.info("payout.created", payout_id=payout_id, merchant_id=caller.merchant_id,
                      channel_account=row.channel_account, amount=new.amount)
        await self.send(row)
        return 201, await self.db.tx(lambda conn: self._render(conn, payout_id))

    def _fee(self, merchant_id: str, account_id: str, amount: int) -> tuple[int, str | None]:
        """The payout fee by the fee rules (gateway/fees.py), or the chart's flat payout_fee."""
        fees = self.booker.fees
        if fees is None or not hasattr(fees, "payout_fee"):
            return self.booker.chart.fees.payout_fee, None
        return fees.payout_fee(merchant_id, account_id, amount)

    @staticmethod
    def _short(amount: int, fee: int, receiver_id: str | None = None) -> PaymuxError:
        payee = f"Receiver {receiver_id}'s" if receiver_id else "The merchant's"
        return invalid_request("insufficient_balance", f"{payee} available balance cannot cover {amount}"
                               + (f" and the payout fee {fee}" if fee else ""), "amount")

    async def send(self, row: Row) -> bool:
        """Send the payout under its current number, once; apply what the channel answers. A call that
        provably sent nothing (no connection, or the plugin says so) marks the payout not submitted."""
        account = self.host.account(row.channel_account)
        never_left = False

        async def call() -> PayoutResult:
            nonlocal never_left
            try:
                return await account.channel.payout(payout_request(row, self.box))
            except (httpx.ConnectError, httpx.ConnectTimeout):   # no connection: not a byte was sent
                never_left = True
                raise

        result = await self.calls.payout(account, "payout", call, row.out_payout_no)

        def settle(conn: Connection) -> bool:
            if never_left or result.not_sent:
                conn.execute(update(payouts).where(and_(
                    payouts.c.id == row.id, payouts.c.status == "processing",
                    payouts.c.out_payout_no == row.out_payout_no)).values(submitted=False, updated_at=self.clock.now()))
                return False
            return self.apply(conn, row.id, result, "create")

        return await self.db.tx(settle)

    async def sync(self, row: Row) -> bool:
        """Ask the channel about a processing payout and apply a final answer. Nothing is sent again,
        whatever the answer, except a payout whose request never left: that one goes now, afresh."""
        if not row.submitted:
            return await self.send_afresh(row, "never_sent")
        account = self.host.account(row.channel_account)
        result = await self.calls.payout(account, "query_payout", lambda: account.channel.query_payout(row.out_payout_no),
                                  row.out_payout_no)
        if result.unheard:
            self.log.info("payout.unheard", payout_id=row.id, out_payout_no=row.out_payout_no)
        return await self.db.tx(lambda conn: self.apply(conn, row.id, result, "query"))

    async def send_afresh(self, row: Row, because: str) -> bool:
        """A genuinely new send: a new number (the current time), claimed with a conditional update so
        that only one process sends it; the old number, which never left, is kept in routing."""
        number, now = out_trade_no(), self.clock.now()
        routing = dict(row.routing or {})
        routing["renumbered"] = [*routing.get("renumbered", []),
                                 {"out_payout_no": row.out_payout_no, "because": because, "at": now.isoformat()}]

        def claim(conn: Connection) -> Row | None:
            won = conn.execute(update(payouts).where(and_(
                payouts.c.id == row.id, payouts.c.status == "processing", payouts.c.submitted.is_(False),
                payouts.c.out_payout_no == row.out_payout_no)).values(
                out_payout_no=number, submitted=True, routing=routing, updated_at=now)).rowcount
            return conn.execute(select(payouts).where(payouts.c.id == row.id)).first() if won else None

        fresh = await self.db.tx(claim)
        if fresh is None:   # another process sent it, or it ended meanwhile
            return False
        self.log.warning("payout.sent_afresh", payout_id=row.id, out_payout_no=number, replaces=row.out_payout_no,
                         because=because)
        return await self.send(fresh)

    async def settle_absent(self, account_id: str, out_payout_no: str, evidence: str) -> str:
        """Reconciliation found this payout on none of the account's settled statements for its days:
        ask the channel once more, and fail it if it still has no record. Returns what happened:
        "failed_absent", "ended" (a final answer came instead), or "open"."""
        row = await self.db.tx(lambda conn: conn.execute(select(payouts).where(and_(
            payouts.c.out_payout_no == out_payout_no, payouts.c.channel_account == account_id))).first())
        if row is None or row.status != "processing":
            return "ended" if row is not None else "open"
        if not row.submitted:
            await self.send_afresh(row, "never_sent")
            return "open"
        account = self.host.account(row.channel_account)
        result = await self.calls.payout(account, "query_payout", lambda: account.channel.query_payout(row.out_payout_no),
                                  row.out_payout_no)
        if result.outcome in (Outcome.SUCCEEDED, Outcome.FAILED):
            return "ended" if await self.db.tx(lambda conn: self.apply(conn, row.id, result, "query")) else "open"
        if not result.unheard:
            return "open"
        absent = PayoutResult(Outcome.FAILED, error_code="absent_from_statement",
                              error_message=f"Never paid: {evidence}, and the channel has no record of it")
        ended = await self.db.tx(lambda conn: self.apply(conn, row.id, absent, "reconciliation"))
        if ended:
            self.log.warning("payout.failed_absent", payout_id=row.id, out_payout_no=out_payout_no)
        return "failed_absent" if ended else "open"

    async def return_found(self, account_id: str, out_payout_no: str, evidence: str) -> bool:
        """A statement lists this payout as returned by the receiving bank (`evidence`): apply the return
        (after its success, if it is still processing here). False if there is none to apply."""
        def apply(conn: Connection) -> bool:
            row = conn.execute(select(payouts).where(and_(payouts.c.out_payout_no == out_payout_no,
                                                          payouts.c.channel_account == account_id))).first()
            if row is None or row.status not in ("processing", "succeeded"):
                return False
            return self.apply(conn, row.id, PayoutResult(Outcome.RETURNED, error_code="returned_on_statement",
                                                         error_message=f"Returned: {evidence}"), "reconciliation")
        return await self.db.tx(apply)

    def apply(self, conn: Connection, payout_id: str, result: PayoutResult, source: str) -> bool:
        """Move a processing payout per a channel result; True if it ended (or was returned) here. A
        return found while it is still processing here is its success, then its return."""
        now = self.clock.now()
        if result.outcome is Outcome.RETURNED:
            paid = self.apply(conn, payout_id, PayoutResult(Outcome.SUCCEEDED, result.channel_payout_id), source)
            return self.returns.returned(conn, payout_id, source, result.error_code, result.error_message) or paid
        row = record_answer(conn, payouts, payout_id, result.outcome, now, what="payout",
                            channel_id_column="channel_payout_id", channel_id=result.channel_payout_id,
                            error_code=result.error_code, error_message=result.error_message, finished_at=now,
                            # a success is watched for a return (`watch`) from now on
                            next_query_at=self.returns.next_question(now))
        if row is None:
            return False
        if result.outcome is Outcome.SUCCEEDED:
            self.booker.payout_succeeded(conn, row.id, row.merchant_id, row.channel_account, row.currency,
                                         row.amount, row.fee, now, row.fee_rule, receiver_id=row.receiver_id or "")
        else:
            self.booker.payout_failed(conn, row.id, now)
        record_event(conn, row.merchant_id, f"payout.{result.outcome.value}", row.id, payout_object(row),
                     row.notify_url, now)
        self.log.info("payout.state_changed", payout_id=row.id, to_status=row.status, source=source)
        return True

    def apply_event(self, conn: Connection, account_id: str, event: ChannelEvent) -> str:
        row = conn.execute(select(payouts).where(and_(payouts.c.out_payout_no == event.out_trade_no,
                                                      payouts.c.channel_account == account_id))).first()
        if row is None:
            return "unknown_reference"
        if event.amount is not None and event.amount != row.amount:
            return "mismatch"
        result = PayoutResult(event.outcome, channel_payout_id=event.channel_transaction_id,
                              error_code=event.error_code)
        return "applied" if self.apply(conn, row.id, result, "callback") else "duplicate"

    # ---- reading ----

    def _render(self, conn: Connection, payout_id: str) -> dict:
        return payout_object(conn.execute(select(payouts).where(payouts.c.id == payout_id)).first())

    async def get(self, caller: Caller, payout_id: str | None = None, merchant_payout_no: str | None = None,
                  sync: bool = False) -> dict:
        def load(conn: Connection) -> Row:
            caller.verify(conn)
            if payout_id:
                return owned_row(conn, payouts, caller.merchant_id, "payout", payout_id)
            return owned_row(conn, payouts, caller.merchant_id, "payout", merchant_payout_no or "", "merchant_payout_no")

        row = await self.db.tx(load)
        if sync and row.status == "processing":
            self.host.require(self.host.account(row.channel_account), Capability.PAYOUT)
            await self.sync(row)
            return await self.db.tx(lambda conn: self._render(conn, row.id))
        return payout_object(row)


class PayoutKind(OperationKind):
    """Payouts in the operation registry: sent once, asked about, never sent again under the same number."""

    name = "payout"
    table = payouts
    reference = "out_payout_no"
    templates = ("payout.requested", "payout.succeeded", "payout.failed", "payout.returned",
                 "payout.returned_to_receiver", "recon.payout_adjust_gain", "recon.payout_adjust_loss")
    event_kind = "payout"     # ChannelEvent.out_trade_no carries the out_payout_no

    def __init__(self, service: PayoutService) -> None:
        self.service = service

    @classmethod
    def make(cls, services: Services) -> PayoutKind:
        return cls(services.payouts)

    async def sync(self, row: Row) -> bool:
        return await self.service.sync(row)

    async def watch(self) -> int:
        return await self.service.returns.watch()

    def apply_event(self, conn: Connection, account_id: str, event: ChannelEvent) -> str:
        return self.service.apply_event(conn, account_id, event)

    def render(self, row: Row) -> dict[str, Any]:
        return payout_object(row)
