"""Which channel account takes a new payment, in which order to fail over, and why.

The router keeps, for one payment, every enabled account that takes payments and
- offers the method and currency (the channel's own list, narrowed by the account's limits),
- takes the amount (min_amount/max_amount) and has room left today (daily_amount/daily_count,
  counted from the attempts it took this business day that did not fail or close),
- has no open circuit (gateway/health.py; a half-open one's probe is taken in the database, so one
  process of many sends it).
It orders them: the merchant's preferred accounts first (`[routing] merchant_preferences`), then by
priority (lower first), and within one priority by a weighted shuffle (weight 3 gets about three
times the payments of weight 1). A merchant naming `channel` on the payment takes that account only.
Every skipped account and the reason are written on the attempt (attempts.routing).

Daily limits are counted twice: by the plan, to choose (cheaply, without waiting for anyone), and
exactly in the transaction that writes the attempt (hold_daily_room): that transaction first updates
the account's row for the business day (channel_days), so creates on the account in every process
count its day one after another, and a create that finds no room left writes nothing and goes to
the next planned account.

Operators switch an account at runtime (enabled, weight, limits; proposed by one, approved by another
in the console): the approved values are a row of channel_account_overrides, which every process's
router reads again at most OVERRIDES_REFRESH_SECONDS after it last did (one small SELECT), so a
switch takes effect everywhere within seconds, without a restart. An override wins over the
configuration only for the fields it sets.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Awaitable, Callable, Mapping

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite

from gateway.channel import Capability
from gateway.errors import PaymuxError, invalid_request
from gateway.health import HealthBoard
from gateway.models import Attempt, ChannelAccountOverride, ChannelDay, Payment
from gateway.plugins import ChannelAccount, PluginHost
from ledger.days import BusinessDay

attempts = Attempt.__table__
payments = Payment.__table__
channel_days = ChannelDay.__table__
overrides = ChannelAccountOverride.__table__
OVERRIDES_REFRESH_SECONDS = 2.0
OVERRIDABLE_LIMITS = ("min_amount", "max_amount", "daily_amount", "daily_count")

# Reasons an account is skipped that no retry will change: the merchant's request does not fit it.
STATIC_REASONS = ("method_not_offered", "currency_not_offered", "below_min_amount", "above_max_amount",
                  "does_not_take_payments")


@dataclass(frozen=True)
class Route:
    account: ChannelAccount
    method: str
    why: str


@dataclass
class Plan:
    routes: list[Route]
    skipped: dict[str, str] = field(default_factory=dict)

    def record(self, index: int, failover_from: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What is written on the attempt made for routes[index]."""
        record: dict[str, Any] = {"chose": self.routes[index].account.id, "why": self.routes[index].why,
                                  "candidates": [r.account.id for r in self.routes]}
        if self.skipped:
            record["skipped"] = dict(self.skipped)
        if failover_from:
            record["failover_from"] = dict(failover_from)
        return record


Usage = Mapping[str, tuple[int, int]]   # account id -> (count, amount) taken today


class DailyLimitReached(PaymuxError):
    """Found in the create's transaction: the account took the last of its day since the plan chose it."""

    def __init__(self, account: str, reason: str) -> None:
        super().__init__(503, "channel_error", "channel_unavailable",
                         f"Channel account {account!r} has no room left today ({reason}); retry later", None)
        self.account, self.reason = account, reason


def usage_since(conn: Connection, account_ids: list[str], since: datetime) -> dict[str, tuple[int, int]]:
    """(count, amount) of the attempts each account took since `since` that did not fail or close."""
    rows = conn.execute(
        select(attempts.c.channel_account, func.count(), func.coalesce(func.sum(payments.c.amount), 0))
        .join(payments, payments.c.id == attempts.c.payment_id)
        .where(attempts.c.channel_account.in_(account_ids), attempts.c.created_at >= since,
               attempts.c.status.not_in(("failed", "closed")))
        .group_by(attempts.c.channel_account))
    return {account: (int(count), int(amount)) for account, count, amount in rows}


