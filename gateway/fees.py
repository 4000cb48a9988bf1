"""Fee rules: what a merchant pays per payment and per payout, and what a channel charges us, from
configuration (docs/fees.md).

- A rule is chosen by merchant × channel account × method; `*` matches any. The most specific wins,
  a merchant counting more than an account and an account more than a method (merchant-only beats
  account + method). Two rules of one kind with the same three selectors are ambiguous: start-up stops.
- A fee is basis points of the amount, rounded half up to the minor unit, plus a fixed amount, then
  held between the rule's min and max, and never more than the amount. Integers only.
- Tiers pick the basis points (and fixed part) by the merchant's succeeded volume this month before
  today (the business day): read once per merchant and day from the payments table and kept in
  memory, so that a payment's success costs no statement for it and every process charges one day
  alike.
- Without [[fees.rules]] in the configuration, the ledger chart's [fees] (default_bps, per account,
  per merchant, refund_policy, payout_fee) and each account's fee_bps are the rules: nothing changes.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Callable, Iterable, Mapping, Sequence

from sqlalchemy import Connection, and_, func, select

from gateway.errors import ConfigError
from ledger.booking import PaymentFacts
from ledger.chart import FeeSchedule, fee_for
from ledger.days import BusinessDay

ANY = "*"
REFUND_POLICIES = ("all", "pro_rata", "none")
KINDS = {"rules": "payment", "payout_rules": "payout", "cost_rules": "cost"}
_RULE_KEYS = {"name", "merchant", "account", "method", "bps", "fixed", "min", "max", "tiers", "refund"}


@dataclass(frozen=True)
class Tier:
    volume_from: int       # the merchant's month volume (minor units) from which this tier holds
    bps: int
    fixed: int


@dataclass(frozen=True)
class FeeRule:
    name: str
    kind: str                       # payment | payout | cost
    merchant: str = ANY
    account: str = ANY
    method: str = ANY
    bps: int = 0
    fixed: int = 0
    min: int = 0
    max: int | None = None
    tiers: tuple[Tier, ...] = ()
    refund: str = "pro_rata"        # payment rules: what a refund gives back of the fee

    @property
    def selectors(self) -> tuple[str, str, str]:
        return self.merchant, self.account, self.method

    @property
    def specificity(self) -> int:
        return 4 * (self.merchant != ANY) + 2 * (self.account != ANY) + (self.method != ANY)

    def matches(self, merchant: str, account: str, method: str) -> bool:
        return all(s in (ANY, v) for s, v in zip(self.selectors, (merchant, account, method)))

    def tier(self, volume: int) -> Tier:
        found = Tier(0, self.bps, self.fixed)
        for tier in self.tiers:
            if volume >= tier.volume_from:
                found = tier
        return found

    def fee(self, amount: int, volume: int = 0) -> int:
        """Half up on the basis-point product, plus fixed, within [min, max], at most the amount."""
        tier = self.tier(volume)
        fee = fee_for(amount, tier.bps) + tier.fixed
        fee = max(fee, self.min)
        if self.max is not None:
            fee = min(fee, self.max)
        return max(0, min(fee, amount))

    def describe(self) -> str:
        parts = [f"{self.merchant} × {self.account} × {self.method}"]
        if self.tiers:
            parts.append("tiers " + ", ".join(f"from {t.volume_from}: {t.bps} bps + {t.fixed}" for t in self.tiers))
        else:
            parts.append(f"{self.bps} bps + {self.fixed}")
        if self.min or self.max is not None:
            parts.append(f"min {self.min}" + (f" max {self.max}" if self.max is not None else ""))
        if self.kind == "payment":
            parts.append(f"refund {self.refund}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Quote:
    fee: int
    rule: FeeRule
    tier: Tier
    volume: int            # the month volume the tier was chosen by


@dataclass(frozen=True)
class FeeConfig:
    """The [fees] section of the configuration, checked for form and ambiguity."""

    rules: tuple[FeeRule, ...] = ()

    def of(self, kind: str) -> tuple[FeeRule, ...]:
        return tuple(r for r in self.rules if r.kind == kind)


def parse_fee_config(raw: Any) -> FeeConfig:
    """[fees] of paymux.toml: [[fees.rules]], [[fees.payout_rules]], [[fees.cost_rules]]."""
    if raw is None:
        return FeeConfig()
    if not isinstance(raw, Mapping) or set(raw) - set(KINDS):
        raise ConfigError(f"[fees] may hold only {', '.join(KINDS)} (lists of tables)")
    rules: list[FeeRule] = []
    for section, kind in KINDS.items():
        items = raw.get(section) or []
        if not isinstance(items, list):
            raise ConfigError(f"fees.{section} must be a list of tables ([[fees.{section}]])")
        rules += [_rule(item, kind, f"fees.{section}[{i}]") for i, item in enumerate(items)]
    _no_ambiguity(rules)
    return FeeConfig(tuple(rules))


def _rule(item: Any, kind: str, where: str) -> FeeRule:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = set(item) - _RULE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    name = item.get("name")
    if not (isinstance(name, str) and name):
        raise ConfigError(f"{where}.name is required: each booked fee records the rule that produced it")
    where = f"{where} ({name})"
    for key in ("merchant", "account", "method"):
        if not (isinstance(item.get(key, ANY), str) and item.get(key, ANY)):
            raise ConfigError(f"{where}.{key} must be an id or \"*\"")
    if kind == "payout" and item.get("method", ANY) != ANY:
        raise ConfigError(f"{where}: a payout rule has no method")
    if "tiers" in item and ("bps" in item or kind != "payment"):
        raise ConfigError(f"{where}: tiers replace bps" if kind == "payment" else f"{where}: only merchant fee "
                          "rules ([[fees.rules]]) have tiers")
    bps, fixed, least = item.get("bps", 0), item.get("fixed", 0), item.get("min", 0)
    _whole(bps, f"{where}.bps", 10000)
    _whole(fixed, f"{where}.fixed")
    _whole(least, f"{where}.min")
    most = item.get("max")
    if most is not None:
        _whole(most, f"{where}.max")
        if most < least:
            raise ConfigError(f"{where}.max is below min")
    refund = item.get("refund", "pro_rata")
    if refund not in REFUND_POLICIES or ("refund" in item and kind != "payment"):
        raise ConfigError(f"{where}.refund must be one of {', '.join(REFUND_POLICIES)} (merchant fee rules only)")
    return FeeRule(name, kind, item.get("merchant", ANY), item.get("account", ANY), item.get("method", ANY),
                   bps, fixed, least, most, _tiers(item.get("tiers"), fixed, where), refund)


def _tiers(raw: Any, fixed: int, where: str) -> tuple[Tier, ...]:
    if raw is None:
        return ()
    if not (isinstance(raw, list) and raw and all(isinstance(t, Mapping) for t in raw)):
        raise ConfigError(f"{where}.tiers must be a list of {{ from = volume, bps = n }} tables")
    tiers = []
    for i, t in enumerate(raw):
        if set(t) - {"from", "bps", "fixed"} or "from" not in t or "bps" not in t:
            raise ConfigError(f"{where}.tiers[{i}] holds from, bps and optionally fixed")
        _whole(t["from"], f"{where}.tiers[{i}].from")
        _whole(t["bps"], f"{where}.tiers[{i}].bps", 10000)
        _whole(t.get("fixed", fixed), f"{where}.tiers[{i}].fixed")
        tiers.append(Tier(t["from"], t["bps"], t.get("fixed", fixed)))
    if tiers[0].volume_from != 0:
        raise ConfigError(f"{where}.tiers must start from 0: a month begins with no volume")
    for a, b in zip(tiers, tiers[1:]):
        if b.volume_from <= a.volume_from:
            raise ConfigError(f"{where}.tiers overlap: from {b.volume_from} follows from {a.volume_from}; "
                              "list them by rising volume, each once")
    return tuple(tiers)


def _whole(value: Any, where: str, most: int = 10**12) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= most):
        raise ConfigError(f"{where} must be a whole number from 0 to {most} (minor units or basis points)")


def _no_ambiguity(rules: Iterable[FeeRule]) -> None:
    seen: dict[tuple[str, str, str, str], str] = {}
    names: set[tuple[str, str]] = set()
    for rule in rules:
        if (rule.kind, rule.name) in names:
            raise ConfigError(f"fee rule name {rule.name!r} is used twice among the {rule.kind} rules")
        names.add((rule.kind, rule.name))
        key = (rule.kind, *rule.selectors)
        if key in seen:
            raise ConfigError(f"fee rules {seen[key]!r} and {rule.name!r} overlap ambiguously: both are the "
                              f"{rule.kind} rule for merchant {rule.merchant} × account {rule.account} × "
                              f"method {rule.method}")
        seen[key] = rule.name


def legacy_rules(schedule: FeeSchedule, cost_bps: Mapping[str, int | None]) -> tuple[FeeRule, ...]:
    """The single-rate configuration as rules: the chart's [fees] rates and payout fee, and each
    channel account's fee_bps as its cost."""
    refund = "none" if schedule.refund_policy == "keep" else "pro_rata"
    rules = [FeeRule("default", "payment", bps=schedule.default_bps, refund=refund)]
    rules += [FeeRule(f"account:{a}", "payment", account=a, bps=b, refund=refund)
              for a, b in schedule.channel_accounts.items()]
    rules += [FeeRule(f"merchant:{m}", "payment", merchant=m, bps=b, refund=refund)
              for m, b in schedule.merchants.items()]
    rules.append(FeeRule("payout_fee", "payout", fixed=schedule.payout_fee))
    rules += [FeeRule(f"fee_bps:{a}", "cost", account=a, bps=b) for a, b in cost_bps.items() if b is not None]
    return tuple(rules)


