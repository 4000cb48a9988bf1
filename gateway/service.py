"""The gateway's services wired together once, passed to handlers and commands."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from typing import Any, Iterable

import httpx

from structlog.typing import FilteringBoundLogger

from gateway.auth import MerchantAuthenticator
from gateway.channel import Acknowledgement, Capability, InboundNotification
from gateway.clock import Clock
from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.fees import fee_rules, served_methods
from gateway.db import Database
from gateway.health import HEALTH_KEEP, HealthBoard
from gateway.health import purge as purge_health
from gateway.callbacks import Callbacks
from gateway.channel_calls import ChannelCalls
from gateway.janitor import Janitor, RateLimiter
from gateway.kinds import BUILTIN_KINDS
from gateway.operations import OperationCore, OperationKind, Operations, Services, templates_of
from gateway.schedule import QuerySchedule
from gateway.risk import RiskGate
from gateway.exchanges import KEEP as EXCHANGES_KEEP
from gateway.exchanges import ExchangeRecorder
from gateway.exchanges import purge as purge_exchanges
from gateway.metrics import Metrics
from gateway.notifier import Notifier
from gateway.payment_results import PaymentResults
from gateway.payments import PaymentService
from gateway.reconciliation.run import Reconciler
from gateway.refunds import RefundService
from gateway.payout_returns import ReturnPolicy
from gateway.payouts import PayoutService
from gateway.splits import SplitService
from gateway.plugins import ChannelAccount, PluginHost
from gateway.routing import Router
from gateway.secretbox import SecretBox
from ledger.booking import Booker
from ledger.chart import ChartError, load_chart
from ledger.core import Ledger

# What the core books beside the operation kinds (each kind lists its own templates).
CORE_TEMPLATES = ("payment.succeeded", "payment.duplicate_succeeded", "merchant.freeze", "merchant.unfreeze",
                  "recon.channel_fees", "recon.channel_fees_returned", "recon.adjust_gain", "recon.adjust_loss",
                  "settlement.channel", "settlement.channel_debit", "settlement.merchant", "settlement.advance",
                  "settlement.advance_repaid", "settlement.receiver", "position.topup", "campaign.discount",
                  "campaign.discount_returned", "campaign.discount_return_failed")
REQUIRED_TEMPLATES = CORE_TEMPLATES + templates_of(BUILTIN_KINDS)


def make_ledger(settings: Settings, kinds: Iterable[type[OperationKind]] = ()) -> Ledger:
    """The ledger as configured; a chart that cannot book what the gateway does (its core and every
    operation kind: the built-in ones, and `kinds`) stops start-up."""
    try:
        chart = load_chart(settings.ledger_config)
        for event_type in REQUIRED_TEMPLATES + templates_of(kinds):
            chart.template(event_type)
    except ChartError as exc:
        raise ConfigError(f"ledger configuration: {exc}") from exc
    if not 0 <= settings.day_cut_hour < 24:
        raise ConfigError("day_cut_hour must be 0 to 23")
    return Ledger(chart, settings.business_timezone, settings.day_cut_hour)


@dataclass
class Gateway:
    settings: Settings
    db: Database
    clock: Clock
    log: FilteringBoundLogger
    http: httpx.AsyncClient
    host: PluginHost
    box: SecretBox
    authenticator: MerchantAuthenticator
    ledger: Ledger
    payments: PaymentService
    notifier: Notifier
    janitor: Janitor
    health: HealthBoard
    payouts: PayoutService
    splits: SplitService
    metrics: Metrics
    operations: Operations
    exchanges: ExchangeRecorder
    refunds: RefundService
    callbacks: Callbacks
    reconciler: Reconciler

    @classmethod
    def build(cls, settings: Settings, log: FilteringBoundLogger, clock: Clock | None = None,
              extra_plugins: Iterable[Any] = (), extra_kinds: Iterable[type[OperationKind]] = ()) -> "Gateway":
        """The services wired once. extra_kinds: operation kinds beyond paymux's own (their tables must
        exist; their ledger templates are checked like the built-in ones')."""
        clock = clock or Clock()
        extra_kinds = tuple(extra_kinds)
        db = Database(settings.database_url, settings.database_threads)
        exchanges = ExchangeRecorder(clock)
        http = httpx.AsyncClient(timeout=settings.channel_timeout_seconds, follow_redirects=False,
                                 event_hooks=exchanges.hooks())
        host = PluginHost(settings, http, clock, log, extra_plugins)
        box = SecretBox.from_settings(settings)
        ledger = make_ledger(settings, extra_kinds)
        notifier = Notifier(db, box, clock, log, settings.notify_schedule_seconds, settings.notify_timeout_seconds,
                            settings.notify_poll_seconds, settings.lease_seconds,
                            settings.notify_allow_private_networks)
        schedule = QuerySchedule(settings.query_schedule_seconds, settings.query_give_up_seconds,
                                 {a.id: a.query_schedule_seconds for a in settings.channel_accounts
                                  if a.query_schedule_seconds is not None})
        risk = RiskGate(host.pm, settings.extra.get("risk", {}) or {}, log)
        health = HealthBoard({a.id: a.circuit for a in settings.channel_accounts}, log, wall=clock.now)
        router = Router(host, health, settings.merchant_preferences, ledger.day)
        metrics = Metrics(settings.ledger_check_every_seconds)
        calls = ChannelCalls(health, log, metrics, exchanges)
        fees = fee_rules(settings, ledger.chart, db, clock.now)
        fees.check(*served_methods(host.accounts, Capability.PAY, Capability.PAYOUT))   # uncovered: no start
        core = OperationCore(db, clock, log, host, Booker(ledger, fees), calls, schedule)
        splits = SplitService(core, box, settings.split_refund_policy)
        refunds = RefundService(core, splits)
        payments = PaymentService(core, router, PaymentResults(core, splits), splits, refunds, risk)
        payouts = PayoutService(core, router, box, ReturnPolicy(
            settings.payout_return_watch_days, settings.payout_return_query_seconds, settings.payout_return_to,
            settings.payout_return_fee))
        services = Services(core, payments, refunds, payouts, splits)
        operations = Operations(kind.make(services) for kind in (*BUILTIN_KINDS, *extra_kinds))
        limiter = RateLimiter(settings.channel_queries_per_second,
                              {a.id: a.queries_per_second for a in settings.channel_accounts
                               if a.queries_per_second is not None})
        janitor = Janitor(db, payments, operations, clock, log, schedule, settings.janitor_poll_seconds, limiter,
                          settings.lease_seconds)
        reconciler = Reconciler(settings=settings, db=db, host=host, business_day=ledger.day, booker=core.booker,
                                rate=limiter, payments=payments, refunds=refunds, payouts=payouts, clock=clock,
                                log=log)
        return cls(settings, db, clock, log, http, host, box,
                   MerchantAuthenticator(box, settings.auth_window_seconds), ledger, payments, notifier, janitor,
                   health, payouts, splits, metrics, operations, exchanges, refunds,
                   Callbacks(db, clock, log, metrics, operations, payments.results), reconciler)

    @property
    def booker(self) -> Booker:
        """The one Booker every service books through (the console's approvals too)."""
        return self.payments.booker

    async def handle_notification(self, account: ChannelAccount, inbound: InboundNotification) -> Acknowledgement:
        """A channel's callback (gateway/callbacks.py)."""
        return await self.callbacks.handle(account, inbound)

    async def download_statement(self, account_id: str, business_date: date) -> bytes:
        """The channel's statement file for one day, as the channel serves it (parsing is reconciliation's)."""
        account = self.host.account(account_id)
        self.host.require(account, Capability.STATEMENT)
        content = await account.channel.download_statement(business_date)
        self.log.info("statement.downloaded", channel_account=account_id, business_date=business_date.isoformat(),
                      size=len(content))
        return content

    async def maintenance(self) -> None:
        """Forget what can never matter again: expired nonces and idempotency keys, health numbers and
        exchanges past keeping, sign-in windows that have passed and sessions that have ended."""
        from gateway import idempotency
        from gateway.console import identity

        now = self.clock.now()
        await self.db.tx(lambda conn: (self.authenticator.purge(conn, now),
                                       idempotency.purge(conn, now, self.settings.idempotency_ttl_seconds),
                                       purge_health(conn, now - HEALTH_KEEP),
                                       purge_exchanges(conn, now - EXCHANGES_KEEP),
                                       identity.purge(conn, now, identity.SignInLimit.of(self.settings))))

    async def flush_health(self) -> None:
        """What this process saw of the channels: health numbers and the exchanges it kept."""
        await self.db.tx(lambda conn: (self.health.flush(conn), self.exchanges.flush(conn)))

    async def health_loop(self) -> None:
        """Every few seconds, add what this process saw of the channels to the shared numbers."""
        while True:
            await asyncio.sleep(self.settings.health_flush_seconds)
            try:
                await self.flush_health()
            except Exception as exc:  # noqa: BLE001  numbers for people must never stop payments
                self.log.warning("health.flush_failed", error=type(exc).__name__, detail=str(exc)[:200])

    async def aclose(self) -> None:
        try:
            await self.flush_health()
        except Exception as exc:  # noqa: BLE001  closing down: say so, go on
            self.log.warning("health.flush_failed", error=type(exc).__name__, detail=str(exc)[:200])
        await self.http.aclose()
        await self.notifier.aclose()
        self.db.dispose()
