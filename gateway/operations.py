"""One lifecycle for every money operation paymux sends to a channel: refunds, payouts, splits, split
returns, split releases, and whatever kind comes next.

An operation is a row (its shared columns: gateway/models/operation.py) that is `processing` until the
channel's own word ends it — succeeded or failed — exactly once (a conditional UPDATE). It is sent
under one number (its `reference` column), asked about by the janitor on a schedule, and ended by a
query's answer or a verified callback (`ChannelEvent.kind` == the kind's `event_kind`).

A kind is one class (one module): its table, its reference, the ledger templates it books, how it is
synced, how an event ends it, how it renders. The gateway lists its kinds once (`Operations`); the
janitor, callback dispatch, the ledger's start-up check and the exceptions listing read that list.
Most kinds share the same dance with the channel, written once in `ResentOperation`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Awaitable, Callable, ClassVar, Generic, Iterable, Iterator, TypeVar

from sqlalchemy import Connection, Row, Table, and_, select, update
from structlog.typing import FilteringBoundLogger

from gateway.channel import Channel, ChannelEvent, Outcome, SplitResult
from gateway.channel_calls import R, ChannelCalls, unknown_split
from gateway.clock import Clock
from gateway.db import Database
from gateway.plugins import ChannelAccount, PluginHost
from gateway.schedule import QuerySchedule
from ledger.booking import Booker

if TYPE_CHECKING:
    from gateway.payments import PaymentService
    from gateway.payouts import PayoutService
    from gateway.refunds import RefundService
    from gateway.splits import SplitService

RequestT = TypeVar("RequestT")   # what a kind's channel call is sent: a RefundRequest, a SplitFinish, …


@dataclass(frozen=True)
class OperationCore:
    """What every operation kind and service is built with: the database, the clock, the log, the
    channels (and the one wrapper every call to them goes through), the books and the janitor's
    schedule."""

    db: Database
    clock: Clock
    log: FilteringBoundLogger
    host: PluginHost
    booker: Booker
    calls: ChannelCalls
    schedule: QuerySchedule


@dataclass(frozen=True)
class Services:
    """What a kind may be built from: the core, and the services of the kinds paymux has."""

    core: OperationCore
    payments: PaymentService
    refunds: RefundService
    payouts: PayoutService
    splits: SplitService


def record_answer(conn: Connection, table: Table, row_id: str, outcome: Outcome, now: datetime, *, what: str,
                  channel_id_column: str, channel_id: str | None, error_code: str | None,
                  error_message: str | None, sent: bool = False, **on_end: object) -> Row | None:
    """Write a channel's answer on a processing row. PENDING or UNKNOWN only notes what came back;
    SUCCEEDED or FAILED ends it, with `on_end` values. Returns the row if it ended now, else None."""
    values: dict[str, object] = {"updated_at": now}
    if sent:
        values["submitted"] = True
    if channel_id:
        values[channel_id_column] = channel_id
    still_open = and_(table.c.id == row_id, table.c.status == "processing")
    if outcome not in (Outcome.SUCCEEDED, Outcome.FAILED):
        conn.execute(update(table).where(still_open).values(**values))
        return None
    values.update(status=outcome.value, **on_end)
    if outcome is Outcome.FAILED:
        values.update(failure_code=error_code or "channel_declined",
                      failure_message=(error_message or f"The channel declined the {what}")[:500])
    if not conn.execute(update(table).where(still_open).values(**values)).rowcount:
        return None
    return conn.execute(select(table).where(table.c.id == row_id)).first()


class OperationKind:
    """One kind of money operation. Class attributes describe it; an instance, made once per gateway
    with the services it needs, does its work."""

    name: ClassVar[str]                          # in logs and the exceptions listing: "refund", "payout", …
    table: ClassVar[Table]
    reference: ClassVar[str]                     # the column holding the number the channel knows it by
    templates: ClassVar[tuple[str, ...]] = ()    # the ledger templates it books (checked at start-up)
    event_kind: ClassVar[str | None] = None      # the ChannelEvent.kind that ends it (None: none does)
    # Shown to people once the janitor gave up asking, while in one of these states.
    stuck_statuses: ClassVar[tuple[str, ...]] = ("processing",)

    @classmethod
    def make(cls, services: Services) -> OperationKind:
        """This kind's worker for one gateway (a kind that needs only the core: cls(core))."""
        return cls(services.core)  # type: ignore[call-arg]

    async def sync(self, row: Row) -> object:
        """The janitor's turn: ask the channel about a processing row (send it first if it never was)."""
        raise NotImplementedError

    async def watch(self) -> int:
        """The janitor's turn for what may still change after an end (a payout's return: `succeeded →
        returned`); returns how many rows it asked about. Most kinds have nothing to watch."""
        return 0

    def apply_event(self, conn: Connection, account_id: str, event: ChannelEvent) -> str:
        """Apply a verified callback fact; returns the callback's outcome: applied | duplicate | mismatch |
        unknown_reference."""
        raise NotImplementedError

    def render(self, row: Row) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def stuck(cls, conn: Connection) -> list[dict[str, Any]]:
        """What the janitor gave up on, as `paymux exceptions` and the console list it."""
        t = cls.table
        return [{"kind": cls.name, "id": r.id, "out_trade_no": getattr(r, cls.reference),
                 "channel_account": r.channel_account, "merchant_id": r.merchant_id, "amount": r.amount,
                 "status": r.status, "queries": r.queries, "since": r.exception_at.isoformat()}
                for r in conn.execute(select(t).where(and_(t.c.exception_at.is_not(None),
                                                           t.c.status.in_(cls.stuck_statuses))))]

    def find(self, conn: Connection, account_id: str, number: str | None) -> Row | None:
        """The row a channel names by its number, at that channel account."""
        t = self.table
        return conn.execute(select(t).where(and_(t.c[self.reference] == number,
                                                 t.c.channel_account == account_id))).first()