class FeeRules:
    """The rule set in memory: resolution, quotes, the coverage check. `volume(merchant, at)` gives the
    month volume a tier is chosen by (MonthVolumes)."""

    def __init__(self, rules: Sequence[FeeRule], volume: Callable[..., int] | None = None,
                 now: Callable[[], datetime] | None = None) -> None:
        _no_ambiguity(rules)
        self.rules = tuple(rules)
        self.by_name = {(r.kind, r.name): r for r in self.rules}
        self._volume, self._now = volume, now
        self._chosen: dict[tuple[str, str, str, str], FeeRule | None] = {}

    @classmethod
    def from_settings(cls, settings: Any, schedule: FeeSchedule, **kwargs: Any) -> "FeeRules":
        configured: FeeConfig = getattr(settings, "fees", None) or FeeConfig()
        legacy = legacy_rules(schedule, {a.id: a.fee_bps for a in settings.channel_accounts})
        # Configured kinds replace the single rates of that kind; a kind left out keeps them.
        kinds = {r.kind for r in configured.rules}
        return cls([*(r for r in legacy if r.kind not in kinds), *configured.rules], **kwargs)

    def rule(self, kind: str, merchant: str, account: str, method: str = ANY) -> FeeRule | None:
        key = (kind, merchant, account, method)
        if key not in self._chosen:   # resolved once per combination: the hot path reads a dict
            found = [r for r in self.rules if r.kind == kind and r.matches(merchant, account, method)]
            self._chosen[key] = max(found, key=lambda r: r.specificity, default=None)
        return self._chosen[key]

    def quote(self, kind: str, merchant: str, account: str, method: str, amount: int,
              at: datetime | None = None, conn: Connection | None = None) -> Quote | None:
        rule = self.rule(kind, merchant, account, method)
        if rule is None:
            return None
        volume = 0
        if rule.tiers and self._volume is not None:
            volume = self._volume(merchant, at or (self._now() if self._now else datetime.now().astimezone()), conn)
        return Quote(rule.fee(amount, volume), rule, rule.tier(volume), volume)

    # ---- ledger.booking.FeePolicy ----

    def payment_fee(self, p: PaymentFacts, settled: int, conn: Connection | None = None) -> tuple[int, str]:
        quote = self.quote("payment", p.merchant_id, p.channel_account, p.method or ANY, settled, conn=conn)
        if quote is None:   # the coverage check at start-up makes this a configuration change since
            raise ConfigError(f"no fee rule covers merchant {p.merchant_id} × account {p.channel_account} × "
                              f"method {p.method}")
        return quote.fee, quote.rule.name

    def refund_policy(self, rule: str | None) -> str:
        found = self.by_name.get(("payment", rule or ""))
        return found.refund if found is not None else self.by_name.get(("payment", "default"),
                                                                        FeeRule("", "payment")).refund

    def payout_fee(self, merchant: str, account: str, amount: int) -> tuple[int, str | None]:
        quote = self.quote("payout", merchant, account, ANY, amount)
        return (0, None) if quote is None else (quote.fee, quote.rule.name)

    def cost(self, merchant: str, account: str, method: str, amount: int) -> int | None:
        """What the channel should charge for a payment, by the cost rules (None: no rule says)."""
        quote = self.quote("cost", merchant, account, method, amount)
        return None if quote is None else quote.fee

    def account_cost(self, account: str) -> FeeRule | None:
        """The channel account's cost rule for any merchant and method: what reconciliation checks a
        statement line's fee against (`fee_mismatch`) when no cost rule names a merchant or a method."""
        return self.rule("cost", "\0", account, "\0")

    def cost_rule(self, merchant: str, account: str, method: str) -> FeeRule | None:
        """The cost rule of one payment: merchant × account × method, the most specific winning."""
        return self.rule("cost", merchant, account, method)

    def cost_varies(self, account: str) -> bool:
        """Whether a cost rule that can apply at the account names a merchant or a method: then each
        statement line is checked against the rule of its own payment's merchant and method."""
        return any(r.kind == "cost" and r.account in (ANY, account) and (r.merchant != ANY or r.method != ANY)
                   for r in self.rules)

    def uncovered(self, served: Mapping[str, Sequence[str]], payouts: Iterable[str] = ()) -> list[str]:
        """Combinations no rule covers, for any merchant: each account × each method it takes payments
        by, and each account that pays out. Merchant-specific rules only refine these."""
        missing = [f"payment: merchant * × account {a} × method {m}" for a, methods in served.items()
                   for m in methods if self.rule("payment", "\0", a, m) is None]
        missing += [f"payout: merchant * × account {a}" for a in payouts if self.rule("payout", "\0", a) is None]
        return missing

    def check(self, served: Mapping[str, Sequence[str]], payouts: Iterable[str] = ()) -> None:
        missing = self.uncovered(served, payouts)
        if missing:
            raise ConfigError("fee rules leave uncovered: " + "; ".join(missing))


