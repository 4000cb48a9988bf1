"""The Channel base class, and which of its methods serve which capability."""
from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, ClassVar, Iterator, Mapping

from starlette.types import ASGIApp

from gateway.channel.context import Capability, ChannelContext
from gateway.channel.notifications import Acknowledgement, ChannelEvent, InboundNotification
from gateway.channel.operations import (CreatePayment, PaymentResult, PayoutRequest, PayoutResult, RefundRequest,
                                        RefundResult, SplitFinish, SplitLimits, SplitRequest, SplitResult, SplitReturn)
from gateway.channel.statements import ParsedStatement, SplitLine


class FlowNotSupported(NotImplementedError):
    """A channel was asked for a flow it does not offer (the core checks capabilities first)."""

    def __init__(self, channel: Channel, capability: Capability) -> None:
        super().__init__(f"channel type {type(channel).__qualname__} does not support {capability.value}")
        self.capability = capability


class SettingsError(ValueError):
    """A channel account's settings are unusable; raised at start-up with the key that is wrong."""


class Channel:
    """Subclass this in a plugin. One instance serves one channel account.

    Declare in `capabilities` exactly the capabilities whose methods (CAPABILITY_METHODS, below) the
    subclass overrides: a plugin whose declarations and methods disagree is refused at start-up. A
    flow the channel does not offer keeps the base method, which raises FlowNotSupported."""

    name: ClassVar[str]                              # what `plugin = "..."` in the config names
    methods: ClassVar[tuple[str, ...]] = ()          # pay methods the channel offers, first is the default
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    currencies: ClassVar[frozenset[str] | None] = None   # None: any currency
    # Methods whose create() makes no call to the channel (it only signs a link or parameters, like
    # Alipay's page and wap pay). The core may then call create() before writing anything and store
    # the attempt in the request's one transaction. Leave empty when unsure: the default is safe.
    local_create_methods: ClassVar[tuple[str, ...]] = ()
    statement_currency: ClassVar[str] = "CNY"   # the currency of the amounts on its statements

    def __init__(self, ctx: ChannelContext) -> None:
        self.ctx = ctx

    @classmethod
    def parse_settings(cls, raw: Mapping[str, Any]) -> Any:
        """Validate the account's settings; raise SettingsError naming the bad key."""
        return dict(raw)

    async def create(self, request: CreatePayment) -> PaymentResult:
        raise FlowNotSupported(self, Capability.PAY)

    async def query(self, out_trade_no: str) -> PaymentResult:
        raise FlowNotSupported(self, Capability.QUERY)

    async def close(self, out_trade_no: str) -> PaymentResult:
        raise FlowNotSupported(self, Capability.CLOSE)

    async def refund(self, request: RefundRequest) -> RefundResult:
        raise FlowNotSupported(self, Capability.REFUND)

    async def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundResult:
        raise FlowNotSupported(self, Capability.REFUND_QUERY)

    async def parse_notification(self, notification: InboundNotification) -> list[ChannelEvent]:
        """Verify and decode a callback; raise NotificationRejected when it is not genuine."""
        raise FlowNotSupported(self, Capability.NOTIFY)

    async def download_statement(self, business_date: date) -> bytes:
        """The channel's statement file for one day, exactly as the channel serves it (checked against
        the hash the channel gives, where it gives one). Raise StatementUnavailable if there is none."""
        raise FlowNotSupported(self, Capability.STATEMENT)

    def parse_statement(self, content: bytes) -> ParsedStatement:
        """Read a statement file (as download_statement returned it) into normalized lines. Pure CPU,
        no I/O; raise StatementInvalid naming the line for a file that cannot be read as a whole.
        A statement of millions of lines should be parsed column-wise (plugins/statements.py helps)."""
        raise FlowNotSupported(self, Capability.STATEMENT)

    def read_statement(self, path: Path) -> ParsedStatement:
        """Read the statement file at `path` (kept on disk by reconciliation) into normalized lines, as
        parse_statement would its bytes. Reconciliation calls this one. Override it to read from the
        file in bounded memory (polars scanning the path, keeping only the normalized columns): a
        statement of millions of lines then never sits in memory whole. This default reads the file
        into bytes for parse_statement, so a plugin that only parses bytes keeps working."""
        return self.parse_statement(path.read_bytes())

    def read_statement_pieces(self, path: Path) -> Iterator[ParsedStatement]:
        """The statement file at `path` as pieces: ParsedStatements whose lines, one after another, are
        the statement's lines in file order (each piece a polars DataFrame with STATEMENT_COLUMNS). The
        channel's declared totals may come on any piece (the last piece that gives totals counts);
        StatementInvalid may be raised at any point, even after pieces were given (reconciliation then
        writes nothing). Reconciliation calls this one and never holds more than a piece of the lines
        at once, so a plugin that yields pieces of bounded size reconciles a statement of any size in
        bounded memory. This default gives read_statement's lines as one piece, so a plugin that only
        reads whole statements (or only parses bytes) keeps working unchanged."""
        yield self.read_statement(path)

    async def payout(self, request: PayoutRequest) -> PayoutResult:
        """Send a payout (Capability.PAYOUT) once. The same out_payout_no sent twice must be one payout;
        PENDING or UNKNOWN unless the channel's answer is documented as final."""
        raise FlowNotSupported(self, Capability.PAYOUT)

    async def query_payout(self, out_payout_no: str) -> PayoutResult:
        raise FlowNotSupported(self, Capability.PAYOUT)

    async def split(self, request: SplitRequest) -> SplitResult:
        """Pass part of a paid order to a receiver (Capability.SPLIT); the same out_split_no twice is one split."""
        raise FlowNotSupported(self, Capability.SPLIT)

    async def query_split(self, request: SplitRequest) -> SplitResult:
        raise FlowNotSupported(self, Capability.SPLIT)

    async def return_split(self, request: SplitReturn) -> SplitResult:
        """Take a split (part of it) back (Capability.SPLIT_RETURN); the same out_return_no twice is one return."""
        raise FlowNotSupported(self, Capability.SPLIT_RETURN)

    async def query_split_return(self, request: SplitReturn) -> SplitResult:
        raise FlowNotSupported(self, Capability.SPLIT_RETURN)

    async def finish_split(self, request: SplitFinish) -> SplitResult:
        """Release what the channel holds frozen of a payment made to be split (Capability.SPLIT_FINISH);
        the same out_finish_no twice is one release."""
        raise FlowNotSupported(self, Capability.SPLIT_FINISH)

    async def query_split_finish(self, request: SplitFinish) -> SplitResult:
        raise FlowNotSupported(self, Capability.SPLIT_FINISH)

    async def download_split_statement(self, business_date: date) -> bytes:
        """The channel's statement of one day's splits and returns, as it serves it (Capability.SPLIT_STATEMENT);
        raise StatementUnavailable when there is none (yet)."""
        raise FlowNotSupported(self, Capability.SPLIT_STATEMENT)

    def parse_split_statement(self, content: bytes) -> list[SplitLine]:
        """Read a statement of splits into lines (pure CPU); raise StatementInvalid naming the line."""
        raise FlowNotSupported(self, Capability.SPLIT_STATEMENT)

    def split_limits(self) -> SplitLimits:
        """How much of a payment this account lets be split, and how soon after it was paid."""
        return SplitLimits()

    def acknowledge(self, accepted: bool, message: str = "") -> Acknowledgement:
        """What to answer the channel: accepted means "stop retrying"."""
        return Acknowledgement(200 if accepted else 400, b"" if accepted else message.encode())

    @classmethod
    def standalone_simulator(cls, workdir: Path, url: str) -> tuple[ASGIApp, str] | None:
        """Optional, for `paymux simulate NAME`: an ASGI app speaking the channel's side of the wire
        (keys kept in workdir), and the TOML [[channel_accounts]] block that points a gateway at url."""
        return None

    def hosted_app(self) -> ASGIApp | None:
        """An optional ASGI app the gateway mounts at /hosted/{account_id} (e.g. a checkout page)."""
        return None