class ResentOperation(OperationKind, Generic[RequestT]):
    """A kind sent under one number and asked about; sent again, under the same number, only when a
    query finds no record of it (`unheard`); a refusal counts only once a query then finds no record
    (a resend of one the channel took can be refused as a repeat, or by the state the first caused).
    Unknown answers never fail it. Subclasses say what is sent and what an end books."""

    send_operation: ClassVar[str]                # the channel call's name (health, metrics, exchanges)
    query_operation: ClassVar[str]
    what: ClassVar[str]                          # "split": the default failure message names it
    channel_id_column: ClassVar[str]             # where the channel's own id for it is kept
    resend_event: ClassVar[str]                  # logged when the channel never heard of it
    log_prefix: ClassVar[str]                    # of its other log events: "split" (split.refusal_not_final)
    refusal_key: ClassVar[str] = "reference"     # the number's name in that line
    unknown: ClassVar[Callable[[str, str], Any]] = staticmethod(unknown_split)   # no trustworthy answer
    sent_source: ClassVar[str] = "create"        # the source its log lines give a send's answer
    query_source: ClassVar[str] = "query"        # and a query's

    def __init__(self, core: OperationCore) -> None:
        self.core = core
        self.db, self.clock, self.log, self.host = core.db, core.clock, core.log, core.host
        self.booker, self.calls = core.booker, core.calls

    # ---- what a kind says ----

    def request(self, conn: Connection, row: Row) -> RequestT:
        """What the channel is sent (and asked about), read in a transaction."""
        raise NotImplementedError

    def send(self, channel: Channel, request: RequestT) -> Awaitable[SplitResult]:
        raise NotImplementedError

    def query(self, channel: Channel, request: RequestT) -> Awaitable[SplitResult]:
        raise NotImplementedError

    def ended(self, conn: Connection, row: Row, result: SplitResult, source: str, now: datetime) -> None:
        """In the transaction that ended it: book, tell the merchant, log."""
        raise NotImplementedError

    def end_values(self, conn: Connection, row_id: str, result: SplitResult) -> dict[str, object]:
        """Columns written with its end, beyond the status and failure."""
        return {}

    def result_of(self, event: ChannelEvent) -> SplitResult:
        return SplitResult(event.outcome, event.channel_transaction_id)

    def log_fields(self, row: Row) -> dict[str, Any]:
        return {f"{self.name}_id": row.id, self.reference: getattr(row, self.reference)}

    # ---- the lifecycle ----

    def can_ask(self, account: ChannelAccount) -> bool:
        """Can this account be asked about it? (If not, a refusal stands, and the janitor waits for a callback.)"""
        return True

    def _call(self, account: ChannelAccount, operation: str, fn: Callable[[], Awaitable[R]],
              reference: str) -> Awaitable[R]:
        return self.calls.call(account, operation, fn, self.unknown, reference=reference)

    async def send_confirmed(self, account: ChannelAccount, request: RequestT, number: str) -> SplitResult:
        """Send it (again, under its one number); a refusal is made sure of before it counts: it stands
        only if the channel then has no record of it. If it has one (or cannot say), that decides."""
        result = await self._call(account, self.send_operation, lambda: self.send(account.channel, request), number)
        if result.outcome is not Outcome.FAILED or not self.can_ask(account):
            return result
        found = await self._call(account, self.query_operation, lambda: self.query(account.channel, request), number)
        if found.unheard:
            return result
        self.log.warning(f"{self.log_prefix}.refusal_not_final", **{self.refusal_key: number},
                         refused=result.error_code, found=found.outcome.value)
        return found

    async def submit(self, row: Row, request: RequestT | None = None) -> bool:
        account = self.host.account(row.channel_account)
        if request is None:
            request = await self.db.tx(lambda conn: self.request(conn, row))
        result = await self.send_confirmed(account, request, getattr(row, self.reference))
        return await self.db.tx(lambda conn: self.apply(conn, row.id, result, self.sent_source, sent=True))

    async def sync(self, row: Row) -> bool:
        if not row.submitted:
            return await self.submit(row)
        account = self.host.account(row.channel_account)
        if not self.can_ask(account):
            return False
        request = await self.db.tx(lambda conn: self.request(conn, row))
        result = await self._call(account, self.query_operation, lambda: self.query(account.channel, request),
                                  getattr(row, self.reference))
        if result.unheard:
            self.log.warning(self.resend_event, **self.log_fields(row))
            return await self.submit(row, request)
        return await self.db.tx(lambda conn: self.apply(conn, row.id, result, self.query_source))

    def apply(self, conn: Connection, row_id: str, result: SplitResult, source: str, sent: bool = False) -> bool:
        """Write the channel's answer; True if it ended the operation now."""
        now = self.clock.now()
        extra = self.end_values(conn, row_id, result) if result.outcome in (Outcome.SUCCEEDED, Outcome.FAILED) else {}
        row = record_answer(conn, self.table, row_id, result.outcome, now, what=self.what,
                            channel_id_column=self.channel_id_column, channel_id=result.channel_split_id,
                            error_code=result.error_code, error_message=result.error_message, sent=sent, **extra)
        if row is None:
            return False
        self.ended(conn, row, result, source, now)
        return True

    def apply_event(self, conn: Connection, account_id: str, event: ChannelEvent) -> str:
        row = self.find(conn, account_id, self.event_reference(event))
        if row is None:
            return "unknown_reference"
        if event.amount is not None and event.amount != row.amount:
            return "mismatch"
        return "applied" if self.apply(conn, row.id, self.result_of(event), "callback") else "duplicate"

    def event_reference(self, event: ChannelEvent) -> str | None:
        """The number a callback names it by."""
        return event.out_trade_no


class Operations:
    """The gateway's operation kinds, in the order the janitor visits them."""

    def __init__(self, kinds: Iterable[OperationKind]) -> None:
        self.kinds = tuple(kinds)
        names = [k.name for k in self.kinds]
        if len(set(names)) != len(names):
            raise ValueError(f"two operation kinds share a name: {names}")
        self._by_event = {k.event_kind: k for k in self.kinds if k.event_kind}

    def __iter__(self) -> Iterator[OperationKind]:
        return iter(self.kinds)

    def for_event(self, event_kind: str) -> OperationKind | None:
        """The kind a callback fact of this ChannelEvent.kind ends (None: a payment's)."""
        return self._by_event.get(event_kind)

    def __getitem__(self, name: str) -> OperationKind:
        for kind in self.kinds:
            if kind.name == name:
                return kind
        raise KeyError(name)


def templates_of(kinds: Iterable[type[OperationKind] | OperationKind]) -> tuple[str, ...]:
    """Every ledger template these kinds book."""
    return tuple(t for k in kinds for t in k.templates)