class AccountOverrides:
    """The runtime overrides of channel accounts as this process last read them."""

    def __init__(self, refresh_seconds: float = OVERRIDES_REFRESH_SECONDS) -> None:
        self.refresh_seconds = refresh_seconds
        self.read_at: float | None = None
        self.rows: dict[str, Any] = {}
        self.applied: dict[tuple[str, int], ChannelAccount] = {}

    @classmethod
    def none(cls) -> "AccountOverrides":
        """No runtime switch, never read: the configuration alone (a router without a database)."""
        overrides = cls(refresh_seconds=float("inf"))
        overrides.read_at = time.monotonic()
        return overrides

    async def refresh(self, run_tx: Callable[[Callable[[Connection], Any]], Awaitable[Any]]) -> None:
        if self.read_at is not None and time.monotonic() - self.read_at < self.refresh_seconds:
            return
        rows = await run_tx(lambda conn: conn.execute(select(overrides)).all())
        self.rows = {row.channel_account: row for row in rows}
        self.read_at = time.monotonic()

    def apply(self, account: ChannelAccount) -> ChannelAccount:
        """The account as operators last switched it (the configured one if they never did)."""
        row = self.rows.get(account.id)
        if row is None:
            return account
        key = (account.id, row.version)
        if key not in self.applied:
            config, changes = account.config, {}
            if row.enabled is not None:
                changes["enabled"] = bool(row.enabled)
            if row.weight is not None:
                changes["weight"] = int(row.weight)
            if row.limits:
                changes["limits"] = replace(config.limits, **{k: v for k, v in row.limits.items()
                                                             if k in OVERRIDABLE_LIMITS})
            self.applied[key] = ChannelAccount(replace(config, **changes), account.channel)
        return self.applied[key]

    def account(self, host: PluginHost, account_id: str) -> ChannelAccount:
        """A named account for something new: unknown or (as switched) disabled is the client's error."""
        account = self.apply(host.account(account_id))
        if not account.enabled:
            raise invalid_request("channel_disabled", f"Channel account {account_id!r} is disabled", "channel")
        return account

    def enabled(self, host: PluginHost) -> list[ChannelAccount]:
        return [a for a in map(self.apply, host.accounts.values()) if a.enabled]