@dataclass
class MonthVolumes:
    """The cheap source of a tier's volume: a merchant's succeeded payments this month up to the start
    of today (business day), one SUM per merchant and day, kept until the day changes."""

    db: Any
    day: Any                         # ledger.days.BusinessDay
    _cache: dict[tuple[str, date], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, merchant_id: str, at: datetime, conn: Connection | None = None) -> int:
        """`conn`: the caller's transaction (booking reads through it); else one of our own."""
        today = self.day.date_of(at)
        key = (merchant_id, today)
        if key not in self._cache:
            from gateway.models import Payment
            payments = Payment.__table__
            query = select(func.coalesce(func.sum(payments.c.amount), 0)).where(and_(
                payments.c.merchant_id == merchant_id, payments.c.status == "succeeded",
                payments.c.paid_at >= self.day.start(today.replace(day=1)), payments.c.paid_at < self.day.start(today)))
            if conn is None:
                with self.db.transaction() as own:
                    total = own.execute(query).scalar_one()
            else:
                total = conn.execute(query).scalar_one()
            with self._lock:
                self._cache = {k: v for k, v in self._cache.items() if k[1] == today}   # yesterday's go
                self._cache[key] = int(total)
        return self._cache[key]


def fee_rules(settings: Any, chart: Any, db: Any = None, now: Callable[[], datetime] | None = None) -> FeeRules:
    """The configured rules (the chart's single rates where none are configured); with `db`, tiers
    are chosen by the merchant's month volume read from it (MonthVolumes)."""
    volume = MonthVolumes(db, BusinessDay.of(settings.business_timezone, settings.day_cut_hour)) if db else None
    return FeeRules.from_settings(settings, chart.fees, volume=volume, now=now)


def served_methods(accounts: Mapping[str, Any], pay: Any, payout: Any) -> tuple[dict[str, list[str]], list[str]]:
    """Per channel account (gateway.plugins' ChannelAccount), the methods it takes payments by (as
    routing offers them) and the accounts that pay out: what the rules must cover."""
    served = {a.id: [m for m in a.channel.methods if a.config.limits.methods is None or m in a.config.limits.methods]
              for a in accounts.values() if a.supports(pay) and a.channel.methods}
    return served, [a.id for a in accounts.values() if a.supports(payout)]


__all__ = ["FeeConfig", "FeeRule", "FeeRules", "MonthVolumes", "Quote", "Tier", "legacy_rules", "parse_fee_config",
           "served_methods", "fee_rules"]