# The methods that serve each capability. A channel type declares a capability exactly when it
# overrides these methods: checked when its plugin is discovered (gateway/plugins.py).
CAPABILITY_METHODS: Mapping[Capability, tuple[str, ...]] = {
    Capability.PAY: ("create",),
    Capability.QUERY: ("query",),
    Capability.CLOSE: ("close",),
    Capability.REFUND: ("refund",),
    Capability.REFUND_QUERY: ("query_refund",),
    Capability.NOTIFY: ("parse_notification",),
    Capability.HOSTED_PAGES: ("hosted_app",),
    Capability.STATEMENT: ("download_statement", "parse_statement"),
    Capability.PAYOUT: ("payout", "query_payout"),
    Capability.SPLIT: ("split", "query_split"),
    Capability.SPLIT_RETURN: ("return_split", "query_split_return"),
    Capability.SPLIT_FINISH: ("finish_split", "query_split_finish"),
    Capability.SPLIT_STATEMENT: ("download_split_statement", "parse_split_statement"),
}


def capability_mismatches(channel_type: type[Channel]) -> list[str]:
    """Where a channel type's declared capabilities and the methods it overrides disagree, one line
    each naming the capability and the method; empty when they agree."""
    problems = []
    for capability, methods in CAPABILITY_METHODS.items():
        declared = capability in channel_type.capabilities
        for method in methods:
            overridden = getattr(channel_type, method) is not getattr(Channel, method)
            if declared and not overridden:
                problems.append(f"declares capability {capability.value!r} but does not override {method}()")
            elif overridden and not declared:
                problems.append(f"overrides {method}() but does not declare capability {capability.value!r}")
    return problems