class Router:
    def __init__(self, host: PluginHost, health: HealthBoard, preferences: Mapping[str, tuple[str, ...]],
                 business_day: BusinessDay, rng: random.Random | None = None,
                 overrides: AccountOverrides | None = None) -> None:
        self.host = host
        self.overrides = overrides or AccountOverrides()
        self.health = health
        self.preferences = preferences
        self.business_day = business_day      # the ledger's: daily limits count the books' day
        self.rng = rng or random.Random()

    def day_start(self, now: datetime) -> datetime:
        """The start of the business day containing `now` (daily limits count from it)."""
        return self.business_day.start_of_day_containing(now)

    async def plan(self, run_tx: Callable[[Callable[[Connection], Any]], Awaitable[Any]], now: datetime,
                   merchant_id: str, amount: int, currency: str, method: str | None,
                   requested: str | None) -> Plan:
        await self.overrides.refresh(run_tx)
        if requested is not None:
            candidates = [self.overrides.account(self.host, requested)]
        else:
            candidates = self.overrides.enabled(self.host)
        daily = [a.id for a in candidates if a.config.limits.daily]
        since = self.day_start(now)
        usage: Usage = await run_tx(lambda conn: usage_since(conn, daily, since)) if daily else {}
        if probing := [a.id for a in candidates if self.health.wants_probe(a.id)]:   # one process probes
            await run_tx(lambda conn: [self.health.claim_probe(conn, account) for account in probing])
        eligible: list[tuple[ChannelAccount, str]] = []
        skipped: dict[str, str] = {}
        for account in candidates:
            reason, chosen_method = self._judge(account, amount, currency, method, usage)
            if reason:
                skipped[account.id] = reason
            else:
                eligible.append((account, chosen_method))
        if not eligible:
            raise self._nothing_fits(requested, skipped, method, currency)
        return Plan(self._order(eligible, merchant_id, requested), skipped)

    def _judge(self, account: ChannelAccount, amount: int, currency: str, method: str | None,
               usage: Usage) -> tuple[str | None, str]:
        channel, limits = account.channel, account.config.limits
        if not account.supports(Capability.PAY) or not channel.methods:
            return "does_not_take_payments", ""
        methods = [m for m in channel.methods if limits.methods is None or m in limits.methods]
        if method is not None and method not in methods:
            return "method_not_offered", ""
        currencies = channel.currencies if limits.currencies is None else limits.currencies
        if currencies is not None and currency not in currencies:
            return "currency_not_offered", ""
        if limits.min_amount is not None and amount < limits.min_amount:
            return "below_min_amount", ""
        if limits.max_amount is not None and amount > limits.max_amount:
            return "above_max_amount", ""
        if reason := self._daily_reason(account, amount, usage.get(account.id, (0, 0))):
            return reason, ""
        if not self.health.available(account.id):
            return "circuit_open", ""
        return None, method or methods[0]

    @staticmethod
    def _daily_reason(account: ChannelAccount, amount: int, used: tuple[int, int]) -> str | None:
        limits, (count, taken) = account.config.limits, used
        if limits.daily_count is not None and count + 1 > limits.daily_count:
            return "daily_count_reached"
        if limits.daily_amount is not None and taken + amount > limits.daily_amount:
            return "daily_amount_reached"
        return None

    def hold_daily_room(self, conn: Connection, account: ChannelAccount, amount: int, now: datetime) -> None:
        """In the transaction that writes an attempt on `account`, before it does: raise DailyLimitReached
        if the account has no room left today for `amount`. The update of the account's channel_days row
        holds it to the end of the transaction (PostgreSQL; SQLite has one writer anyway), so creates on
        the account in every process count its day one after another and never take more than its limits."""
        if not account.config.limits.daily:
            return
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(channel_days).values(channel_account=account.id, business_date=self.business_day.date_of(now),
                                           attempts=1)
        conn.execute(stmt.on_conflict_do_update(index_elements=["channel_account", "business_date"],
                                                set_={"attempts": channel_days.c.attempts + 1}))
        used = usage_since(conn, [account.id], self.day_start(now)).get(account.id, (0, 0))
        if reason := self._daily_reason(account, amount, used):
            raise DailyLimitReached(account.id, reason)

    def after_refusal(self, plan: Plan, refused: DailyLimitReached, requested: str | None, method: str | None,
                      currency: str) -> Route:
        """The planned account that comes next after the first one found no room in its transaction;
        the refusal is written on the attempt like any skipped account. None left: the plan's 503."""
        plan.skipped[refused.account] = refused.reason
        plan.routes[:] = [r for r in plan.routes if r.account.id != refused.account]
        if not plan.routes:
            raise self._nothing_fits(requested, plan.skipped, method, currency)
        return plan.routes[0]

    def _order(self, eligible: list[tuple[ChannelAccount, str]], merchant_id: str, requested: str | None) -> list[Route]:
        if requested is not None:
            return [Route(account, method, "requested") for account, method in eligible]
        preferred = self.preferences.get(merchant_id, ())
        by_id = {account.id: (account, method) for account, method in eligible}
        routes = [Route(*by_id.pop(account_id), "merchant_preference") for account_id in preferred if account_id in by_id]
        rest = sorted(by_id.values(), key=lambda item: (item[0].config.priority,
                                                         -self.rng.random() ** (1.0 / item[0].config.weight)))
        routes += [Route(account, method, f"priority {account.config.priority}, weight {account.config.weight}")
                   for account, method in rest]
        return routes

    async def plan_payout(self, run_tx: Callable[[Callable[[Connection], Any]], Awaitable[Any]], merchant_id: str,
                          amount: int, currency: str, requested: str | None, positions: Mapping[str, int]) -> Plan:
        """The accounts that may pay out `amount`: they declare PAYOUT, take the currency and amount,
        have no open circuit, and hold at least `amount` of position (what is not held for payouts
        in flight). Ordered like payments. The ledger checks the position again when it holds it.
        Like plan(), it reads the runtime switches again first when its copy is older than the refresh
        interval."""
        await self.overrides.refresh(run_tx)
        if requested is not None:
            candidates = [self.overrides.account(self.host, requested)]
        else:
            candidates = self.overrides.enabled(self.host)
        eligible, skipped = [], {}
        for account in candidates:
            limits = account.config.limits
            currencies = account.channel.currencies if limits.currencies is None else limits.currencies
            reason = ("does_not_pay_out" if not account.supports(Capability.PAYOUT) else
                      "currency_not_offered" if currencies is not None and currency not in currencies else
                      "below_min_amount" if limits.min_amount is not None and amount < limits.min_amount else
                      "above_max_amount" if limits.max_amount is not None and amount > limits.max_amount else
                      "circuit_open" if not self.health.available(account.id) else
                      "position_insufficient" if positions.get(account.id, 0) < amount else None)
            if reason:
                skipped[account.id] = reason
            else:
                eligible.append((account, "payout"))
        if not eligible:
            reasons = ", ".join(f"{account}: {reason}" for account, reason in skipped.items()) or "none configured"
            if all(reason in STATIC_REASONS + ("does_not_pay_out",) for reason in skipped.values()):
                return_error = invalid_request("no_channel_available",
                                               f"No enabled channel account pays out {amount} {currency} ({reasons})",
                                               "channel" if requested else "amount")
            else:   # positions run low or circuits open: it may work after a top-up, or later
                return_error = PaymuxError(503, "channel_error", "channel_unavailable",
                                           f"No channel account can pay this out now ({reasons}); retry later", None)
            raise return_error
        return Plan(self._order(eligible, merchant_id, requested), skipped)

    @staticmethod
    def _nothing_fits(requested: str | None, skipped: dict[str, str], method: str | None, currency: str) -> PaymuxError:
        reasons = ", ".join(f"{account}: {reason}" for account, reason in skipped.items())
        if all(reason in STATIC_REASONS for reason in skipped.values()):
            if requested is not None:
                code = {"method_not_offered": "unsupported_method", "currency_not_offered": "unsupported_currency",
                        "does_not_take_payments": "capability_not_supported"}.get(
                    skipped[requested], "amount_outside_channel_limits")
                param = {"unsupported_method": "method", "unsupported_currency": "currency",
                         "amount_outside_channel_limits": "amount"}.get(code, "channel")
                return invalid_request(code, f"Channel account {requested!r} cannot take this payment ({reasons})",
                                       param)
            return invalid_request("no_channel_available",
                                   f"No enabled channel account takes method {method or 'any'!r} in {currency} "
                                   f"for this amount ({reasons or 'none configured'})", "channel")
        # Open circuits or today's limits: it may work later, or elsewhere.
        return PaymuxError(503, "channel_error", "channel_unavailable",
                           f"No channel account can take this payment now ({reasons}); retry later", None)
